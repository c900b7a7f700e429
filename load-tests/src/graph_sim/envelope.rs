//! Error bodies as Graph and the Microsoft identity platform send them: the Graph error
//! envelope (`error.code`, `error.message`, `error.innerError`) and the AADSTS token error.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// Per-request identifiers Graph echoes in headers and error bodies.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    /// A fresh `request-id`; `client-request-id` is the caller's if sent, as Graph does.
    pub(crate) fn new(headers: &HeaderMap) -> RequestIds {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = headers
            .get(&CLIENT_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| request_id.clone(), str::to_owned);
        RequestIds {
            request_id,
            client_request_id,
        }
    }

    /// Adds `request-id` and `client-request-id` to a response.
    pub(crate) fn stamp(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        for (name, value) in [
            (REQUEST_ID, &self.request_id),
            (CLIENT_REQUEST_ID, &self.client_request_id),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
        response
    }

    /// A Graph error response.
    pub(crate) fn graph_error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        self.graph_error_with(status, code, message, Map::new())
    }

    /// A Graph error response whose `innerError` also holds `inner` (e.g. the 429's `code` and
    /// `status`, or a nested `innerError`).
    pub(crate) fn graph_error_with(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        inner: Map<String, Value>,
    ) -> Response {
        let mut inner_error = inner;
        inner_error.insert(
            "date".into(),
            json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()),
        );
        inner_error.insert("request-id".into(), json!(self.request_id));
        inner_error.insert("client-request-id".into(), json!(self.client_request_id));
        let body = json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": inner_error,
            }
        });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // What Graph sends with a 401, pointing the client at the token issuer.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        self.stamp(response)
    }
}

/// A token endpoint refusal: HTTP status, OAuth error, AADSTS number and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

impl AadError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> AadError {
        AadError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    /// The JSON body, with fresh trace and correlation ids.
    pub(crate) fn body(&self) -> Value {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        })
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
