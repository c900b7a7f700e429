//! The outcome of one user in a batch, and what it changes in the mirror.

use dirsync_proto::Counts;

/// How one user of a batch ended: exactly one of synced, skipped, failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// A SCIM write succeeded.
    Synced,
    /// Nothing needed writing.
    Skipped,
    /// The user could not be synced; the reason is shown to operators.
    Failed(String),
}

/// What the mirror must record for one user.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorChange {
    /// Webex now holds these attributes for this user.
    Upsert {
        webex_id: String,
        content_hash: u64,
        active: bool,
        /// As JSON text: the plan's canonical JSON of them ([`crate::diff::Plan::json`]).
        attributes_json: String,
        /// The user had no mirror row when it was planned (a create): its row is inserted
        /// rather than upserted (see [`crate::record`]).
        created: bool,
    },
    /// Webex no longer has the user.
    Remove,
}

/// The result of processing one user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserResult {
    pub entra_id: String,
    pub status: Status,
    pub mirror: Option<MirrorChange>,
}

impl UserResult {
    pub fn skipped(entra_id: impl Into<String>) -> Self {
        UserResult {
            entra_id: entra_id.into(),
            status: Status::Skipped,
            mirror: None,
        }
    }

    pub fn failed(entra_id: impl Into<String>, reason: impl Into<String>) -> Self {
        UserResult {
            entra_id: entra_id.into(),
            status: Status::Failed(reason.into()),
            mirror: None,
        }
    }
}

/// Adds up the statuses of a batch.
pub fn count(results: &[UserResult]) -> Counts {
    let mut counts = Counts::default();
    for r in results {
        match r.status {
            Status::Synced => counts.synced += 1,
            Status::Skipped => counts.skipped += 1,
            Status::Failed(_) => counts.failed += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_status_once() {
        let results = vec![
            UserResult {
                entra_id: "a".into(),
                status: Status::Synced,
                mirror: Some(MirrorChange::Remove),
            },
            UserResult::skipped("b"),
            UserResult::skipped("c"),
            UserResult::failed("d", "boom"),
        ];
        assert_eq!(
            count(&results),
            Counts {
                synced: 1,
                skipped: 2,
                failed: 1
            }
        );
        assert_eq!(count(&[]), Counts::default());
    }
}
