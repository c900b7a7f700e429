//! Per-org request counters of the SCIM simulator: how many requests of each kind an org
//! received (whatever their outcome) and how many ended in a 4xx or 5xx, so load tests can
//! check how much SCIM traffic a sync cost.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// The SCIM operation a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Create,
    Get,
    List,
    Patch,
    Put,
    Delete,
}

/// A snapshot of an org's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounters {
    pub create: u64,
    pub get: u64,
    pub list: u64,
    pub patch: u64,
    pub put: u64,
    pub delete: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
}

impl RequestCounters {
    /// Every SCIM request, of any kind and outcome.
    pub fn total(&self) -> u64 {
        self.create + self.get + self.list + self.patch + self.put + self.delete
    }

    /// Requests that ask to change state: create + patch + put + delete.
    pub fn writes(&self) -> u64 {
        self.create + self.patch + self.put + self.delete
    }
}

/// The live, lock-free counters behind [`RequestCounters`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    create: AtomicU64,
    get: AtomicU64,
    list: AtomicU64,
    patch: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    errors_4xx: AtomicU64,
    errors_5xx: AtomicU64,
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 8] {
        [
            &self.create,
            &self.get,
            &self.list,
            &self.patch,
            &self.put,
            &self.delete,
            &self.errors_4xx,
            &self.errors_5xx,
        ]
    }

    pub fn count(&self, kind: RequestKind) {
        let c = match kind {
            RequestKind::Create => &self.create,
            RequestKind::Get => &self.get,
            RequestKind::List => &self.list,
            RequestKind::Patch => &self.patch,
            RequestKind::Put => &self.put,
            RequestKind::Delete => &self.delete,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_status(&self, status: StatusCode) {
        if status.is_client_error() {
            self.errors_4xx.fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            self.errors_5xx.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> RequestCounters {
        let [
            create,
            get,
            list,
            patch,
            put,
            delete,
            errors_4xx,
            errors_5xx,
        ] = self.all().map(|c| c.load(Ordering::Relaxed));
        RequestCounters {
            create,
            get,
            list,
            patch,
            put,
            delete,
            errors_4xx,
            errors_5xx,
        }
    }

    pub fn reset(&self) {
        for c in self.all() {
            c.store(0, Ordering::Relaxed);
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
        ];
        for k in kinds {
            c.count(k);
        }
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
                create: 2,
                get: 1,
                list: 1,
                patch: 1,
                put: 1,
                delete: 1,
                errors_4xx: 2,
                errors_5xx: 1
            }
        );
        assert_eq!((snap.total(), snap.writes()), (7, 5));
        c.reset();
        assert_eq!(c.snapshot(), RequestCounters::default());
    }
}
