//! Graph client: OAuth2 client-credentials tokens and delta pages, with pacing and retries.
//!
//! Every request first waits for the app+tenant pair's [`Pacer`], which keeps the client
//! under Graph's resource-unit budget and halves the rate when Graph reports pressure
//! (`pacing.rs`), then, when one is installed, for a slot in the budget the fleet shares for
//! the app registration as a whole (`app_budget.rs`), which a 429 naming the application
//! pauses. 429 and 5xx answers and transport errors are retried with exponential
//! backoff and jitter (backon), waiting at least the server's `Retry-After` (decimal seconds
//! allowed). Tokens are refreshed before they expire ([`token_cache_lifetime`]) and, on a 401,
//! once more; the page URL being fetched is kept, so an enumeration continues where it was.
//! Delta-state errors become [`CoordinatorError::ResyncRequired`].

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use dirsync_proto::AllowedHosts;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::{Instrument, field};

use dirsync_telemetry::labels::GraphRequestKind;

use super::app_budget::{self, AppBudget};
use super::groups::{GROUP_SELECT, GroupsPage, parse_groups_page};
use super::pacing::{self, DEFAULT_RU_PER_10S, Pacer, PacerKey};
use super::rooms::parse_rooms_page;
use super::wire::{DeltaPage, ErrorEnvelope, parse_page};
use crate::{CoordinatorError, Tenant};

/// The properties read from `users/delta`; only selected properties are change-tracked.
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,jobTitle,department,\
employeeId,businessPhones,mobilePhone,faxNumber,streetAddress,city,state,postalCode,country,usageLocation,\
accountEnabled,manager";

/// Most ids one `$filter=id eq …` read may name (graph.md §1.1).
pub const MAX_FILTER_IDS: usize = 50;

/// Refresh a token this long before Graph says it expires.
const TOKEN_EARLY_REFRESH: Duration = Duration::from_secs(120);

/// How long to use a token that Graph says lives `expires_in`: until [`TOKEN_EARLY_REFRESH`]
/// before it expires, or, for a lifetime too short for that margin, for half of it (a zero
/// lifetime means a token per request, which still makes progress).
pub fn token_cache_lifetime(expires_in: Duration) -> Duration {
    if expires_in > TOKEN_EARLY_REFRESH * 2 {
        expires_in - TOKEN_EARLY_REFRESH
    } else {
        expires_in / 2
    }
}

/// A Graph client bound to one tenant's credentials.
#[derive(Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    login_url: String,
    graph_base_url: String,
    /// `server.address` of the request spans.
    host: String,
    graph_tenant_id: String,
    client_id: String,
    client_secret: SecretString,
    token: Mutex<Option<(SecretString, Instant)>>,
    backoff: ExponentialBuilder,
    /// RU per 10 s this client keeps to.
    budget: u32,
    /// The app+tenant pair's shared pacer, looked up on the first request.
    pacer: OnceLock<Arc<Pacer>>,
    /// The budget of the app registration as a whole, shared by the fleet (`None`: none).
    app_budget: Option<AppBudget>,
    /// The hosts requests may go to (`allowed_hosts`; `None`: unchecked).
    allowed: Option<Arc<AllowedHosts>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl GraphClient {
    pub fn new(http: reqwest::Client, tenant: &Tenant) -> Self {
        Self {
            http,
            login_url: tenant.graph_login_url.trim_end_matches('/').to_string(),
            graph_base_url: tenant.graph_base_url.trim_end_matches('/').to_string(),
            host: url::Url::parse(&tenant.graph_base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default(),
            graph_tenant_id: tenant.graph_tenant_id.clone(),
            client_id: tenant.client_id.clone(),
            client_secret: tenant.client_secret.clone(),
            token: Mutex::new(None),
            backoff: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(30))
                .with_max_times(8)
                .with_jitter(),
            budget: DEFAULT_RU_PER_10S,
            pacer: OnceLock::new(),
            app_budget: app_budget::installed(),
            allowed: crate::config::allowed_hosts(),
        }
    }

    /// Sends requests only to hosts of `allowed` instead of the process's `allowed_hosts`.
    pub fn with_allowed_hosts(mut self, allowed: Arc<AllowedHosts>) -> Self {
        self.allowed = Some(allowed);
        self
    }

    /// Refuses a URL whose host is not allowed (a tenant's login or Graph root, a nextLink
    /// or deltaLink from a page), before the request and its token leave.
    fn check_host(&self, url: &str) -> Result<(), CoordinatorError> {
        let Some(allowed) = &self.allowed else {
            return Ok(());
        };
        let parsed = url::Url::parse(url).ok();
        allowed
            .check(parsed.as_ref().and_then(url::Url::host_str))
            .map_err(CoordinatorError::HostNotAllowed)
    }

    /// Keeps to `ru_per_10s` resource units per 10 s (at least 1) instead of Graph's L tier
    /// ([`DEFAULT_RU_PER_10S`]); one delta page costs one RU.
    pub fn with_budget(mut self, ru_per_10s: u32) -> Self {
        self.budget = ru_per_10s.max(1);
        self.pacer = OnceLock::new();
        self
    }

    /// The pacer shared by every client of this app+tenant pair and budget.
    pub fn pacer(&self) -> &Pacer {
        self.pacer.get_or_init(|| {
            pacing::shared(PacerKey {
                graph_base_url: self.graph_base_url.clone(),
                graph_tenant_id: self.graph_tenant_id.clone(),
                client_id: self.client_id.clone(),
                ru_per_10s: self.budget,
            })
        })
    }

    /// Reserves every request in `budget` instead of the process's installed app budget
    /// (`None`: no app budget).
    pub fn with_app_budget(mut self, budget: Option<AppBudget>) -> Self {
        self.app_budget = budget;
        self
    }

    /// Replaces the retry schedule (exponential with jitter): first delay, largest delay,
    /// and how many retries before giving up.
    pub fn with_retries(
        mut self,
        min_delay: Duration,
        max_delay: Duration,
        retries: usize,
    ) -> Self {
        self.backoff = ExponentialBuilder::default()
            .with_min_delay(min_delay)
            .with_max_delay(max_delay)
            .with_max_times(retries)
            .with_jitter();
        self
    }

    /// The first request of a full enumeration.
    pub fn initial_users_url(&self) -> String {
        format!(
            "{}/v1.0/users/delta?$select={USER_SELECT}",
            self.graph_base_url
        )
    }

    /// A targeted read of up to [`MAX_FILTER_IDS`] users by object id (`$filter=id eq '…'`
    /// OR-ed, the one filter `users/delta` supports), with the walk's properties. Its pages
    /// are fetched with [`Self::users_page`]; the deltaLink that ends them is not kept.
    pub fn users_by_id_url(&self, ids: &[String]) -> Result<String, CoordinatorError> {
        if ids.is_empty() || ids.len() > MAX_FILTER_IDS {
            return Err(CoordinatorError::Invalid(format!(
                "a targeted read names 1 to {MAX_FILTER_IDS} users, not {}",
                ids.len()
            )));
        }
        let filter = ids
            .iter()
            // OData string literals escape a quote by doubling it.
            .map(|id| format!("id eq '{}'", id.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut url = url::Url::parse(&format!("{}/v1.0/users/delta", self.graph_base_url))
            .map_err(|e| CoordinatorError::Invalid(format!("graph base url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("$select", USER_SELECT)
            .append_pair("$filter", &filter);
        Ok(url.into())
    }

    /// Fetches one page (a nextLink, a deltaLink or the initial URL) with retries.
    pub async fn users_page(&self, url: &str) -> Result<DeltaPage, CoordinatorError> {
        let span = tracing::info_span!("graph_page", kind = "users", users = field::Empty);
        async {
            let page = self.fetch(url, parse_page).await?;
            tracing::Span::current().record("users", page.users.len());
            Ok(page)
        }
        .instrument(span)
        .await
    }

    /// The first request of a full `groups/delta` enumeration, with member tracking.
    pub fn initial_groups_url(&self) -> String {
        format!(
            "{}/v1.0/groups/delta?$select={GROUP_SELECT}",
            self.graph_base_url
        )
    }

    /// Fetches one `groups/delta` page with the same token, pacing and retries as
    /// [`Self::users_page`].
    pub async fn groups_page(&self, url: &str) -> Result<GroupsPage, CoordinatorError> {
        self.fetch(url, parse_groups_page)
            .instrument(tracing::info_span!("graph_page", kind = "groups"))
            .await
    }

    /// The first page of the tenant's room list (`places/microsoft.graph.room`).
    pub fn rooms_url(&self) -> String {
        format!("{}/v1.0/places/microsoft.graph.room", self.graph_base_url)
    }

    /// Every room's email address (lowercased), following the list's nextLinks.
    pub async fn room_emails(&self) -> Result<HashSet<String>, CoordinatorError> {
        let mut emails = HashSet::new();
        let mut url = self.rooms_url();
        loop {
            let page = self.fetch(&url, parse_rooms_page).await?;
            emails.extend(page.emails);
            match page.next {
                Some(next) => url = next,
                None => return Ok(emails),
            }
        }
    }

    /// Root of the tenant's Graph API (`https://graph.microsoft.com` or a cloud's, or a
    /// simulator's), without `/v1.0`.
    pub fn graph_base_url(&self) -> &str {
        &self.graph_base_url
    }

    /// One page of any delta chain (or any Graph GET), parsed by `parse`, with retries.
    pub(super) async fn fetch<T>(
        &self,
        url: &str,
        parse: fn(&[u8]) -> Result<T, CoordinatorError>,
    ) -> Result<T, CoordinatorError> {
        self.fetch_with_headers(url, &[], parse).await
    }

    /// [`Self::fetch`] with extra request headers, such as the `ConsistencyLevel: eventual`
    /// that Graph's advanced queries (`$search`) require.
    pub(super) async fn fetch_with_headers<T>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        parse: fn(&[u8]) -> Result<T, CoordinatorError>,
    ) -> Result<T, CoordinatorError> {
        let attempt = || async {
            match self.get_once(url, headers, parse).await {
                // The token may have been revoked or expired early: get a new one, once.
                Err(CoordinatorError::GraphStatus { status: 401, .. }) => {
                    *self.token.lock().await = None;
                    self.get_once(url, headers, parse).await
                }
                other => other,
            }
        };
        attempt
            .retry(self.backoff)
            .when(CoordinatorError::is_retryable)
            // Wait at least what the server asks, but stop when our backoff is spent: a
            // server that keeps throttling must not keep us here forever.
            .adjust(|e, backoff| backoff.map(|ours| e.retry_after().map_or(ours, |server| server.max(ours))))
            .notify(|e, wait| tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "graph request retried"))
            .await
    }

    async fn get_once<T>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        parse: fn(&[u8]) -> Result<T, CoordinatorError>,
    ) -> Result<T, CoordinatorError> {
        // Wait for the pace first, then take the token: a short-lived token fetched before a
        // long wait could expire before it is used. The tenant's pace comes before the app's
        // slot, so a request waiting for its tenant holds no slot of the whole fleet's.
        self.pacer().ready().await;
        if let Some(budget) = &self.app_budget {
            budget.acquire(&self.client_id).await;
        }
        let kind = request_kind(url);
        let span = tracing::info_span!(
            "graph_request",
            otel.kind = "client",
            http.request.method = "GET",
            server.address = %self.host,
            url.template = kind.as_str(),
            http.response.status_code = field::Empty,
            error.type = field::Empty,
        );
        let result = self
            .get_once_traced(url, headers, parse)
            .instrument(span.clone())
            .await;
        let status = match &result {
            Ok(_) => Some(200),
            Err(CoordinatorError::GraphStatus { status, .. }) => Some(*status),
            Err(_) => None,
        };
        match status {
            Some(status) => span.record("http.response.status_code", status),
            None => span.record("error.type", "transport"),
        };
        dirsync_telemetry::metrics().graph_request(kind, status);
        result
    }

    async fn get_once_traced<T>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        parse: fn(&[u8]) -> Result<T, CoordinatorError>,
    ) -> Result<T, CoordinatorError> {
        self.check_host(url)?;
        let token = self.token().await?;
        let mut request = self
            .http
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
            .header("x-ms-throttle-priority", "low");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status();
        if pacing::signals_pressure(status.as_u16(), response.headers()) {
            self.pacer().pressure();
        }
        let retry_after = parse_retry_after(response.headers());
        // Throttled as an app (every tenant's requests): the whole fleet waits it out.
        if let (Some(budget), Some(wait)) = (&self.app_budget, retry_after)
            && app_budget::throttles_the_app(status.as_u16(), response.headers())
        {
            budget.pause(&self.client_id, wait).await;
        }
        let body = response.bytes().await?;
        if status.is_success() {
            return parse(&body);
        }
        Err(classify_error(status, retry_after, &body))
    }

    /// The HTTP client, for requests of the sibling modules that are not paged reads.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The app (client) id the client authenticates as.
    pub(super) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A valid access token (cached, or fetched now).
    pub(super) async fn token(&self) -> Result<SecretString, CoordinatorError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        // The secret goes to the login host, and the token to the Graph root.
        self.check_host(&self.login_url)?;
        self.check_host(&self.graph_base_url)?;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_url, self.graph_tenant_id
        );
        let scope = format!("{}/.default", self.graph_base_url);
        let response = self
            .http
            .post(&url)
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose_secret()),
                ("scope", scope.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let described = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("error_description")
                        .and_then(|d| d.as_str())
                        .map(str::to_string)
                })
                .unwrap_or(body);
            return Err(CoordinatorError::GraphAuth(format!(
                "http {status}: {described}"
            )));
        }
        let parsed: TokenResponse = response.json().await?;
        let lifetime = token_cache_lifetime(Duration::from_secs(parsed.expires_in));
        let token = SecretString::from(parsed.access_token);
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }
}

/// The longest server-requested wait honoured as such; a longer one is cut to this, so a
/// page fetch (and the tenant lease held meanwhile) is bounded by retries × this.
const MAX_RETRY_AFTER_SECS: f64 = 120.0;

/// `Retry-After` in seconds, integer or decimal.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER_SECS)))
}

/// Turns a non-success answer into an error, recognising every form of "delta state gone".
pub fn classify_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> CoordinatorError {
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
    let codes = envelope
        .as_ref()
        .map(ErrorEnvelope::codes)
        .unwrap_or_default();
    let has = |c: &str| codes.iter().any(|x| x.eq_ignore_ascii_case(c));
    if status == StatusCode::GONE
        || has("resyncRequired")
        || (status == StatusCode::BAD_REQUEST && has("syncStateNotFound"))
    {
        return CoordinatorError::ResyncRequired(
            codes.first().cloned().unwrap_or_else(|| status.to_string()),
        );
    }
    let (code, message) = match envelope {
        Some(e) => (e.error.code, e.error.message),
        None => (
            String::new(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    };
    CoordinatorError::GraphStatus {
        status: status.as_u16(),
        code,
        message,
        retry_after,
    }
}

/// Which kind of Graph request a URL is, for bounded metric labels and span names.
fn request_kind(url: &str) -> GraphRequestKind {
    let path = url.split('?').next().unwrap_or(url);
    if path.ends_with("/users/delta") {
        GraphRequestKind::UsersDelta
    } else if path.ends_with("/groups/delta") {
        GraphRequestKind::GroupsDelta
    } else if path.contains("/photo") {
        GraphRequestKind::Photo
    } else {
        GraphRequestKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_integer_and_decimal() {
        for (raw, expected) in [
            ("7", Some(7000)),
            ("2.128", Some(2128)),
            ("0", Some(0)),
            ("86400", Some(120_000)),
            ("soon", None),
            ("-1", None),
        ] {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(raw).unwrap());
            assert_eq!(
                parse_retry_after(&h).map(|d| d.as_millis() as u64),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn tokens_are_refreshed_early_or_at_half_life() {
        for (expires_in, used_for) in [
            (3599, 3479),
            (241, 121),
            (240, 120),
            (200, 100),
            (2, 1),
            (0, 0),
        ] {
            assert_eq!(
                token_cache_lifetime(Duration::from_secs(expires_in)),
                Duration::from_secs(used_for),
                "{expires_in}"
            );
        }
        assert_eq!(
            token_cache_lifetime(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn resync_signals_are_recognised() {
        let cases: &[(u16, &str, bool)] = &[
            (
                400,
                r#"{"error":{"code":"syncStateNotFound","message":"expired"}}"#,
                true,
            ),
            (
                400,
                r#"{"error":{"code":"SyncStateNotFound","message":"expired"}}"#,
                true,
            ),
            (410, r#"{"error":{"code":"SyncStateNotFound"}}"#, true),
            (410, "", true),
            (
                400,
                r#"{"error":{"code":"badRequest","innerError":{"code":"resyncRequired"}}}"#,
                true,
            ),
            (
                400,
                r#"{"error":{"code":"badRequest","message":"bad select"}}"#,
                false,
            ),
            (429, r#"{"error":{"code":"TooManyRequests"}}"#, false),
        ];
        for (status, body, resync) in cases {
            let err = classify_error(
                StatusCode::from_u16(*status).unwrap(),
                None,
                body.as_bytes(),
            );
            assert_eq!(
                matches!(err, CoordinatorError::ResyncRequired(_)),
                *resync,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn throttling_is_retryable_with_its_wait() {
        let err = classify_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7)),
            b"{}",
        );
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(!classify_error(StatusCode::FORBIDDEN, None, b"{}").is_retryable());
    }
}
