//! Per-org request counters of the SCIM simulator: how many requests of each kind an org
//! received (whatever their outcome) and how many ended in a 4xx or 5xx, so load tests can
//! check how much SCIM traffic a sync cost.
//!
//! Users and Groups are counted apart: load tests assert "one write per synced user" with
//! [`RequestCounters::writes`], and group traffic must not blur that. A `/Bulk` request
//! counts once in `bulk`, and each operation it carries counts in its own kind (`create`,
//! `patch`, `delete`) and in `bulk_operations`: the per-kind counters count user operations
//! however they were sent, [`RequestCounters::requests`] counts HTTP requests.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// The SCIM operation a request asked for. The order is that of the counters' slots
/// ([`RequestCounters::fields_mut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Create,
    Get,
    List,
    Patch,
    Put,
    Delete,
    GroupCreate,
    GroupGet,
    GroupList,
    /// `GET /Groups/{id}/Members`.
    GroupMembers,
    GroupPatch,
    GroupPut,
    GroupDelete,
    /// `POST /Bulk` (the request; its operations count in their own kinds).
    Bulk,
}

/// A snapshot of an org's counters. `create` … `delete` count `/Users` requests, the `group_*`
/// fields `/Groups` requests; `errors_4xx` / `errors_5xx` count both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
// Snapshots serialized before groups existed still read back.
#[serde(default)]
pub struct RequestCounters {
    pub create: u64,
    pub get: u64,
    pub list: u64,
    pub patch: u64,
    pub put: u64,
    pub delete: u64,
    pub group_create: u64,
    pub group_get: u64,
    pub group_list: u64,
    /// `GET /Groups/{id}/Members` pages.
    pub group_members: u64,
    pub group_patch: u64,
    pub group_put: u64,
    pub group_delete: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    /// `POST /Bulk` requests.
    pub bulk: u64,
    /// Operations carried out inside Bulk requests (also counted in their kinds).
    pub bulk_operations: u64,
    /// Requests answered 429 by the org's token bucket (also counted in `errors_4xx`).
    pub throttled: u64,
}

impl RequestCounters {
    /// Every `/Users` request, of any kind and outcome (groups: [`Self::group_total`]).
    pub fn total(&self) -> u64 {
        self.create + self.get + self.list + self.patch + self.put + self.delete
    }

    /// `/Users` requests that ask to change state: create + patch + put + delete
    /// (groups: [`Self::group_writes`]).
    pub fn writes(&self) -> u64 {
        self.create + self.patch + self.put + self.delete
    }

    /// Every `/Groups` request, `/Members` pages included, of any kind and outcome.
    pub fn group_total(&self) -> u64 {
        self.group_get + self.group_list + self.group_members + self.group_writes()
    }

    /// `/Groups` requests that ask to change state: create + patch + put + delete.
    pub fn group_writes(&self) -> u64 {
        self.group_create + self.group_patch + self.group_put + self.group_delete
    }

    /// Every SCIM request, users and groups.
    pub fn all_total(&self) -> u64 {
        self.total() + self.group_total()
    }

    /// Every SCIM request that asks to change state, users and groups.
    pub fn all_writes(&self) -> u64 {
        self.writes() + self.group_writes()
    }

    /// HTTP requests that reached the org, of any kind and outcome: a Bulk request counts
    /// once however many operations it carries.
    pub fn requests(&self) -> u64 {
        self.all_total() - self.bulk_operations + self.bulk
    }
}

impl RequestCounters {
    /// Every field, in [`RequestKind`] order and then the two error counts: the order of the
    /// live counters' slots, so the field list is written out only here.
    fn fields_mut(&mut self) -> [&mut u64; SLOTS] {
        [
            &mut self.create,
            &mut self.get,
            &mut self.list,
            &mut self.patch,
            &mut self.put,
            &mut self.delete,
            &mut self.group_create,
            &mut self.group_get,
            &mut self.group_list,
            &mut self.group_members,
            &mut self.group_patch,
            &mut self.group_put,
            &mut self.group_delete,
            &mut self.bulk,
            &mut self.errors_4xx,
            &mut self.errors_5xx,
            &mut self.bulk_operations,
            &mut self.throttled,
        ]
    }
}

/// One slot per [`RequestKind`] (indexed by it), then the 4xx and 5xx counts, the Bulk
/// operations and the throttled requests.
const SLOTS: usize = 18;
const ERRORS_4XX: usize = 14;
const ERRORS_5XX: usize = 15;
const BULK_OPERATIONS: usize = 16;
const THROTTLED: usize = 17;

/// The live, lock-free counters behind [`RequestCounters`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    slots: [AtomicU64; SLOTS],
}

impl Counters {
    pub fn count(&self, kind: RequestKind) {
        self.slots[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One operation of a Bulk request, of `kind`.
    pub fn count_bulk_operation(&self, kind: RequestKind) {
        self.count(kind);
        self.slots[BULK_OPERATIONS].fetch_add(1, Ordering::Relaxed);
    }

    /// A request refused by the org's token bucket (its status is recorded as any other).
    pub fn count_throttled(&self) {
        self.slots[THROTTLED].fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_status(&self, status: StatusCode) {
        if status.is_client_error() {
            self.slots[ERRORS_4XX].fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            self.slots[ERRORS_5XX].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> RequestCounters {
        let mut snap = RequestCounters::default();
        for (field, slot) in snap.fields_mut().into_iter().zip(&self.slots) {
            *field = slot.load(Ordering::Relaxed);
        }
        snap
    }

    pub fn reset(&self) {
        for slot in &self.slots {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_kinds_and_errors() {
        let c = Counters::default();
        let kinds = [
            RequestKind::Create,
            RequestKind::Create,
            RequestKind::Get,
            RequestKind::List,
            RequestKind::Patch,
            RequestKind::Put,
            RequestKind::Delete,
            RequestKind::GroupCreate,
            RequestKind::GroupGet,
            RequestKind::GroupList,
            RequestKind::GroupList,
            RequestKind::GroupMembers,
            RequestKind::GroupPatch,
            RequestKind::GroupPatch,
            RequestKind::GroupPatch,
            RequestKind::GroupPut,
            RequestKind::GroupDelete,
            RequestKind::Bulk,
        ];
        for k in kinds {
            c.count(k);
        }
        c.count_bulk_operation(RequestKind::Create);
        c.count_bulk_operation(RequestKind::Delete);
        c.count_throttled();
        for s in [
            StatusCode::OK,
            StatusCode::CONFLICT,
            StatusCode::NOT_FOUND,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            c.record_status(s);
        }
        let snap = c.snapshot();
        assert_eq!(
            snap,
            RequestCounters {
                create: 3,
                get: 1,
                list: 1,
                patch: 1,
                put: 1,
                delete: 2,
                group_create: 1,
                group_get: 1,
                group_list: 2,
                group_members: 1,
                group_patch: 3,
                group_put: 1,
                group_delete: 1,
                errors_4xx: 2,
                errors_5xx: 1,
                bulk: 1,
                bulk_operations: 2,
                throttled: 1,
            }
        );
        // (what, got, want): user sums keep their meaning; group sums stand apart.
        let sums = [
            ("total", snap.total(), 9),
            ("writes", snap.writes(), 7),
            ("group_total", snap.group_total(), 10),
            ("group_writes", snap.group_writes(), 6),
            ("all_total", snap.all_total(), 19),
            ("all_writes", snap.all_writes(), 13),
            // 17 single requests and one Bulk carrying two operations
            ("requests", snap.requests(), 18),
        ];
        for (what, got, want) in sums {
            assert_eq!(got, want, "{what}");
        }
        c.reset();
        assert_eq!(c.snapshot(), RequestCounters::default());
    }

    #[test]
    fn snapshots_without_group_fields_still_parse() {
        let old = r#"{"create":1,"get":2,"list":3,"patch":4,"put":5,"delete":6,"errors_4xx":7,"errors_5xx":8}"#;
        let snap: RequestCounters = serde_json::from_str(old).unwrap();
        assert_eq!((snap.total(), snap.group_total()), (21, 0));
    }
}
