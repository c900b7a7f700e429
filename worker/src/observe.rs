//! What the worker's steps mean in the fleet's metric labels (`dirsync_telemetry::labels`),
//! and the per-batch tallies handed to `dirsync_telemetry::metrics()`.
//!
//! Objects are added up per batch and recorded once per (outcome, action) pair when the
//! batch's transaction commits, so a hot loop never touches an instrument and a redelivered
//! batch (already recorded) is not counted twice. Only users are counted in
//! `dirsync.objects` (its series have no object type); group batches show in
//! `dirsync.batches.processed{kind="groups"}`. A dry run writes nothing and counts no
//! objects. A follow-up pass (references, avatars) counts only its failures, as its
//! recorded counts do.

use std::collections::HashMap;

use dirsync_proto::BatchMessage;
use dirsync_telemetry::labels::{BatchKind, ObjectAction, ObjectOutcome, RetryReason};

use crate::diff::Action;
use crate::error::WorkerError;
use crate::outcome::{Status, UserResult};

/// What a batch carries.
pub fn batch_kind(batch: &BatchMessage) -> BatchKind {
    if batch.dry_run {
        BatchKind::DryRun
    } else if !batch.groups.is_empty() {
        BatchKind::Groups
    } else {
        BatchKind::Users
    }
}

/// The label of a planned action.
pub fn object_action(action: &Action) -> ObjectAction {
    match action {
        Action::Create => ObjectAction::Create,
        Action::Patch { .. } => ObjectAction::Update,
        Action::Deactivate { .. } => ObjectAction::Deactivate,
        Action::Delete { .. } => ObjectAction::Delete,
        Action::Skip(_) => ObjectAction::Skip,
        Action::Fail(_) => ObjectAction::Fail,
    }
}

/// Why a SCIM request is tried again: the server asked us to wait (429, or any status with
/// `Retry-After`), the server failed (other 5xx, 423 Locked), or no usable answer came
/// (no response, 408).
pub fn retry_reason(error: &WorkerError) -> RetryReason {
    match error.scim_status() {
        Some(429) => RetryReason::Throttled,
        Some(_) if error.retry_after().is_some() => RetryReason::Throttled,
        Some(423 | 500..=599) => RetryReason::ServerError,
        _ => RetryReason::Transport,
    }
}

/// The `error.type` of a span that failed with `error`: the error's kind, never its text
/// (which may name a user).
pub fn error_type(error: &WorkerError) -> &'static str {
    match error {
        WorkerError::ScimStatus { .. } => "scim_status",
        WorkerError::ForeignAccount => "foreign_account",
        WorkerError::TenantScim(inner) => error_type(inner),
        WorkerError::ScimTransport(e) if e.is_timeout() => "timeout",
        WorkerError::ScimTransport(e) if e.is_connect() => "connect",
        WorkerError::ScimTransport(_) => "transport",
        WorkerError::ScimResponse(_) => "scim_response",
        WorkerError::ScimBaseUrl(_) => "scim_base_url",
        WorkerError::MissingUserName => "missing_user_name",
        WorkerError::ScimPath { .. } => "scim_path",
        WorkerError::HttpClient(_) => "http_client",
        WorkerError::Database(_) => "database",
        WorkerError::Migrate(_) => "migrate",
        WorkerError::Redis(_) => "redis",
        WorkerError::Amqp(_) => "amqp",
        WorkerError::ChannelClosed => "channel_closed",
        WorkerError::PublishNacked { .. } => "publish_nacked",
        WorkerError::Decode(_) => "decode",
        WorkerError::Secrets(_) => "secrets",
        WorkerError::CountOutOfRange(_) => "count_out_of_range",
        WorkerError::ForeignRun { .. } => "foreign_run",
    }
}

/// A batch's users by (outcome, action).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectTally(HashMap<(ObjectOutcome, ObjectAction), u64>);

impl ObjectTally {
    /// Tallies `results`; `actions` holds each pushed user's planned action. A user without
    /// one was never planned: skipped as superseded by a later entry, or failed before
    /// planning (unknown tenant, broken mapping).
    pub fn of_users(results: &[UserResult], actions: &HashMap<String, ObjectAction>) -> Self {
        let mut tally = Self::default();
        for result in results {
            let outcome = match result.status {
                Status::Synced => ObjectOutcome::Synced,
                Status::Skipped => ObjectOutcome::Skipped,
                Status::Failed(_) => ObjectOutcome::Failed,
            };
            let action = actions
                .get(&result.entra_id)
                .copied()
                .unwrap_or(match outcome {
                    ObjectOutcome::Failed => ObjectAction::Fail,
                    ObjectOutcome::Synced | ObjectOutcome::Skipped => ObjectAction::Skip,
                });
            *tally.0.entry((outcome, action)).or_default() += 1;
        }
        tally
    }

    /// Keeps only the failures (a follow-up pass's users were counted by the run already).
    pub fn failures_only(mut self) -> Self {
        self.0
            .retain(|(outcome, _), _| *outcome == ObjectOutcome::Failed);
        self
    }

    /// How many objects ended with `outcome` after `action`.
    pub fn get(&self, outcome: ObjectOutcome, action: ObjectAction) -> u64 {
        self.0.get(&(outcome, action)).copied().unwrap_or(0)
    }

    /// Adds the tally to `dirsync.objects`, one call per (outcome, action) pair.
    pub fn record(&self) {
        let metrics = dirsync_telemetry::metrics();
        for (&(outcome, action), &count) in &self.0 {
            metrics.objects(outcome, action, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn scim(status: u16, retry_after: Option<Duration>) -> WorkerError {
        WorkerError::ScimStatus {
            status,
            scim_type: None,
            detail: "d".into(),
            tracking_id: None,
            retry_after,
        }
    }

    #[test]
    fn retries_are_classed_by_what_the_server_said() {
        let wait = Some(Duration::from_secs(1));
        let cases = [
            (scim(429, None), RetryReason::Throttled),
            (scim(429, wait), RetryReason::Throttled),
            (scim(503, wait), RetryReason::Throttled),
            (scim(503, None), RetryReason::ServerError),
            (scim(500, None), RetryReason::ServerError),
            (scim(423, None), RetryReason::ServerError),
            (scim(408, None), RetryReason::Transport),
            (
                WorkerError::ScimResponse("x".into()),
                RetryReason::Transport,
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(retry_reason(&error), reason, "{error}");
        }
    }

    #[test]
    fn users_are_tallied_by_outcome_and_planned_action() {
        let synced = |id: &str| UserResult {
            entra_id: id.into(),
            status: Status::Synced,
            mirror: None,
        };
        let results = vec![
            synced("created"),
            synced("created-too"),
            synced("patched"),
            UserResult::skipped("gone-already"),
            UserResult::skipped("superseded"),
            UserResult::failed("create-refused", "foreign"),
            UserResult::failed("unmapped", "unknown tenant"),
        ];
        let actions = HashMap::from([
            ("created".to_string(), ObjectAction::Create),
            ("created-too".to_string(), ObjectAction::Create),
            ("patched".to_string(), ObjectAction::Update),
            ("gone-already".to_string(), ObjectAction::Deactivate),
            ("create-refused".to_string(), ObjectAction::Create),
        ]);
        let tally = ObjectTally::of_users(&results, &actions);
        let expected = [
            (ObjectOutcome::Synced, ObjectAction::Create, 2),
            (ObjectOutcome::Synced, ObjectAction::Update, 1),
            (ObjectOutcome::Skipped, ObjectAction::Deactivate, 1),
            (ObjectOutcome::Skipped, ObjectAction::Skip, 1),
            (ObjectOutcome::Failed, ObjectAction::Create, 1),
            (ObjectOutcome::Failed, ObjectAction::Fail, 1),
        ];
        for (outcome, action, count) in expected {
            assert_eq!(tally.get(outcome, action), count, "{outcome:?} {action:?}");
        }
        assert_eq!(tally.0.len(), expected.len());

        let failures = tally.failures_only();
        assert_eq!(failures.0.len(), 2);
        assert_eq!(failures.get(ObjectOutcome::Synced, ObjectAction::Create), 0);
        assert_eq!(failures.get(ObjectOutcome::Failed, ObjectAction::Fail), 1);
    }

    #[test]
    fn the_batch_kind_follows_its_content() {
        let mut batch = BatchMessage {
            version: dirsync_proto::WIRE_VERSION,
            tenant_id: dirsync_proto::TenantId::new(),
            run_id: dirsync_proto::RunId::new(),
            seq: 0,
            users: Vec::new(),
            groups: Vec::new(),
            dry_run: false,
        };
        assert_eq!(batch_kind(&batch), BatchKind::Users);
        batch.groups.push(dirsync_proto::SourceGroup {
            id: "g".into(),
            removed: None,
            display_name: None,
            members: Vec::new(),
        });
        assert_eq!(batch_kind(&batch), BatchKind::Groups);
        batch.dry_run = true;
        assert_eq!(batch_kind(&batch), BatchKind::DryRun);
    }
}
