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

use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;

use crate::CoordinatorError;
use crate::webex_api::{OrgEndpoint, org_api_url, refused};

/// What adding one domain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The org had it already (e.g. added meanwhile by someone else).
    AlreadyPresent,
}

/// A client of one org's domain list.
#[derive(Debug)]
pub struct WebexDomains {
    endpoint: OrgEndpoint,
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
    org_api_url(scim_base_url, DOMAINS)
}

const DOMAINS: &str = "domains";

/// Parses the list answer into lower-cased domain names.
pub fn parse_domain_list(body: &[u8]) -> Result<BTreeSet<String>, CoordinatorError> {
    let list: DomainList = serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::WebexOrg(format!("malformed domain list: {e}")))?;
    Ok(list
        .items
        .into_iter()
        .map(|i| i.domain.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect())
}

impl WebexDomains {
    /// The domain list of the org of `scim_base_url`, reached with its SCIM `token`.
    pub fn new(
        http: reqwest::Client,
        scim_base_url: &str,
        token: SecretString,
    ) -> Result<Self, CoordinatorError> {
        Ok(Self {
            endpoint: OrgEndpoint::new(http, scim_base_url, DOMAINS, token)?,
        })
    }

    /// The org's domains, lower-cased.
    pub async fn list(&self) -> Result<BTreeSet<String>, CoordinatorError> {
        let what = "listing the org's domains";
        let (status, body) = self.endpoint.send(what, Method::GET, None).await?;
        if !status.is_success() {
            return Err(refused(what, status, &body));
        }
        parse_domain_list(&body)
    }

    /// Adds `domain` to the org's list.
    pub async fn add(&self, domain: &str) -> Result<Added, CoordinatorError> {
        let what = format!("adding {domain}");
        let body = serde_json::json!({ "domain": domain });
        match self.endpoint.send(&what, Method::POST, Some(&body)).await? {
            (s, _) if s.is_success() => Ok(Added::Added),
            (StatusCode::CONFLICT, _) => Ok(Added::AlreadyPresent),
            (s, body) => Err(refused(&what, s, &body)),
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
