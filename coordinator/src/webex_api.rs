//! One endpoint of a Webex org's settings API (domains, SSO, Directory Connector), as
//! dirsync reaches it: `{root}/identity/organizations/{orgId}/v1/{resource}` for the org of
//! the tenant's SCIM base URL, with the org's SCIM bearer token.
//!
//! Webex publishes no API reference for these settings; the paths, shapes and authentication
//! are dirsync's own, served by the load tests' SCIM simulator. The clients built on this
//! (`webex_domains.rs`, `webex_sso.rs`, `webex_org.rs`) are the one place a deployment
//! against Control Hub's own API changes.

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::CoordinatorError;

/// `{root}/identity/organizations/{orgId}/v1/{resource}` for the org of a SCIM base URL
/// `{root}/identity/scim/{orgId}/v2`: where dirsync reaches the org's settings.
pub fn org_api_url(scim_base_url: &str, resource: &str) -> Result<String, CoordinatorError> {
    let refused = || {
        CoordinatorError::Invalid(format!(
            "scim base url {scim_base_url:?} is not of the form <root>/identity/scim/<org id>/v2"
        ))
    };
    let url = Url::parse(scim_base_url.trim_end_matches('/')).map_err(|_| refused())?;
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    let [prefix @ .., "identity", "scim", org, "v2"] = segments.as_slice() else {
        return Err(refused());
    };
    let org_ok = !org.is_empty()
        && org
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !org_ok {
        return Err(refused());
    }
    let mut root = url.clone();
    root.set_query(None);
    root.set_fragment(None);
    let prefix: String = prefix.iter().map(|s| format!("/{s}")).collect();
    root.set_path(&format!(
        "{prefix}/identity/organizations/{org}/v1/{resource}"
    ));
    Ok(root.to_string())
}

/// One settings endpoint of one org.
pub struct OrgEndpoint {
    http: reqwest::Client,
    url: String,
    token: SecretString,
}

impl std::fmt::Debug for OrgEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("OrgEndpoint")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl OrgEndpoint {
    /// `resource` of the org of `scim_base_url`, reached with its SCIM `token`.
    pub fn new(
        http: reqwest::Client,
        scim_base_url: &str,
        resource: &str,
        token: SecretString,
    ) -> Result<Self, CoordinatorError> {
        let url = org_api_url(scim_base_url, resource)?;
        // The org's SCIM token goes only to an allowed host (`allowed_hosts`).
        if let Some(allowed) = crate::config::allowed_hosts() {
            let host = Url::parse(&url).ok();
            allowed
                .check(host.as_ref().and_then(Url::host_str))
                .map_err(CoordinatorError::HostNotAllowed)?;
        }
        Ok(Self { http, url, token })
    }

    /// Sends `method` (with `body` as JSON) with the org's token; the answer's status and
    /// body. Only the transport's failure is an error, described as `what` failing.
    pub async fn send(
        &self,
        what: &str,
        method: Method,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Vec<u8>), CoordinatorError> {
        let mut request = self
            .http
            .request(method, &self.url)
            .bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| failed(what, e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| failed(what, e))?;
        Ok((status, bytes.to_vec()))
    }
}

/// `what` failed for `detail`.
pub fn failed(what: &str, detail: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::WebexOrg(format!("{what}: {detail}"))
}

/// An error answer as an error: the status and the start of the body (no secrets: the token
/// travels only in the request).
pub fn refused(what: &str, status: StatusCode, body: &[u8]) -> CoordinatorError {
    let detail: String = String::from_utf8_lossy(body).chars().take(200).collect();
    failed(what, format!("http {}: {detail}", status.as_u16()))
}
