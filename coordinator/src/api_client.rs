//! The admin API as the `dirsync` command line calls it: requests with the operator's
//! token, and answers turned into values or into failures with an exit code scripts can
//! rely on ([`ExitCode`]).

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::error::ErrorBody;

/// Exit codes of `dirsync` commands that call the API (clap itself exits with 2 on a bad
/// command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Anything else: a server error, an answer that cannot be read.
    Failed = 1,
    /// The API refused the input (400): the message says what to fix.
    Invalid = 3,
    /// No valid admin token (401): set DIRSYNC_API_TOKEN.
    Unauthorized = 4,
    /// The instance or run does not exist (404).
    NotFound = 5,
    /// The object is not in a state that allows it (409), e.g. a run not held.
    Conflict = 6,
    /// The API cannot be reached or is not ready (connection refused, 503): retry later.
    Unavailable = 7,
}

/// A failed API call: what the operator reads, and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    pub code: ExitCode,
    pub message: String,
}

impl ApiFailure {
    fn from_status(status: StatusCode, body: &str) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ExitCode::Invalid,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ExitCode::Unauthorized,
            StatusCode::NOT_FOUND => ExitCode::NotFound,
            StatusCode::CONFLICT => ExitCode::Conflict,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => ExitCode::Unavailable,
            _ => ExitCode::Failed,
        };
        let message = match serde_json::from_str::<ErrorBody>(body) {
            Ok(e) => match (e.rule, e.position) {
                (Some(rule), Some(position)) => {
                    format!("{} (rule {}, position {position})", e.message, rule + 1)
                }
                (Some(rule), None) => format!("{} (rule {})", e.message, rule + 1),
                _ => e.message,
            },
            Err(_) => format!(
                "the api answered {status}: {}",
                body.chars().take(300).collect::<String>()
            ),
        };
        Self { code, message }
    }
}

/// The admin API at `base` (e.g. `http://127.0.0.1:8480/api/v1`) with a token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: SecretString,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: &str, token: SecretString) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("the http client's configuration is static");
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        }
    }

    /// One call; `body` is sent as JSON. A success without content reads as `null`.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiFailure> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ApiFailure {
            code: ExitCode::Unavailable,
            message: format!(
                "cannot reach the admin api at {} ({e}); is `dirsync serve` running, and is \
                 DIRSYNC_API_URL right?",
                self.base
            ),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ApiFailure {
            code: ExitCode::Failed,
            message: format!("reading the api's answer: {e}"),
        })?;
        if !status.is_success() {
            return Err(ApiFailure::from_status(status, &text));
        }
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        serde_json::from_str(text).map_err(|e| ApiFailure {
            code: ExitCode::Failed,
            message: format!("the api's answer is not what this dirsync expects ({e}); are both the same version?"),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiFailure> {
        self.call::<Value, T>(Method::GET, path, None).await
    }

    /// A GET whose answer is written to `out` as it arrives, however large (a dry run's
    /// report); returns the bytes written.
    pub async fn download(
        &self,
        path: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, ApiFailure> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .http
            .get(&url)
            .bearer_auth(self.token.expose_secret())
            // A large report takes longer than one API call may.
            .timeout(std::time::Duration::from_secs(3600))
            .send()
            .await
            .map_err(|e| ApiFailure {
                code: ExitCode::Unavailable,
                message: format!("cannot reach the admin api at {} ({e})", self.base),
            })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(ApiFailure::from_status(status, &text));
        }
        let broken = |e: String| ApiFailure {
            code: ExitCode::Failed,
            message: format!("the download broke off: {e}"),
        };
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| broken(e.to_string()))? {
            out.write_all(&chunk).map_err(|e| broken(e.to_string()))?;
            written += chunk.len() as u64;
        }
        out.flush().map_err(|e| broken(e.to_string()))?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_exit_codes_and_errors_say_what_to_fix() {
        let body = |message: &str| format!(r#"{{"error":"x","message":"{message}"}}"#);
        let cases = [
            (StatusCode::BAD_REQUEST, ExitCode::Invalid),
            (StatusCode::UNAUTHORIZED, ExitCode::Unauthorized),
            (StatusCode::NOT_FOUND, ExitCode::NotFound),
            (StatusCode::CONFLICT, ExitCode::Conflict),
            (StatusCode::SERVICE_UNAVAILABLE, ExitCode::Unavailable),
            (StatusCode::INTERNAL_SERVER_ERROR, ExitCode::Failed),
        ];
        for (status, code) in cases {
            let f = ApiFailure::from_status(status, &body("fix this"));
            assert_eq!((f.code, f.message.as_str()), (code, "fix this"), "{status}");
        }
        let mapping = r#"{"error":"invalid","message":"mapping of title: expected )","rule":0,"position":20}"#;
        assert_eq!(
            ApiFailure::from_status(StatusCode::BAD_REQUEST, mapping).message,
            "mapping of title: expected ) (rule 1, position 20)"
        );
        let html = ApiFailure::from_status(StatusCode::BAD_GATEWAY, "<html>proxy</html>");
        assert_eq!(html.code, ExitCode::Unavailable);
        assert!(html.message.contains("502") && html.message.contains("<html>"));
    }
}
