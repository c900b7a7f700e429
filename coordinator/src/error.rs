//! The coordinator's error type; retryability is part of it.

use std::time::Duration;

/// Everything that can go wrong in the coordinator library.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker refused to confirm the batch (nack)")]
    PublishNacked,
    #[error("broker: no connection within {} s", .0.as_secs())]
    BrokerConnectTimeout(Duration),
    #[error("graph token request failed: {0}")]
    GraphAuth(String),
    #[error("graph http {status}: {code}: {message}")]
    GraphStatus {
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("graph transport: {0}")]
    GraphTransport(#[from] reqwest::Error),
    #[error("graph page malformed: {0}")]
    GraphPage(String),
    #[error("graph delta state is gone ({0}); a full resync is required")]
    ResyncRequired(String),
    /// The Webex org's settings API (domains, SSO, Directory Connector) refused a request
    /// or could not be reached.
    #[error("webex org: {0}")]
    WebexOrg(String),
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    #[error("run {0} not found")]
    RunNotFound(String),
    /// The Entra tenant has no such user (provision on demand).
    #[error("user {0} not found in the entra tenant")]
    UserNotFound(String),
    /// A batch of the priority lane got no result in time (provision on demand).
    #[error("the workers did not answer in time ({0} s); is a worker running?")]
    WorkersTimedOut(u64),
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Mapping rules that cannot be saved, with the rule and the position in it.
    #[error("invalid mapping: {0}")]
    Mapping(#[from] dirsync_proto::mapping::MappingError),
    /// The request is valid but the object is not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    #[error("run {0} failed: {1}")]
    RunFailed(String, String),
    #[error(
        "run {run} is held by the accidental-deletion guard ({reason}); \
         approve or reject it with `dirsync run approve|reject {run}`"
    )]
    AwaitingApproval {
        run: String,
        count: u64,
        reason: String,
    },
    #[error("tenant quarantined: {0}")]
    Quarantined(String),
    #[error("shutting down")]
    Cancelled,
    #[error("lost the lease on tenant {0} to another coordinator")]
    LeaseLost(String),
    /// A URL (a tenant's, or a Graph link) names a host outside `allowed_hosts`: the
    /// request is not sent, nor retried.
    #[error(transparent)]
    HostNotAllowed(dirsync_proto::ProtoError),
}

impl CoordinatorError {
    /// Whether trying the same operation again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::GraphStatus { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            Self::GraphTransport(e) => {
                e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
            }
            Self::Broker(_) | Self::PublishNacked | Self::BrokerConnectTimeout(_) => true,
            Self::Db(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => true,
            _ => false,
        }
    }

    /// Whether Graph refused the tenant's credentials (the token request, or a 401/403 that
    /// a fresh token did not cure): the tenant is quarantined at once.
    pub fn is_credential_failure(&self) -> bool {
        matches!(self, Self::GraphAuth(_))
            || matches!(
                self,
                Self::GraphStatus {
                    status: 401 | 403,
                    ..
                }
            )
    }

    /// The server's requested wait before retrying, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::GraphStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
