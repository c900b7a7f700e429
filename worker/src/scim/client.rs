//! HTTP client for one tenant's SCIM 2.0 endpoint: users create, search, patch, delete, and
//! Bulk requests of them.
//!
//! Every request carries the tenant's bearer token and is retried per [`RetryPolicy`].
//! Non-success statuses come back as [`WorkerError::ScimStatus`]; callers decide what a 404
//! or a 409 means for them. With an [`OrgRateLimiter`], every attempt first waits for the
//! org's fleet-wide budget, and a 429/503 with `Retry-After` pauses the org for every worker.
//! A target that answers `/Bulk` with 404, 405 or 501 has no Bulk endpoint: its
//! [`BulkSupport`] remembers that, and callers send single requests from then on. How one
//! request is sent, retried, traced and measured is in `client/send.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use dirsync_proto::AllowedHosts;
use reqwest::{Method, Url};
use secrecy::SecretString;
use tracing::debug;

use super::body::patch_request;
use super::bulk::{BulkOutcome, BulkRequest, parse_bulk_response};
use super::resource::UserBody;
use super::retry::RetryPolicy;
use super::wire::{ListResponse, UserResource, filter_string, json_bytes};
use crate::error::WorkerError;
use crate::map::ScimAttributes;
use crate::ratelimit::OrgRateLimiter;

mod send;

/// Builds the HTTP client shared by all tenants (one connection pool per worker).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, WorkerError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("dirsync-worker/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(WorkerError::HttpClient)
}

/// Whether a SCIM target takes Bulk requests, shared by every client of that target (clones
/// share it): unknown until its first Bulk answer, then known for good.
#[derive(Debug, Clone)]
pub struct BulkSupport {
    state: Arc<AtomicU8>,
}

impl Default for BulkSupport {
    fn default() -> Self {
        BulkSupport {
            state: Arc::new(AtomicU8::new(BULK_UNKNOWN)),
        }
    }
}

const BULK_UNKNOWN: u8 = 0;
const BULK_YES: u8 = 1;
const BULK_NO: u8 = 2;

impl BulkSupport {
    /// Worth trying: not known to be missing.
    pub fn is_supported(&self) -> bool {
        self.state.load(Ordering::Relaxed) != BULK_NO
    }

    /// Known to work: the target answered a Bulk request.
    pub fn is_confirmed(&self) -> bool {
        self.state.load(Ordering::Relaxed) == BULK_YES
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Relaxed);
    }
}

/// A SCIM client bound to one tenant's base URL and token.
#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base: Url,
    token: Arc<SecretString>,
    policy: RetryPolicy,
    limiter: Option<OrgRateLimiter>,
    /// The org's name in the rate limiter: the base URL without its scheme.
    org: String,
    bulk: BulkSupport,
    /// The deployment's `allowed_hosts`, checked before every request (`None`: unchecked).
    allowed: Option<Arc<AllowedHosts>>,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl ScimClient {
    /// `base_url` is the SCIM root up to and including `/v2`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        token: Arc<SecretString>,
        policy: RetryPolicy,
    ) -> Result<Self, WorkerError> {
        let base = Url::parse(base_url).map_err(|e| WorkerError::ScimBaseUrl(e.to_string()))?;
        if base.cannot_be_a_base() {
            return Err(WorkerError::ScimBaseUrl("not a base url".into()));
        }
        let org = format!(
            "{}{}{}",
            base.host_str().unwrap_or_default(),
            base.port().map(|p| format!(":{p}")).unwrap_or_default(),
            base.path().trim_end_matches('/')
        );
        Ok(ScimClient {
            http,
            base,
            token,
            policy,
            limiter: None,
            org,
            bulk: BulkSupport::default(),
            allowed: None,
        })
    }

    /// Sends requests only to hosts of `allowed`; a base URL on another host is refused
    /// here, before any request carries the token ([`WorkerError::ScimBaseUrl`] naming it).
    pub fn with_allowed_hosts(mut self, allowed: Arc<AllowedHosts>) -> Result<Self, WorkerError> {
        self.allowed = Some(allowed);
        self.check_host(&self.base)?;
        Ok(self)
    }

    /// Whether `url`'s host may be sent a request: never retried when it may not.
    pub(super) fn check_host(&self, url: &Url) -> Result<(), WorkerError> {
        match &self.allowed {
            Some(allowed) => allowed
                .check(url.host_str())
                .map_err(|e| WorkerError::ScimBaseUrl(e.to_string())),
            None => Ok(()),
        }
    }

    /// Makes every request wait for the org's share of the fleet-wide budget.
    pub fn with_rate_limiter(mut self, limiter: OrgRateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Shares what is known about the target's Bulk endpoint with other clients of it.
    pub fn with_bulk_support(mut self, bulk: BulkSupport) -> Self {
        self.bulk = bulk;
        self
    }

    /// The org's name in the rate limiter (its SCIM base URL without the scheme).
    pub fn org_key(&self) -> &str {
        &self.org
    }

    /// Whether Bulk requests are worth sending to this target.
    pub fn bulk_supported(&self) -> bool {
        self.bulk.is_supported()
    }

    /// Whether this target is known to answer Bulk requests (not merely not known to refuse).
    pub fn bulk_confirmed(&self) -> bool {
        self.bulk.is_confirmed()
    }

    /// `POST /Bulk` of one request: each operation's outcome, in the request's order.
    /// `Ok(None)` when the target has no Bulk endpoint (then remembered, see [`BulkSupport`]);
    /// an error of the request as a whole is returned as is.
    pub async fn bulk(
        &self,
        request: &BulkRequest,
    ) -> Result<Option<Vec<BulkOutcome>>, WorkerError> {
        if !self.bulk.is_supported() {
            return Ok(None);
        }
        let body = request.to_bytes();
        // 501 is a 5xx but no passing state: the endpoint is not there, so no retries.
        let missing = |e: &WorkerError| matches!(e.scim_status(), Some(404 | 405 | 501));
        match self
            .send_when(Method::POST, self.url(&["Bulk"]), Some(&body), |e| {
                e.is_retryable() && !missing(e)
            })
            .await
        {
            Ok(bytes) => {
                self.bulk.set(BULK_YES);
                parse_bulk_response(request, &bytes).map(Some)
            }
            Err(e) if missing(&e) => {
                debug!(error = %e, "no bulk endpoint, single requests from now on");
                self.bulk.set(BULK_NO);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// `POST /Users`.
    pub async fn create_user(&self, resource: &UserBody) -> Result<UserResource, WorkerError> {
        let body = self
            .send(
                Method::POST,
                self.url(&["Users"]),
                Some(resource.as_bytes()),
            )
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| WorkerError::ScimResponse(format!("create user: {e}")))
    }

    /// `GET /Users?filter=userName eq "…"`: the org's user with this userName, if any.
    pub async fn find_user_by_user_name(
        &self,
        user_name: &str,
    ) -> Result<Option<UserResource>, WorkerError> {
        let mut url = self.url(&["Users"]);
        url.query_pairs_mut().append_pair(
            "filter",
            &format!("userName eq {}", filter_string(user_name)),
        );
        let body = self.send(Method::GET, url, None).await?;
        let list: ListResponse<UserResource> = serde_json::from_slice(&body)
            .map_err(|e| WorkerError::ScimResponse(format!("search users: {e}")))?;
        Ok(same_user_name(list.resources, user_name))
    }

    /// Which of `user_names` the org has, lowercased, in one
    /// `userName eq "a" or userName eq "b" …` search (Webex documents `or`; keep the list
    /// short, it travels in the URL).
    pub async fn existing_user_names(
        &self,
        user_names: &[&str],
    ) -> Result<std::collections::HashSet<String>, WorkerError> {
        if user_names.is_empty() {
            return Ok(Default::default());
        }
        let filter = user_names
            .iter()
            .map(|n| format!("userName eq {}", filter_string(n)))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut url = self.url(&["Users"]);
        url.query_pairs_mut()
            .append_pair("filter", &filter)
            .append_pair("count", &user_names.len().to_string())
            .append_pair("attributes", "userName");
        let body = self.send(Method::GET, url, None).await?;
        let list: ListResponse<UserResource> = serde_json::from_slice(&body)
            .map_err(|e| WorkerError::ScimResponse(format!("search users: {e}")))?;
        let asked: std::collections::HashSet<String> =
            user_names.iter().map(|n| n.to_lowercase()).collect();
        // Only names asked for count: a server that loosens the filter must not make a
        // user look present.
        Ok(list
            .resources
            .into_iter()
            .filter_map(|u| u.user_name.map(|n| n.to_lowercase()))
            .filter(|n| asked.contains(n))
            .collect())
    }

    /// `PATCH /Users/{id}` replacing each changed path.
    pub async fn patch_user(&self, id: &str, changes: &ScimAttributes) -> Result<(), WorkerError> {
        let body = json_bytes(&patch_request(changes));
        self.send(Method::PATCH, self.url(&["Users", id]), Some(&body))
            .await
            .map(drop)
    }

    /// `DELETE /Users/{id}`.
    pub async fn delete_user(&self, id: &str) -> Result<(), WorkerError> {
        self.send(Method::DELETE, self.url(&["Users", id]), None)
            .await
            .map(drop)
    }
}

/// The search result that really has this userName. A server that ignores or loosens the
/// filter must not make us adopt (and overwrite) somebody else, so a result without a
/// userName does not match. userName is case-insensitive in Webex, as in the filter.
fn same_user_name(resources: Vec<UserResource>, user_name: &str) -> Option<UserResource> {
    resources.into_iter().find(|u| {
        u.user_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Result<ScimClient, WorkerError> {
        let token = Arc::new(SecretString::from("s3cr3t-token".to_string()));
        ScimClient::new(reqwest::Client::new(), base, token, RetryPolicy::default())
    }

    #[test]
    fn builds_urls_under_the_base() {
        let cases = [
            (
                "https://webexapis.com/identity/scim/org-1/v2",
                &["Users"][..],
                "https://webexapis.com/identity/scim/org-1/v2/Users",
            ),
            (
                "http://127.0.0.1:9/org/v2/",
                &["Users", "abc"][..],
                "http://127.0.0.1:9/org/v2/Users/abc",
            ),
            (
                "http://h/v2",
                &["Users", "a b/c"][..],
                "http://h/v2/Users/a%20b%2Fc",
            ),
        ];
        for (base, segments, expected) in cases {
            assert_eq!(
                client(base).unwrap().url(segments).as_str(),
                expected,
                "{base}"
            );
        }
    }

    #[test]
    fn rejects_unusable_base_urls() {
        for base in ["", "not a url", "mailto:ops@example.com"] {
            assert!(
                matches!(client(base), Err(WorkerError::ScimBaseUrl(_))),
                "{base:?}"
            );
        }
    }

    #[test]
    fn search_results_must_carry_the_same_user_name() {
        let user = |id: &str, name: Option<&str>| UserResource {
            id: id.into(),
            user_name: name.map(str::to_string),
            rest: Default::default(),
        };
        // (results, wanted userName, expected id)
        let cases: Vec<(Vec<UserResource>, &str, Option<&str>)> = vec![
            (vec![], "a@x.com", None),
            (vec![user("1", Some("a@x.com"))], "a@x.com", Some("1")),
            (vec![user("1", Some("A@X.com"))], "a@x.com", Some("1")),
            (vec![user("1", None)], "a@x.com", None),
            (vec![user("1", Some("b@x.com"))], "a@x.com", None),
            (
                vec![
                    user("1", None),
                    user("2", Some("b@x.com")),
                    user("3", Some("a@x.com")),
                ],
                "a@x.com",
                Some("3"),
            ),
        ];
        for (i, (results, wanted, expected)) in cases.into_iter().enumerate() {
            let found = same_user_name(results, wanted);
            assert_eq!(found.map(|u| u.id).as_deref(), expected, "case {i}");
        }
    }

    #[test]
    fn names_the_org_by_its_base_url() {
        let cases = [
            (
                "https://webexapis.com/identity/scim/org-1/v2",
                "webexapis.com/identity/scim/org-1/v2",
            ),
            ("http://127.0.0.1:9/org/v2/", "127.0.0.1:9/org/v2"),
        ];
        for (base, org) in cases {
            assert_eq!(client(base).unwrap().org_key(), org, "{base}");
        }
    }

    #[test]
    fn bulk_support_is_shared_by_clones() {
        let support = BulkSupport::default();
        let a = client("http://h/v2")
            .unwrap()
            .with_bulk_support(support.clone());
        let b = a.clone();
        assert!(a.bulk_supported() && b.bulk_supported());
        assert!(!a.bulk_confirmed());
        support.set(BULK_YES);
        assert!(a.bulk_supported() && b.bulk_confirmed());
        support.set(BULK_NO);
        assert!(!a.bulk_supported() && !b.bulk_supported() && !b.bulk_confirmed());
        assert!(client("http://h/v2").unwrap().bulk_supported());
    }

    #[test]
    fn only_allowed_hosts_are_sent_requests() {
        let allowed = Arc::new(AllowedHosts::parse(&["webexapis.com", "127.0.0.1"]).unwrap());
        // (base URL, allowed)
        let cases = [
            ("https://webexapis.com/identity/scim/o/v2", true),
            ("http://127.0.0.1:9/o/v2", true),
            (
                "https://webexapis.com.attacker.example/identity/scim/o/v2",
                false,
            ),
            ("https://attacker.example/identity/scim/o/v2", false),
        ];
        for (base, ok) in cases {
            match client(base).unwrap().with_allowed_hosts(allowed.clone()) {
                Ok(c) => {
                    assert!(ok, "{base}");
                    let other = Url::parse("https://other.example/v2/Users").unwrap();
                    assert!(c.check_host(&other).is_err());
                }
                Err(WorkerError::ScimBaseUrl(message)) => {
                    assert!(!ok, "{base}");
                    let host = Url::parse(base).unwrap().host_str().unwrap().to_string();
                    assert!(message.contains(&format!("{host:?}")), "{message}");
                }
                Err(e) => panic!("{base}: {e}"),
            }
        }
    }

    #[test]
    fn debug_does_not_show_the_token() {
        let shown = format!("{:?}", client("http://h/v2").unwrap());
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
