//! Manager references a batch defers or settles, and how they land on the mirror rows.
//!
//! A deferred reference lives on its user's mirror row (`mirror_users.deferred_manager`),
//! so the write that records a user also sets or clears its deferral: no extra statement
//! and no index probe per user of the batch. The column is written with three meanings
//! ([`Deferrals::column_value`]): `NULL` keeps what the row holds (the entry said nothing
//! about the manager), `''` clears it, and a manager's Entra id makes the user wait for
//! that manager. `NULL` and `''` both read as "waits for nobody".
//!
//! Keeping is decided by PostgreSQL (`COALESCE(new, old)`), not from the row the worker
//! read, so two batches that hold the same user at once cannot undo each other's deferral.

use dirsync_proto::SourceUser;

use crate::pipeline::Deferred;

/// What a batch changes in the users' deferred references: the users whose manager
/// reference it settled (applied, cleared or now waiting for another manager) and the
/// references it deferred.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefChanges {
    /// Users whose earlier deferred reference, if any, is settled by this batch.
    pub settled: Vec<String>,
    /// (user, manager) references waiting for their manager.
    pub deferred: Vec<(String, String)>,
    /// The batch is one of the coordinator's follow-up passes (references, avatars): its
    /// entries are not users synced or skipped again (the run counted them already), only
    /// its failures count.
    pub partial_pass: bool,
}

impl RefChanges {
    /// The changes of a planned batch: every user whose entry speaks of its manager (or
    /// is a tombstone) settles its earlier deferral; `deferred` waits again.
    pub fn of_batch(users: &[SourceUser], deferred: Vec<Deferred>) -> Self {
        let mut settled: Vec<String> = users
            .iter()
            .filter(|u| u.removed.is_some() || u.attributes.contains_key("manager"))
            .map(|u| u.id.clone())
            .collect();
        settled.sort();
        settled.dedup();
        RefChanges {
            settled,
            deferred: deferred
                .into_iter()
                .map(|d| (d.entra_id, d.manager_id))
                .collect(),
            partial_pass: !users.is_empty() && users.iter().all(SourceUser::is_partial),
        }
    }

    /// The per-user values of `deferred_manager` this batch writes.
    pub fn deferrals(&self) -> Deferrals<'_> {
        let mut waiting: Vec<(&str, &str)> = self
            .deferred
            .iter()
            .map(|(user, manager)| (user.as_str(), manager.as_str()))
            .collect();
        waiting.sort_unstable();
        waiting.dedup_by(|a, b| a.0 == b.0);
        Deferrals {
            settled: &self.settled,
            waiting,
        }
    }
}

/// Looks up the `deferred_manager` value of one user of a batch.
#[derive(Debug)]
pub struct Deferrals<'a> {
    /// Sorted.
    settled: &'a [String],
    /// (user, manager), sorted by user.
    waiting: Vec<(&'a str, &'a str)>,
}

/// The value written for a settled reference that waits for nobody.
pub const CLEARED: &str = "";

impl<'a> Deferrals<'a> {
    /// `None`: keep the row's deferral; `Some("")`: clear it; `Some(manager)`: wait for
    /// that manager.
    pub fn column_value(&self, user: &str) -> Option<&'a str> {
        if let Ok(i) = self.waiting.binary_search_by(|w| w.0.cmp(user)) {
            return Some(self.waiting[i].1);
        }
        self.settled
            .binary_search_by(|s| s.as_str().cmp(user))
            .is_ok()
            .then_some(CLEARED)
    }

    /// Whether any user's deferral changes.
    pub fn any(&self) -> bool {
        !self.settled.is_empty() || !self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn user(id: &str, attributes: Value) -> SourceUser {
        let attributes: Map<String, Value> = serde_json::from_value(attributes).unwrap();
        SourceUser {
            id: id.into(),
            removed: None,
            attributes,
        }
    }

    fn deferred(user: &str, manager: &str) -> Deferred {
        Deferred {
            entra_id: user.into(),
            manager_id: manager.into(),
        }
    }

    #[test]
    fn each_user_keeps_clears_or_waits() {
        let mut gone = user("t", json!({}));
        gone.removed = Some(dirsync_proto::RemovedReason::Changed);
        let users = vec![
            user("w", json!({"manager": "m1"})),
            user("a", json!({"manager": "m2"})),
            user("k", json!({"displayName": "only a name"})),
            user("c", json!({"manager": null})),
            gone,
        ];
        let changes = RefChanges::of_batch(&users, vec![deferred("w", "m1")]);
        let d = changes.deferrals();
        // (user, value written)
        let cases = [
            ("w", Some("m1")),
            ("a", Some(CLEARED)),
            ("k", None),
            ("c", Some(CLEARED)),
            ("t", Some(CLEARED)),
            ("not-in-batch", None),
        ];
        for (id, want) in cases {
            assert_eq!(d.column_value(id), want, "user {id}");
        }
        assert!(d.any());
        assert!(!changes.partial_pass);
    }

    #[test]
    fn a_batch_without_manager_talk_changes_nothing() {
        let users = vec![user("k", json!({"displayName": "x"}))];
        let changes = RefChanges::of_batch(&users, Vec::new());
        assert!(!changes.deferrals().any());
        assert_eq!(changes.deferrals().column_value("k"), None);
    }
}
