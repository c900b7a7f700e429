//! The Webex org's domain list ("verified domains" in Control Hub's Organization settings):
//! reading it and adding a domain, for importing the Entra verified domains.
//!
//! Webex publishes no API reference for this; the endpoint, its shape and its authentication
//! (the org's SCIM bearer token) are dirsync's own, served by the load tests' SCIM
//! simulator: `GET {root}/identity/organizations/{orgId}/v1/domains` →
//! `{"items": [{"domain", "status"}]}`, `POST` with `{"domain"}` → 201, or 409 when present.
//! This module is the one place a deployment against Control Hub's own domain API changes.
//! The org is the one of the tenant's SCIM base URL (`{root}/identity/scim/{orgId}/v2`).

use std::collections::BTreeSet;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::CoordinatorError;

/// What adding one domain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The org had it already (e.g. added meanwhile by someone else).
    AlreadyPresent,
}

/// A client of one org's domain list.
pub struct WebexDomains {
    http: reqwest::Client,
    url: String,
    token: SecretString,
}

impl std::fmt::Debug for WebexDomains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("WebexDomains")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct DomainList {
    items: Vec<DomainItem>,
}

#[derive(Deserialize)]
struct DomainItem {
    domain: String,
}

/// The org's domain list URL for a SCIM base URL `{root}/identity/scim/{orgId}/v2`:
/// `{root}/identity/organizations/{orgId}/v1/domains`. Any other form is refused, as it
/// names no org.
pub fn domains_url(scim_base_url: &str) -> Result<String, CoordinatorError> {
    org_api_url(scim_base_url, "domains")
}

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

/// Parses the list answer into lower-cased domain names.
pub fn parse_domain_list(body: &[u8]) -> Result<BTreeSet<String>, CoordinatorError> {
    let list: DomainList = serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::WebexDomains(format!("malformed domain list: {e}")))?;
    Ok(list
        .items
        .into_iter()
        .map(|i| i.domain.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect())
}

/// An error answer as an error, with the status and the start of the body (no secrets:
/// the token travels only in the request).
fn refused(what: &str, status: StatusCode, body: &str) -> CoordinatorError {
    let detail: String = body.chars().take(200).collect();
    CoordinatorError::WebexDomains(format!("{what}: http {}: {detail}", status.as_u16()))
}

fn transport(what: &str, e: reqwest::Error) -> CoordinatorError {
    CoordinatorError::WebexDomains(format!("{what}: {e}"))
}

impl WebexDomains {
    /// The domain list of the org of `scim_base_url`, reached with its SCIM `token`.
    pub fn new(
        http: reqwest::Client,
        scim_base_url: &str,
        token: SecretString,
    ) -> Result<Self, CoordinatorError> {
        Ok(Self {
            http,
            url: domains_url(scim_base_url)?,
            token,
        })
    }

    /// The org's domains, lower-cased.
    pub async fn list(&self) -> Result<BTreeSet<String>, CoordinatorError> {
        let what = "listing the org's domains";
        let response = self
            .http
            .get(&self.url)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| transport(what, e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport(what, e))?;
        if !status.is_success() {
            return Err(refused(what, status, &String::from_utf8_lossy(&body)));
        }
        parse_domain_list(&body)
    }

    /// Adds `domain` to the org's list.
    pub async fn add(&self, domain: &str) -> Result<Added, CoordinatorError> {
        let what = format!("adding {domain}");
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(self.token.expose_secret())
            .json(&serde_json::json!({ "domain": domain }))
            .send()
            .await
            .map_err(|e| transport(&what, e))?;
        match response.status() {
            s if s.is_success() => Ok(Added::Added),
            StatusCode::CONFLICT => Ok(Added::AlreadyPresent),
            s => {
                let body = response.text().await.unwrap_or_default();
                Err(refused(&what, s, &body))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_url_comes_from_the_scim_base_url() {
        let cases = [
            (
                "https://webexapis.com/identity/scim/org-9/v2",
                Some("https://webexapis.com/identity/organizations/org-9/v1/domains"),
            ),
            (
                "http://127.0.0.1:4000/identity/scim/5e00-01/v2/",
                Some("http://127.0.0.1:4000/identity/organizations/5e00-01/v1/domains"),
            ),
            (
                "https://proxy.example/webex/identity/scim/o1/v2",
                Some("https://proxy.example/webex/identity/organizations/o1/v1/domains"),
            ),
            ("https://webexapis.com/identity/scim/org-9/v1", None),
            ("https://webexapis.com/identity/scim//v2", None),
            ("https://webexapis.com/identity/scim/a%2Fb/v2", None),
            ("https://webexapis.com/v2", None),
            ("not a url", None),
        ];
        for (scim, want) in cases {
            assert_eq!(domains_url(scim).ok().as_deref(), want, "{scim}");
        }
    }

    #[test]
    fn the_list_answer_becomes_lower_case_names() {
        let body = br#"{"items": [{"domain": "Contoso.com", "status": "verified"},
                                  {"domain": "b.example", "status": "verified"}]}"#;
        let names: Vec<_> = parse_domain_list(body).unwrap().into_iter().collect();
        assert_eq!(names, ["b.example", "contoso.com"]);
        assert!(parse_domain_list(br#"{"items": []}"#).unwrap().is_empty());
        assert!(parse_domain_list(br#"{"domains": []}"#).is_err());
        assert!(parse_domain_list(b"<html>").is_err());
    }
}
