//! SCIM errors of the simulator and their RFC 7644 §3.12 wire form (`status` as a string).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::schema::ERROR_SCHEMA;

/// `scimType` values of RFC 7644 §3.12 that the simulator emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    InvalidSyntax,
    InvalidPath,
    InvalidValue,
    NoTarget,
    Mutability,
    Uniqueness,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::InvalidValue => "invalidValue",
            ScimType::NoTarget => "noTarget",
            ScimType::Mutability => "mutability",
            ScimType::Uniqueness => "uniqueness",
        }
    }
}

/// A request the simulator refuses; becomes a SCIM error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    #[error("bad request ({}): {detail}", scim_type.as_str())]
    BadRequest { scim_type: ScimType, detail: String },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Uniqueness(String),
    /// 413: a Bulk request over the operations limit (RFC 7644 §3.7.4).
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// 429 from the org's token bucket, with `Retry-After` in whole seconds.
    #[error("too many requests, retry after {retry_after_secs}s")]
    Throttled { retry_after_secs: u64 },
    /// 503: an injected failure ([`super::ScimSimConfig::fail_every`]).
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl ScimError {
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError::BadRequest {
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ScimError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ScimError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ScimError::NotFound(_) => StatusCode::NOT_FOUND,
            ScimError::Uniqueness(_) => StatusCode::CONFLICT,
            ScimError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ScimError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ScimError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn scim_type(&self) -> Option<ScimType> {
        match self {
            ScimError::BadRequest { scim_type, .. } => Some(*scim_type),
            ScimError::Uniqueness(_) => Some(ScimType::Uniqueness),
            ScimError::Unauthorized(_)
            | ScimError::NotFound(_)
            | ScimError::TooLarge(_)
            | ScimError::Throttled { .. }
            | ScimError::Unavailable(_) => None,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            ScimError::BadRequest { detail, .. } => detail,
            ScimError::Unauthorized(d)
            | ScimError::NotFound(d)
            | ScimError::Uniqueness(d)
            | ScimError::TooLarge(d)
            | ScimError::Unavailable(d) => d,
            ScimError::Throttled { .. } => "too many requests",
        }
    }

    /// The RFC 7644 error body, e.g. `{"schemas":[…Error],"status":"409","scimType":"uniqueness","detail":…}`.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status().as_u16().to_string(),
            "detail": self.detail(),
        });
        if let Some(t) = self.scim_type() {
            body["scimType"] = json!(t.as_str());
        }
        body
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        match self {
            ScimError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ScimError::Throttled { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
