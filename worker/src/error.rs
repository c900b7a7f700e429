//! The error type of the worker crate, and how each error is classified.
//!
//! Three questions are asked of an error: is it worth trying again (`is_retryable`), did
//! the server say when (`retry_after`), and is it about one user or about the tenant's SCIM
//! service as a whole (`is_object_specific`). SCIM calls use the first two to drive their
//! backoff; the consumer uses `is_retryable` to choose between requeueing a batch and
//! rejecting it; the push step uses the third to choose between recording a failed user and
//! failing the whole batch ([`WorkerError::TenantScim`]).

use std::time::Duration;

/// Everything that can go wrong in the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The SCIM server answered with a non-success status.
    #[error("scim {status}: {}", describe_scim(.detail, .tracking_id))]
    ScimStatus {
        status: u16,
        /// The SCIM `scimType`, e.g. `uniqueness`.
        scim_type: Option<String>,
        /// The SCIM `detail` (or the Cisco extension's `details`), or a short body excerpt.
        detail: String,
        tracking_id: Option<String>,
        /// The parsed `Retry-After` header, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// A create conflicted on userName and the org has no user by that name: the
    /// address belongs to a Webex account elsewhere.
    #[error("userName taken by an account outside this org")]
    ForeignAccount,
    /// The tenant's SCIM service failed as a whole while a batch was pushed: token refused
    /// (401/403), unreachable, or still throttled or erroring after the retry budget. No
    /// user is to blame, so the batch is retried later instead of recorded with failures.
    #[error("scim unavailable for the tenant: {0}")]
    TenantScim(#[source] Box<WorkerError>),
    /// The SCIM request never got a response (connection refused, reset, timeout).
    #[error("scim transport error: {0}")]
    ScimTransport(#[source] reqwest::Error),
    /// The SCIM server answered success with a body we cannot use.
    #[error("invalid scim response: {0}")]
    ScimResponse(String),
    /// The tenant's SCIM base URL is not a usable URL.
    #[error("invalid scim base url: {0}")]
    ScimBaseUrl(String),
    /// A user to create has no userName: its userPrincipalName was neither in this change
    /// nor pushed before.
    #[error("cannot create a user without userName (no userPrincipalName known)")]
    MissingUserName,
    /// A mapping produced a path the SCIM body builder cannot express.
    #[error("invalid scim path {path:?}: {reason}")]
    ScimPath { path: String, reason: &'static str },
    #[error("cannot build the http client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("amqp error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("amqp channel or consumer closed")]
    ChannelClosed,
    #[error("the broker refused the result event of run {run} batch {seq}")]
    PublishNacked { run: dirsync_proto::RunId, seq: u32 },
    #[error(transparent)]
    Decode(#[from] dirsync_proto::ProtoError),
    /// The tenant's SCIM token does not open with this worker's key (or it has none). The
    /// batch is requeued: another worker, configured right, can take it.
    #[error("tenant secret: {0}")]
    Secrets(#[source] dirsync_proto::ProtoError),
    #[error("count out of range: {0}")]
    CountOutOfRange(String),
    /// A batch whose run belongs to another tenant than the one it names: forged or
    /// corrupt, never pushed (it would use one tenant's org and record into the other's run).
    #[error("batch names tenant {tenant} but its run {run} belongs to tenant {owner}")]
    ForeignRun {
        tenant: dirsync_proto::TenantId,
        run: dirsync_proto::RunId,
        owner: dirsync_proto::TenantId,
    },
}

fn describe_scim(detail: &str, tracking_id: &Option<String>) -> String {
    match tracking_id {
        Some(id) => format!("{detail} (trackingId {id})"),
        None => detail.to_string(),
    }
}

impl WorkerError {
    /// Whether the same operation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            // 423 Locked is transient by definition and Webex may send Retry-After with it.
            WorkerError::ScimStatus { status, .. } => {
                matches!(status, 408 | 423 | 429) || (500..=599).contains(status)
            }
            WorkerError::ScimTransport(e) => {
                e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
            }
            WorkerError::ScimResponse(_)
            | WorkerError::ForeignAccount
            | WorkerError::ScimBaseUrl(_)
            | WorkerError::MissingUserName
            | WorkerError::ScimPath { .. }
            | WorkerError::HttpClient(_)
            | WorkerError::Decode(_)
            | WorkerError::ForeignRun { .. }
            | WorkerError::CountOutOfRange(_) => false,
            // A violated constraint (class 23) will be violated again: e.g. a batch whose run
            // or tenant does not exist.
            WorkerError::Database(sqlx::Error::Database(db)) => {
                !db.code().is_some_and(|c| c.starts_with("23"))
            }
            WorkerError::TenantScim(_)
            | WorkerError::Secrets(_)
            | WorkerError::Database(_)
            | WorkerError::Migrate(_)
            | WorkerError::Redis(_)
            | WorkerError::Amqp(_)
            | WorkerError::ChannelClosed
            | WorkerError::PublishNacked { .. } => true,
        }
    }

    /// Whether the tenant's Webex org refused its credentials (401/403, directly or as the
    /// cause of a [`WorkerError::TenantScim`]): the tenant is to be quarantined.
    pub fn is_credential_failure(&self) -> bool {
        match self {
            WorkerError::ScimStatus { status, .. } => matches!(status, 401 | 403),
            WorkerError::TenantScim(inner) => inner.is_credential_failure(),
            _ => false,
        }
    }

    /// Whether this error, met while pushing one user, is about that user (its data, its
    /// userName) rather than about the tenant's SCIM service: only then may the user be
    /// recorded as failed. Anything else fails the batch, which is retried later: recording
    /// it would let the run finish and the deltaLink advance past a change never applied.
    pub fn is_object_specific(&self) -> bool {
        match self {
            // 401/403 are the tenant's token (expired, revoked, lacking scope); retryable
            // statuses that reach here outlasted the retry budget.
            WorkerError::ScimStatus { status, .. } => {
                !matches!(status, 401 | 403) && !self.is_retryable()
            }
            WorkerError::ForeignAccount
            | WorkerError::MissingUserName
            | WorkerError::ScimPath { .. }
            | WorkerError::ScimResponse(_) => true,
            WorkerError::ScimTransport(_)
            | WorkerError::TenantScim(_)
            | WorkerError::ScimBaseUrl(_)
            | WorkerError::HttpClient(_)
            | WorkerError::Database(_)
            | WorkerError::Migrate(_)
            | WorkerError::Redis(_)
            | WorkerError::Amqp(_)
            | WorkerError::ChannelClosed
            | WorkerError::PublishNacked { .. }
            | WorkerError::Decode(_)
            | WorkerError::Secrets(_)
            | WorkerError::ForeignRun { .. }
            | WorkerError::CountOutOfRange(_) => false,
        }
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WorkerError::ScimStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of a SCIM error response.
    pub fn scim_status(&self) -> Option<u16> {
        match self {
            WorkerError::ScimStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The text shown to operators for an object that failed because of this error.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
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
    fn classifies_scim_statuses() {
        let cases: &[(u16, bool)] = &[
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (408, true),
            (409, false),
            (410, false),
            (413, false),
            (423, true),
            (429, true),
            (500, true),
            (502, true),
            (503, true),
            (504, true),
        ];
        for (status, retryable) in cases {
            assert_eq!(
                scim(*status, None).is_retryable(),
                *retryable,
                "status {status}"
            );
        }
    }

    #[test]
    fn only_errors_about_one_user_fail_that_user() {
        let cases: Vec<(WorkerError, bool)> = vec![
            (scim(400, None), true),
            (scim(404, None), true),
            (scim(409, None), true),
            (scim(410, None), true),
            (scim(413, None), true),
            (WorkerError::ForeignAccount, true),
            (WorkerError::MissingUserName, true),
            (WorkerError::ScimResponse("no id".into()), true),
            (
                WorkerError::ScimPath {
                    path: "a[".into(),
                    reason: "r",
                },
                true,
            ),
            (scim(401, None), false),
            (scim(403, None), false),
            (scim(408, None), false),
            (scim(423, None), false),
            (scim(429, Some(Duration::from_secs(1))), false),
            (scim(500, None), false),
            (scim(503, None), false),
            (WorkerError::ScimBaseUrl("x".into()), false),
            (WorkerError::TenantScim(Box::new(scim(400, None))), false),
            (WorkerError::Database(sqlx::Error::PoolTimedOut), false),
        ];
        for (e, specific) in cases {
            assert_eq!(e.is_object_specific(), specific, "{e}");
        }
    }

    #[test]
    fn a_tenant_scim_failure_is_retried_later() {
        let e = WorkerError::TenantScim(Box::new(scim(401, None)));
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "scim unavailable for the tenant: scim 401: d"
        );
    }

    #[test]
    fn retry_after_only_from_scim_status() {
        let d = Duration::from_millis(1500);
        assert_eq!(scim(429, Some(d)).retry_after(), Some(d));
        assert_eq!(scim(503, None).retry_after(), None);
        assert_eq!(WorkerError::ScimResponse("x".into()).retry_after(), None);
    }

    #[test]
    fn non_scim_classification() {
        assert!(!WorkerError::ScimResponse("x".into()).is_retryable());
        assert!(
            !WorkerError::ScimPath {
                path: "a[".into(),
                reason: "r"
            }
            .is_retryable()
        );
        assert!(WorkerError::Database(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(
            WorkerError::PublishNacked {
                run: dirsync_proto::RunId::new(),
                seq: 1
            }
            .is_retryable()
        );
    }

    #[test]
    fn reason_carries_detail_and_tracking_id() {
        let e = WorkerError::ScimStatus {
            status: 400,
            scim_type: Some("invalidValue".into()),
            detail: "displayName too long".into(),
            tracking_id: Some("TRK_1".into()),
            retry_after: None,
        };
        assert_eq!(
            e.reason(),
            "scim 400: displayName too long (trackingId TRK_1)"
        );
    }
}
