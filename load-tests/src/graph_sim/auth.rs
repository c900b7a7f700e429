//! OAuth2 client credentials: the token endpoint's checks and AADSTS errors, the opaque access
//! tokens it issues (bound to one tenant, expiring), and bearer validation for Graph calls.
//!
//! Revoked consent: once the app's service principal is deleted from a tenant
//! (`DELETE /v1.0/servicePrincipals(appId='…')`, [`GraphSim::revoke_consent`]), the tokens
//! issued for the tenant stop working and the token endpoint refuses the app with
//! `AADSTS7000229` ("missing service principal in the tenant", 401 `invalid_client`), as
//! Entra does until an admin consents again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::envelope::AadError;
use super::{Counters, GraphSim, Tenant, TenantSpec};

/// Access tokens issued so far. Expired ones are kept a while so a late caller is told "expired"
/// rather than "invalid", then purged.
#[derive(Default)]
pub(crate) struct IssuedTokens {
    tokens: HashMap<String, Issued>,
    /// Tenants whose app's service principal was deleted (consent revoked).
    revoked: HashSet<String>,
}

struct Issued {
    tenant_id: String,
    expires_at: Instant,
}

/// What a bearer token turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bearer {
    Valid(String),
    Expired(String),
    Unknown,
}

impl IssuedTokens {
    pub(crate) fn issue(&mut self, tenant_id: &str, lifetime: Duration, now: Instant) -> String {
        let keep_expired = lifetime.max(Duration::from_secs(3600));
        self.tokens.retain(|_, t| t.expires_at + keep_expired > now);
        let mut random = [0_u8; 32];
        random[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        random[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let token = format!("simgraph.{}", URL_SAFE_NO_PAD.encode(random));
        self.tokens.insert(
            token.clone(),
            Issued {
                tenant_id: tenant_id.to_owned(),
                expires_at: now + lifetime,
            },
        );
        token
    }

    /// Deletes the app's service principal in `tenant_id`: its tokens are forgotten (a call
    /// with one is refused as with any unknown token) and no new one is issued. Returns
    /// whether the principal was there.
    pub(crate) fn revoke(&mut self, tenant_id: &str) -> bool {
        self.tokens.retain(|_, t| t.tenant_id != tenant_id);
        self.revoked.insert(tenant_id.to_owned())
    }

    pub(crate) fn is_revoked(&self, tenant_id: &str) -> bool {
        self.revoked.contains(tenant_id)
    }

    pub(crate) fn check(&self, token: &str, now: Instant) -> Bearer {
        match self.tokens.get(token) {
            None => Bearer::Unknown,
            Some(t) if now < t.expires_at => Bearer::Valid(t.tenant_id.clone()),
            Some(t) => Bearer::Expired(t.tenant_id.clone()),
        }
    }
}

/// The fields of a client-credentials token request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
}

impl TokenRequest {
    /// Reads the form body; client id and secret may also come as HTTP Basic (RFC 6749 §2.3.1).
    pub(crate) fn parse(body: &[u8], authorization: Option<&str>) -> TokenRequest {
        let mut request = TokenRequest::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            let slot = match key.as_ref() {
                "grant_type" => &mut request.grant_type,
                "client_id" => &mut request.client_id,
                "client_secret" => &mut request.client_secret,
                "scope" => &mut request.scope,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        if let Some((id, secret)) = authorization.and_then(basic_credentials) {
            request.client_id.get_or_insert(id);
            request.client_secret.get_or_insert(secret);
        }
        request
    }
}

fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn missing(parameter: &str) -> AadError {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

/// Checks a request against the tenant `key` names (its id or domain; `spec` is `None` when no
/// such tenant exists), in the order Entra reports problems.
pub(crate) fn check_request(
    request: &TokenRequest,
    key: &str,
    spec: Option<&TenantSpec>,
) -> Result<(), AadError> {
    let Some(spec) = spec else {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            format!(
                "Tenant '{key}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    };
    let grant_type = request
        .grant_type
        .as_deref()
        .ok_or_else(|| missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = request
        .client_id
        .as_deref()
        .ok_or_else(|| missing("client_id"))?;
    let scope = request.scope.as_deref().ok_or_else(|| missing("scope"))?;
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let valid_scope = matches!(scopes.as_slice(), [one] if one.len() > "/.default".len() && one.ends_with("/.default"));
    if !valid_scope {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }
    if client_id != spec.client_id {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                spec.tenant_id
            ),
        ));
    }
    let secret = request.client_secret.as_deref().ok_or_else(|| {
        AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    })?;
    if secret != spec.client_secret {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ));
    }
    Ok(())
}

/// Entra's refusal of an app without a service principal in the tenant (consent revoked).
fn missing_service_principal(spec: &TenantSpec) -> AadError {
    AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000229,
        format!(
            "The client application {} is missing service principal in the tenant {}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
            spec.client_id, spec.tenant_id
        ),
    )
}

impl GraphSim {
    /// Handles a token request for tenant `key`: the success body, or the AADSTS refusal.
    pub(crate) fn issue_token(&self, key: &str, request: &TokenRequest) -> Result<Value, AadError> {
        let tenant = self.tenant_by_id_or_domain(key);
        if let Err(refusal) = check_request(request, key, tenant.as_ref().map(|t| &t.spec)) {
            if let Some(tenant) = &tenant {
                Counters::bump(&tenant.counters.tokens_rejected, 1);
            }
            return Err(refusal);
        }
        let Some(tenant) = tenant else {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_tenant",
                90002,
                "Tenant not found.",
            ));
        };
        let lifetime = self.inner.config.token_lifetime;
        let mut tokens = self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if tokens.is_revoked(&tenant.spec.tenant_id) {
            Counters::bump(&tenant.counters.tokens_rejected, 1);
            return Err(missing_service_principal(&tenant.spec));
        }
        let token = tokens.issue(&tenant.spec.tenant_id, lifetime, Instant::now());
        drop(tokens);
        Counters::bump(&tenant.counters.tokens_issued, 1);
        Ok(json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": token,
        }))
    }

    /// Deletes the app's service principal in the tenant (consent revoked): see the module
    /// doc. Returns whether it was there.
    pub fn revoke_consent(&self, tenant_id: &str) -> Result<bool, super::GraphSimError> {
        let tenant = self.tenant(tenant_id)?;
        Ok(self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .revoke(&tenant.spec.tenant_id))
    }

    /// Whether the app's consent in the tenant was revoked (false for an unknown tenant).
    pub fn consent_revoked(&self, tenant_id: &str) -> bool {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_revoked(tenant_id)
    }

    /// The tenant a Graph call's bearer token belongs to, or the 401 message.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Tenant>, &'static str> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        let checked = match token {
            None => Err(("Access token is empty.", None)),
            Some(token) => {
                let bearer = self
                    .inner
                    .tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .check(token, Instant::now());
                match bearer {
                    Bearer::Valid(tenant_id) => self
                        .tenant(&tenant_id)
                        .map_err(|_| ("Access token validation failure.", None)),
                    Bearer::Expired(tenant_id) => Err((
                        "Lifetime validation failed, the token is expired.",
                        self.tenant(&tenant_id).ok(),
                    )),
                    Bearer::Unknown => Err(("Access token validation failure.", None)),
                }
            }
        };
        checked.map_err(|(message, tenant)| {
            match tenant {
                Some(tenant) => Counters::bump(&tenant.counters.unauthorized, 1),
                None => Counters::bump(&self.inner.unattributed_unauthorized, 1),
            }
            message
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TenantSpec {
        TenantSpec {
            tenant_id: "t1".into(),
            domain: "contoso.example".into(),
            client_id: "app".into(),
            client_secret: "s3cret".into(),
            seed: 1,
            users: 0,
        }
    }

    fn request(
        grant: Option<&str>,
        id: Option<&str>,
        secret: Option<&str>,
        scope: Option<&str>,
    ) -> TokenRequest {
        let own = |s: Option<&str>| s.map(str::to_owned);
        TokenRequest {
            grant_type: own(grant),
            client_id: own(id),
            client_secret: own(secret),
            scope: own(scope),
        }
    }

    #[test]
    fn client_credentials_checks() {
        let graph = Some("https://graph.microsoft.com/.default");
        let ok = Some("client_credentials");
        // (request, tenant exists, expected status and AADSTS code, or success)
        let cases = [
            (request(ok, Some("app"), Some("s3cret"), graph), true, None),
            (
                request(
                    ok,
                    Some("app"),
                    Some("s3cret"),
                    Some("00000003-0000-0000-c000-000000000000/.default"),
                ),
                true,
                None,
            ),
            (
                request(ok, Some("app"), Some("s3cret"), graph),
                false,
                Some((400, 90002)),
            ),
            (
                request(None, Some("app"), Some("s3cret"), graph),
                true,
                Some((400, 900144)),
            ),
            (
                request(Some("password"), Some("app"), Some("s3cret"), graph),
                true,
                Some((400, 70003)),
            ),
            (
                request(ok, None, Some("s3cret"), graph),
                true,
                Some((400, 900144)),
            ),
            (
                request(ok, Some("app"), Some("s3cret"), None),
                true,
                Some((400, 900144)),
            ),
            (
                request(ok, Some("app"), Some("s3cret"), Some("User.Read")),
                true,
                Some((400, 70011)),
            ),
            (
                request(ok, Some("app"), Some("s3cret"), Some("/.default")),
                true,
                Some((400, 70011)),
            ),
            (
                request(
                    ok,
                    Some("app"),
                    Some("s3cret"),
                    Some("a/.default b/.default"),
                ),
                true,
                Some((400, 70011)),
            ),
            (
                request(ok, Some("other"), Some("s3cret"), graph),
                true,
                Some((400, 700016)),
            ),
            (
                request(ok, Some("app"), None, graph),
                true,
                Some((401, 7000218)),
            ),
            (
                request(ok, Some("app"), Some("wrong"), graph),
                true,
                Some((401, 7000215)),
            ),
        ];
        let spec = spec();
        for (i, (req, exists, expected)) in cases.into_iter().enumerate() {
            let got = check_request(&req, "t1", exists.then_some(&spec))
                .err()
                .map(|e| (e.status.as_u16(), e.code));
            assert_eq!(got, expected, "case {i}: {req:?}");
        }
    }

    #[test]
    fn revoked_consent_forgets_the_tenants_tokens_only() {
        let now = Instant::now();
        let mut issued = IssuedTokens::default();
        let hour = Duration::from_secs(3600);
        let t1 = issued.issue("t1", hour, now);
        let t2 = issued.issue("t2", hour, now);
        assert!(!issued.is_revoked("t1"));
        assert!(issued.revoke("t1"));
        // A second deletion finds no principal.
        assert!(!issued.revoke("t1"));
        assert!(issued.is_revoked("t1"));
        assert!(!issued.is_revoked("t2"));
        assert_eq!(issued.check(&t1, now), Bearer::Unknown);
        assert_eq!(issued.check(&t2, now), Bearer::Valid("t2".into()));
        let refusal = missing_service_principal(&spec());
        assert_eq!(
            (refusal.status.as_u16(), refusal.error, refusal.code),
            (401, "invalid_client", 7000229)
        );
        assert!(
            refusal.body()["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS7000229: The client application app is missing service principal in the tenant t1."),
        );
    }

    #[test]
    fn error_body_has_the_aadsts_fields() {
        let body = check_request(&request(None, None, None, None), "t1", Some(&spec()))
            .unwrap_err()
            .body();
        for field in [
            "error",
            "error_description",
            "error_codes",
            "timestamp",
            "trace_id",
            "correlation_id",
        ] {
            assert!(body.get(field).is_some(), "{field} missing");
        }
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS900144: ")
        );
        assert_eq!(body["error_codes"], json!([900144]));
    }

    #[test]
    fn form_and_basic_credentials_parse() {
        let body = b"grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_id=app&client_secret=a%2Bb%26c";
        let parsed = TokenRequest::parse(body, None);
        assert_eq!(parsed.client_secret.as_deref(), Some("a+b&c"));
        assert_eq!(
            parsed.scope.as_deref(),
            Some("https://graph.microsoft.com/.default")
        );

        let basic = format!("Basic {}", STANDARD.encode("app:a%2Bb"));
        let parsed = TokenRequest::parse(b"grant_type=client_credentials", Some(&basic));
        assert_eq!(
            (parsed.client_id.as_deref(), parsed.client_secret.as_deref()),
            (Some("app"), Some("a+b"))
        );
    }

    #[test]
    fn tokens_expire_and_are_bound_to_a_tenant() {
        let mut tokens = IssuedTokens::default();
        let start = Instant::now();
        let a = tokens.issue("t1", Duration::from_secs(10), start);
        let b = tokens.issue("t2", Duration::from_secs(10), start);
        assert_ne!(a, b);
        let cases = [
            (a.as_str(), start, Bearer::Valid("t1".into())),
            (
                b.as_str(),
                start + Duration::from_secs(9),
                Bearer::Valid("t2".into()),
            ),
            (
                a.as_str(),
                start + Duration::from_secs(10),
                Bearer::Expired("t1".into()),
            ),
            ("nope", start, Bearer::Unknown),
        ];
        for (token, at, expected) in cases {
            assert_eq!(tokens.check(token, at), expected, "{token}");
        }
    }
}
