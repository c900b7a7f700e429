//! The org's domain list, as Control Hub's Organization settings show it ("verified
//! domains"): `GET /identity/organizations/{orgId}/v1/domains` answers
//! `{"items": [{"domain": "...", "status": "verified"}]}`, and `POST` on the same path with
//! `{"domain": "..."}` adds one (201, or 409 when the org has it already).
//!
//! The shape is ours: Webex publishes no reference for managing an org's domains over an
//! API, so this endpoint stands in for Control Hub's. A real deployment plugs Control Hub's
//! domain API into the coordinator's `webex_domains.rs`, the only client of this endpoint;
//! nothing else depends on its shape.
//!
//! Authentication is the org's SCIM bearer token (`call.rs`), as the coordinator holds no
//! other Webex credential. Domains added here count as verified at once: the import only
//! offers domains Entra has verified. The requests are neither counted in the org's SCIM
//! counters nor throttled.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::ScimSim;
use super::call::authorize;
use super::error::{ScimError, ScimType};
use super::store::{Org, lock};

pub(super) fn routes() -> Router<ScimSim> {
    Router::new().route(
        "/identity/organizations/{org_id}/v1/domains",
        get(list).post(add),
    )
}

#[derive(Deserialize)]
struct NewDomain {
    domain: String,
}

/// A domain name as the list keeps it (lower-case), or why it is not one.
fn domain_name(raw: &str) -> Result<String, ScimError> {
    crate::domain_name::normalized(raw).ok_or_else(|| {
        ScimError::bad(
            ScimType::InvalidValue,
            format!("{raw:?} is not a domain name"),
        )
    })
}

/// The org of the path, if the request carries its token.
pub(super) fn authorized_org(
    sim: &ScimSim,
    org_id: &str,
    headers: &HeaderMap,
) -> Result<Arc<Org>, ScimError> {
    let org = sim
        .inner
        .org(org_id)
        .ok_or_else(|| ScimError::NotFound(format!("organization {org_id} not found")))?;
    authorize(&org, headers)?;
    Ok(org)
}

async fn list(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match authorized_org(&sim, &org_id, &headers) {
        Ok(org) => {
            let items: Vec<_> = lock(&org.domains)
                .iter()
                .map(|d| json!({"domain": d, "status": "verified"}))
                .collect();
            axum::Json(json!({ "items": items })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn add(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let added = authorized_org(&sim, &org_id, &headers).and_then(|org| {
        let request: NewDomain = serde_json::from_slice(&body).map_err(|e| {
            ScimError::bad(
                ScimType::InvalidSyntax,
                format!("expected {{\"domain\"}}: {e}"),
            )
        })?;
        let name = domain_name(&request.domain)?;
        let mut domains = lock(&org.domains);
        if domains.contains(&name) {
            return Err(ScimError::Uniqueness(format!(
                "domain {name} is already in the organization"
            )));
        }
        domains.push(name.clone());
        Ok(name)
    });
    match added {
        Ok(name) => (
            StatusCode::CREATED,
            axum::Json(json!({"domain": name, "status": "verified"})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

impl ScimSim {
    /// The org's domain list in the order added (empty for an unknown org).
    pub fn domains(&self, org_id: &str) -> Vec<String> {
        self.inner
            .org(org_id)
            .map(|org| lock(&org.domains).clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_lower_cased_and_checked() {
        assert_eq!(
            domain_name(" Sales.Contoso.COM ").unwrap(),
            "sales.contoso.com"
        );
        for bad in ["", "nodot", "a..b", "-a.b", "a b.c", "a/b.c", "a.b-"] {
            assert!(domain_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_list_over_http() {
        let sim = ScimSim::new(super::super::ScimSimConfig::default());
        sim.add_org("org-1", "token-1");
        sim.add_org("org-2", "token-2");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let served = crate::serve::spawn(
            sim.router(),
            crate::serve::any_loopback_port(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let url = |org: &str| {
            format!(
                "{}/identity/organizations/{org}/v1/domains",
                served.base_url()
            )
        };
        let http = reqwest::Client::new();
        let add = |org: &str, token: &str, domain: &str| {
            http.post(url(org))
                .bearer_auth(token)
                .json(&json!({ "domain": domain }))
                .send()
        };
        let status = |r: reqwest::Response| r.status().as_u16();

        assert_eq!(
            status(add("org-1", "token-1", "A.example").await.unwrap()),
            201
        );
        assert_eq!(
            status(add("org-1", "token-1", "a.example").await.unwrap()),
            409
        );
        assert_eq!(
            status(add("org-1", "token-1", "not a domain").await.unwrap()),
            400
        );
        // Another org's token, no token, an unknown org.
        assert_eq!(
            status(add("org-1", "token-2", "b.example").await.unwrap()),
            401
        );
        let bare = http.get(url("org-1")).send().await.unwrap();
        assert_eq!(status(bare), 401);
        assert_eq!(
            status(add("org-9", "token-1", "b.example").await.unwrap()),
            404
        );

        let listed: serde_json::Value = http
            .get(url("org-1"))
            .bearer_auth("token-1")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            listed,
            json!({"items": [{"domain": "a.example", "status": "verified"}]})
        );
        assert_eq!(sim.domains("org-1"), ["a.example"]);
        assert!(sim.domains("org-2").is_empty());
        shutdown.cancel();
    }
}
