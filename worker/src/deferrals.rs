//! Manager references a batch defers or settles, as rows of `deferred_refs`.
//!
//! The mirror records a user's manager by Entra id, whether or not Webex has it; a row of
//! `deferred_refs` says that Webex does not have it yet (the manager was not in Webex when
//! the user was pushed). The worker reads a user's deferral with its mirror row, so a batch
//! deletes only deferrals that exist: the users that waited and no longer do (their
//! reference was sent, or they have no manager now, or left the mirror), each only if it
//! still waits for the manager the batch read, so that a deferral another batch wrote
//! meanwhile is kept. A user whose push failed keeps the deferral it had and gets no new
//! one: the retry decides again.
//!
//! The reference pass (`coordinator::references`) sends the waiting users' references once
//! their managers are in Webex; applying one deletes its row and leaves the mirror row as
//! it is (migration 23 says why).

use std::collections::HashMap;

use dirsync_proto::SourceUser;

use crate::diff::MirrorUser;

use crate::pipeline::Deferred;

/// What a batch changes in the users' deferred references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefChanges {
    /// (user, manager) deferrals the batch's mirror read showed, sorted.
    pub read: Vec<(String, String)>,
    /// (user, manager) references waiting for their manager, sorted by user.
    pub deferred: Vec<(String, String)>,
    /// The batch is one of the coordinator's follow-up passes (references, avatars): its
    /// entries are not users synced or skipped again (the run counted them already), only
    /// its failures count.
    pub partial_pass: bool,
}

impl RefChanges {
    /// The changes of a planned batch: `deferred` wait (again); the deferrals its mirror
    /// read showed are settled unless they wait again.
    pub fn of_batch(
        users: &[SourceUser],
        mirror: &HashMap<String, MirrorUser>,
        deferred: Vec<Deferred>,
    ) -> Self {
        let mut deferred: Vec<(String, String)> = deferred
            .into_iter()
            .map(|d| (d.entra_id, d.manager_id))
            .collect();
        deferred.sort();
        deferred.dedup_by(|a, b| a.0 == b.0);
        let mut read: Vec<(String, String)> = mirror
            .iter()
            .filter_map(|(id, row)| Some((id.clone(), row.deferred_manager.clone()?)))
            .collect();
        read.sort();
        RefChanges {
            read,
            deferred,
            partial_pass: !users.is_empty() && users.iter().all(SourceUser::is_partial),
        }
    }

    /// The deferrals to delete and the ones to write once the batch was pushed, given the
    /// users whose push `failed` and those it `removed` from the mirror (both sorted). A
    /// user whose push failed keeps what it had; a removed user waits for nothing. A
    /// deferral is deleted only as read (user and manager): one that another batch wrote
    /// meanwhile stays.
    #[allow(clippy::type_complexity)]
    pub fn effective<'a>(
        &'a self,
        failed: &[&str],
        removed: &[&str],
    ) -> (Vec<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>) {
        let has = |ids: &[&str], id: &str| ids.binary_search(&id).is_ok();
        let waiting: Vec<(&str, &str)> = self
            .deferred
            .iter()
            .filter(|(id, _)| !has(failed, id) && !has(removed, id))
            .map(|(id, manager)| (id.as_str(), manager.as_str()))
            .collect();
        let settled = self
            .read
            .iter()
            .filter(|(id, _)| !has(failed, id))
            .filter(|(id, _)| waiting.binary_search_by(|w| w.0.cmp(id)).is_err())
            .map(|(id, manager)| (id.as_str(), manager.as_str()))
            .collect();
        (settled, waiting)
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

    fn row(waits_for: Option<&str>) -> MirrorUser {
        MirrorUser {
            webex_id: "w".into(),
            content_hash: 0,
            active: true,
            attributes: Default::default(),
            deferred_manager: waits_for.map(str::to_string),
        }
    }

    fn deferred(user: &str, manager: &str) -> Deferred {
        Deferred {
            entra_id: user.into(),
            manager_id: manager.into(),
        }
    }

    #[test]
    fn waiting_users_settle_or_wait_again_and_failures_keep_theirs() {
        let users = vec![user("a", json!({})), user("b", json!({}))];
        let mirror = HashMap::from([
            ("w1".to_string(), row(Some("m1"))),
            ("w2".to_string(), row(Some("m2"))),
            ("w3".to_string(), row(Some("m3"))),
            ("w4".to_string(), row(Some("m4"))),
            ("n".to_string(), row(None)),
        ]);
        let changes = RefChanges::of_batch(
            &users,
            &mirror,
            vec![
                deferred("w2", "m9"),
                deferred("new", "m4"),
                deferred("f", "m5"),
                deferred("w4", "m4"),
            ],
        );
        assert_eq!(changes.read.len(), 4);
        assert!(!changes.partial_pass);
        // w3 and f failed, w4 left the mirror.
        let (settled, waiting) = changes.effective(&["f", "w3"], &["w4"]);
        // w1 settled; w2 waits for another manager (written over); w3 failed (kept);
        // w4 left the mirror (deleted, not written again).
        assert_eq!(settled, [("w1", "m1"), ("w4", "m4")]);
        assert_eq!(waiting, [("new", "m4"), ("w2", "m9")]);
    }

    #[test]
    fn a_batch_of_follow_up_entries_is_a_partial_pass() {
        let users = vec![user("k", json!({"dirsync.partial": true}))];
        let changes = RefChanges::of_batch(&users, &HashMap::new(), Vec::new());
        assert!(changes.partial_pass);
        assert!(changes.read.is_empty() && changes.deferred.is_empty());
    }
}
