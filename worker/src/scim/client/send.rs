//! One SCIM request as the client sends it: retries under the client's retry policy, the org's
//! rate limit before each attempt, and each attempt's `scim_request` span (OpenTelemetry HTTP
//! client conventions: `http.request.method`, `http.response.status_code`,
//! `http.request.resend_count`, `url.template`, `server.address`, `error.type`) and its
//! `http.client.request.duration` metric. Neither carries the full URL (a search's query
//! holds userNames) nor the token.

use std::time::{Duration, Instant};

use backon::Retryable;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, Url};
use secrecy::ExposeSecret;
use tracing::{Instrument, debug, field, info_span, warn};

use super::ScimClient;
use crate::error::WorkerError;
use crate::observe::{error_type, retry_reason};
use crate::scim::retry::parse_retry_after;
use crate::scim::wire::error_from_response;

impl ScimClient {
    /// Sends one request, retrying what [`WorkerError::is_retryable`] accepts; the answer's
    /// body on success.
    pub(in crate::scim) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, WorkerError> {
        self.send_when(method, url, body, WorkerError::is_retryable)
            .await
    }

    /// [`Self::send`], retrying the errors `retry_if` accepts.
    pub(super) async fn send_when(
        &self,
        method: Method,
        url: Url,
        body: Option<&[u8]>,
        retry_if: impl FnMut(&WorkerError) -> bool,
    ) -> Result<Vec<u8>, WorkerError> {
        let mut slept = Duration::ZERO;
        let policy = self.policy.clone();
        // The attempt number, 0 for the first try: `http.request.resend_count` of each span.
        let mut attempt = 0_u32;
        (|| {
            let resend_count = attempt;
            attempt += 1;
            self.send_once(method.clone(), url.clone(), body, resend_count)
        })
        .retry(self.policy.backoff())
        .when(retry_if)
        .adjust(move |e: &WorkerError, next| {
            let delay = policy.next_delay(e.retry_after(), next, slept, fastrand::f64())?;
            slept += delay;
            Some(delay)
        })
        .notify(|e, delay| {
            dirsync_telemetry::metrics().scim_retry(retry_reason(e));
            debug!(error = %e, ?delay, "retrying scim request");
        })
        .await
    }

    /// One attempt: the org's rate limit first, then the request in a `scim_request` span
    /// (OpenTelemetry HTTP client conventions). The span and the latency metric cover the
    /// request alone, not the wait for the rate limit (measured on its own).
    async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: Option<&[u8]>,
        resend_count: u32,
    ) -> Result<Vec<u8>, WorkerError> {
        // Before the token goes anywhere (never retried: not retryable).
        self.check_host(&url)?;
        if let Some(limiter) = &self.limiter {
            limiter.acquire(&self.org).await?;
        }
        let template = self.url_template(&url);
        // No `url.full`: a search's query carries userNames.
        let span = info_span!(
            "scim_request",
            otel.kind = "client",
            otel.status_code = field::Empty,
            http.request.method = %method,
            http.request.resend_count = resend_count,
            http.response.status_code = field::Empty,
            url.template = %template,
            server.address = self.base.host_str().unwrap_or_default(),
            server.port = self.base.port_or_known_default(),
            error.type = field::Empty,
        );
        let started = Instant::now();
        let result = self
            .request(method.clone(), url, body)
            .instrument(span.clone())
            .await;
        let status = match &result {
            Ok((status, _)) => Some(*status),
            Err(e) => e.scim_status(),
        };
        dirsync_telemetry::metrics().scim_request(method.as_str(), status, started.elapsed());
        if let Err(e) = &result {
            span.record("otel.status_code", "error");
            span.record(
                "error.type",
                match e.scim_status() {
                    Some(code) => field::display(code.to_string()),
                    None => field::display(error_type(e).to_string()),
                },
            );
        }
        result.map(|(_, bytes)| bytes)
    }

    /// Sends one request and reads its answer: the status and body of a success, the error
    /// of anything else (a 429/503 with `Retry-After` pausing the org's budget first).
    async fn request(
        &self,
        method: Method,
        url: Url,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), WorkerError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok((status.as_u16(), bytes.to_vec()));
        }
        let advice = retry_after(&headers);
        if let (Some(limiter), Some(advice), 429 | 503) = (&self.limiter, advice, status.as_u16()) {
            let pause = advice.min(self.policy.max_retry_after);
            if let Err(e) = limiter.pause(&self.org, pause).await {
                warn!(error = %e, "cannot pause the org's scim budget");
            }
        }
        Err(error_from_response(
            status.as_u16(),
            &bytes,
            advice,
            tracking_id(&headers),
        ))
    }

    /// The low-cardinality form of a request's path under the SCIM root (`url.template`):
    /// the resource type as is, ids after it as `{id}`, no query. E.g. `/Users/{id}`.
    pub(super) fn url_template(&self, url: &Url) -> String {
        let root = self.base.path().trim_end_matches('/');
        let rest = url.path().strip_prefix(root).unwrap_or(url.path());
        let mut template = String::new();
        for (i, segment) in rest.split('/').filter(|s| !s.is_empty()).enumerate() {
            template.push('/');
            template.push_str(if i == 0 { segment } else { "{id}" });
        }
        if template.is_empty() {
            template.push('/');
        }
        template
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

fn tracking_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("trackingid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The URL is left out: it can carry a userName in its query, and the reason is stored.
fn transport(e: reqwest::Error) -> WorkerError {
    WorkerError::ScimTransport(e.without_url())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::SecretString;

    use super::*;
    use crate::scim::RetryPolicy;

    fn client(base: &str) -> Result<ScimClient, WorkerError> {
        let token = Arc::new(SecretString::from("s3cr3t-token".to_string()));
        ScimClient::new(reqwest::Client::new(), base, token, RetryPolicy::default())
    }

    #[test]
    fn url_templates_keep_the_resource_and_hide_ids_and_queries() {
        let c = client("https://webexapis.com/identity/scim/org-1/v2").unwrap();
        let mut search = c.url(&["Users"]);
        search
            .query_pairs_mut()
            .append_pair("filter", "userName eq \"a@x.com\"");
        let cases = [
            (search, "/Users"),
            (c.url(&["Users", "abc"]), "/Users/{id}"),
            (c.url(&["Groups", "g1"]), "/Groups/{id}"),
            (c.url(&["Bulk"]), "/Bulk"),
        ];
        for (url, template) in cases {
            assert_eq!(c.url_template(&url), template, "{url}");
        }
    }
}
