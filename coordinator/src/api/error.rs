//! Errors as the admin API answers them: a status and a JSON body `{"error", "message"}`
//! whose `error` is a stable code for scripts and whose `message` says what to fix.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::CoordinatorError;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code: `unauthorized`, `not_found`, `invalid`, `conflict`, `unavailable`,
    /// `internal`.
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// For a refused mapping: the index of the rule at fault ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// ... and the character position in its expression, when the error is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.to_string(),
                message: message.into(),
                rule: None,
                position: None,
            },
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin token is required: `Authorization: Bearer <token>` \
             (create one with `dirsync admin-token create`)",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
}

impl From<CoordinatorError> for ApiError {
    fn from(e: CoordinatorError) -> Self {
        use CoordinatorError as E;
        let (status, code) = match &e {
            E::TenantNotFound(_) | E::RunNotFound(_) | E::UserNotFound(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            E::WorkersTimedOut(_) => (StatusCode::GATEWAY_TIMEOUT, "unavailable"),
            E::Invalid(_) | E::Mapping(_) => (StatusCode::BAD_REQUEST, "invalid"),
            E::Conflict(_) | E::AwaitingApproval { .. } => (StatusCode::CONFLICT, "conflict"),
            E::Db(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) | E::Broker(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            // Graph or Webex failed the call a request made: the services', not the
            // request's fault, said as they said it.
            E::GraphAuth(_)
            | E::GraphStatus { .. }
            | E::GraphTransport(_)
            | E::GraphPage(_)
            | E::WebexOrg(_) => (StatusCode::BAD_GATEWAY, "unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The detail may name internals: logged here, not sent.
            tracing::error!(error = %e, "admin api request failed");
            return Self::new(status, code, "internal error; see the coordinator's log");
        }
        match e {
            // The bare reason, without the "invalid input: " of the error's display.
            E::Invalid(reason) => Self::new(status, code, reason),
            E::Mapping(m) => {
                let mut error = Self::new(status, code, m.to_string());
                error.body.rule = Some(m.rule);
                error.body.position = m.position;
                error
            }
            e => Self::new(status, code, e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The admin API's result type.
pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body whose rejection (not JSON, a missing or unknown field, a wrong
/// type) is answered like every other error: 400 `invalid` with what serde says is wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::invalid(format!(
                "request body: {}",
                rejection.body_text()
            ))),
        }
    }
}
