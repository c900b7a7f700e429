//! The org's single sign-on setting, as the Entra ID wizard's "Activate single sign-on"
//! needs it: `GET /identity/organizations/{orgId}/v1/sso` answers
//! `{"saml_sso_enabled": bool, "entra_sso_active": bool}`, and `PUT` on the same path with
//! `{"entra_sso_active": bool}` sets the Entra (OIDC) SSO and answers the new setting (200),
//! or 409 `{"error": "..."}` when it is turned on while SAML SSO is enabled for the org (the
//! seed: "you must disable the SAML option first"). Turning it off is never refused.
//!
//! The shape is ours: Webex publishes no reference for switching an org's SSO over an API,
//! so this endpoint stands in for Control Hub's. The coordinator's `webex_sso.rs` is its only
//! client; a real deployment plugs Control Hub's API in there. SAML SSO is configured in
//! Control Hub, not by dirsync: the harness sets it with [`ScimSim::set_saml_sso`].
//!
//! Authentication is the org's SCIM bearer token (`call.rs`), as for the domain list
//! (`domains.rs`); the requests are neither counted in the org's SCIM counters nor throttled.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ScimSim;
use super::call::authorize;
use super::error::{ScimError, ScimType};
use super::store::lock;

/// An org's SSO setting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sso {
    /// SSO through a SAML identity provider, set up in Control Hub.
    pub saml_sso_enabled: bool,
    /// Entra ID (OIDC) SSO, activated through the wizard.
    pub entra_sso_active: bool,
}

impl Sso {
    fn render(self) -> Value {
        json!({
            "saml_sso_enabled": self.saml_sso_enabled,
            "entra_sso_active": self.entra_sso_active,
        })
    }

    /// Sets Entra SSO on or off; turning it on is refused while SAML SSO is enabled.
    fn set_entra(&mut self, active: bool) -> Result<(), &'static str> {
        if active && self.saml_sso_enabled {
            return Err(
                "SAML SSO is enabled for the organization: disable it before activating Entra ID single sign-on",
            );
        }
        self.entra_sso_active = active;
        Ok(())
    }
}

pub(super) fn routes() -> Router<ScimSim> {
    Router::new().route(
        "/identity/organizations/{org_id}/v1/sso",
        get(show).put(set),
    )
}

#[derive(Deserialize)]
struct SsoChange {
    entra_sso_active: bool,
}

fn authorized(
    sim: &ScimSim,
    org_id: &str,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<super::store::Org>, ScimError> {
    let org = sim
        .inner
        .org(org_id)
        .ok_or_else(|| ScimError::NotFound(format!("organization {org_id} not found")))?;
    authorize(&org, headers)?;
    Ok(org)
}

async fn show(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match authorized(&sim, &org_id, &headers) {
        Ok(org) => axum::Json(lock(&org.sso).render()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn set(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let org = match authorized(&sim, &org_id, &headers) {
        Ok(org) => org,
        Err(e) => return e.into_response(),
    };
    let change: SsoChange = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(e) => {
            return ScimError::bad(
                ScimType::InvalidSyntax,
                format!("expected {{\"entra_sso_active\": bool}}: {e}"),
            )
            .into_response();
        }
    };
    let mut sso = lock(&org.sso);
    match sso.set_entra(change.entra_sso_active) {
        Ok(()) => axum::Json(sso.render()).into_response(),
        Err(reason) => {
            (StatusCode::CONFLICT, axum::Json(json!({ "error": reason }))).into_response()
        }
    }
}

impl ScimSim {
    /// Enables or disables SAML SSO for the org, as an admin does in Control Hub (nothing
    /// for an unknown org).
    pub fn set_saml_sso(&self, org_id: &str, enabled: bool) {
        if let Some(org) = self.inner.org(org_id) {
            lock(&org.sso).saml_sso_enabled = enabled;
        }
    }

    /// Whether Entra ID SSO is active for the org (false for an unknown org).
    pub fn entra_sso_active(&self, org_id: &str) -> bool {
        self.inner
            .org(org_id)
            .is_some_and(|org| lock(&org.sso).entra_sso_active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_sso_waits_for_saml_to_be_off() {
        // (saml enabled, entra active before, wanted, accepted, entra active after)
        let cases = [
            (false, false, true, true, true),
            (false, true, false, true, false),
            (true, false, true, false, false),
            (true, true, false, true, false),
            (true, false, false, true, false),
            (false, true, true, true, true),
        ];
        for (saml, before, wanted, accepted, after) in cases {
            let mut sso = Sso {
                saml_sso_enabled: saml,
                entra_sso_active: before,
            };
            let got = sso.set_entra(wanted);
            assert_eq!(got.is_ok(), accepted, "{saml} {before} {wanted}");
            assert_eq!(sso.entra_sso_active, after, "{saml} {before} {wanted}");
            if let Err(reason) = got {
                assert!(reason.contains("SAML SSO is enabled"), "{reason}");
            }
        }
    }

    #[tokio::test]
    async fn the_setting_over_http() {
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
        let url = |org: &str| format!("{}/identity/organizations/{org}/v1/sso", served.base_url());
        let http = reqwest::Client::new();
        let put = |org: &str, token: &str, active: bool| {
            http.put(url(org))
                .bearer_auth(token)
                .json(&json!({ "entra_sso_active": active }))
                .send()
        };

        sim.set_saml_sso("org-1", true);
        let refused = put("org-1", "token-1", true).await.unwrap();
        assert_eq!(refused.status().as_u16(), 409);
        let body: Value = refused.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("SAML SSO is enabled"),
            "{body}"
        );
        assert!(!sim.entra_sso_active("org-1"));

        sim.set_saml_sso("org-1", false);
        let accepted = put("org-1", "token-1", true).await.unwrap();
        assert_eq!(accepted.status().as_u16(), 200);
        let body: Value = accepted.json().await.unwrap();
        assert_eq!(
            body,
            json!({"saml_sso_enabled": false, "entra_sso_active": true})
        );
        assert!(sim.entra_sso_active("org-1"));
        assert!(!sim.entra_sso_active("org-2"));

        let shown: Value = http
            .get(url("org-1"))
            .bearer_auth("token-1")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shown["entra_sso_active"], true);

        // Another org's token, no token, an unknown org, a malformed body.
        assert_eq!(
            put("org-1", "token-2", false)
                .await
                .unwrap()
                .status()
                .as_u16(),
            401
        );
        let bare = http.get(url("org-1")).send().await.unwrap();
        assert_eq!(bare.status().as_u16(), 401);
        assert_eq!(
            put("org-9", "token-1", true)
                .await
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        let malformed = http
            .put(url("org-1"))
            .bearer_auth("token-1")
            .json(&json!({ "active": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(malformed.status().as_u16(), 400);
        shutdown.cancel();
    }
}
