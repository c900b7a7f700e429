//! The Webex org's single sign-on setting, for the wizard's "Activate single sign-on": Entra
//! ID (OIDC) SSO can be turned on only while the org has no SAML SSO enabled (the seed: "you
//! must disable the SAML option first").
//!
//! Webex publishes no API reference for this; the endpoint, its shape and its authentication
//! (the org's SCIM bearer token) are dirsync's own, served by the load tests' SCIM
//! simulator: `GET {root}/identity/organizations/{orgId}/v1/sso` →
//! `{"saml_sso_enabled", "entra_sso_active"}`, `PUT` with `{"entra_sso_active"}` → 200 and
//! the new setting, or 409 when SAML SSO is enabled. Like `webex_domains.rs`, this module is
//! the one place a deployment against Control Hub's own API changes. dirsync stores nothing
//! of it: the org's answer is the state.

use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::CoordinatorError;
use crate::webex_api::{OrgEndpoint, refused};

/// The org's SSO setting, as the org reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoState {
    /// SSO through a SAML identity provider, set up (and turned off) in Control Hub.
    pub saml_sso_enabled: bool,
    /// Entra ID (OIDC) SSO, turned on through dirsync.
    pub entra_sso_active: bool,
}

/// Why Entra SSO cannot be turned on while SAML SSO is enabled, as the operator reads it.
pub const SAML_FIRST: &str = "the webex org has SAML SSO enabled: turn SAML SSO off in Control \
     Hub (Organization settings, Authentication) first, then activate single sign-on";

/// Whether `wanted` may be asked of an org in `state` (pure): turning Entra SSO on is refused
/// while SAML SSO is enabled; turning it off, or asking for what is already so, never is.
pub fn check_change(state: SsoState, wanted: bool) -> Result<(), CoordinatorError> {
    if wanted && !state.entra_sso_active && state.saml_sso_enabled {
        return Err(CoordinatorError::Conflict(SAML_FIRST.into()));
    }
    Ok(())
}

/// Parses the org's answer (`GET`, or a `PUT`'s 200).
pub fn parse_state(body: &[u8]) -> Result<SsoState, CoordinatorError> {
    serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::WebexOrg(format!("malformed sso setting: {e}")))
}

/// A client of one org's SSO setting.
#[derive(Debug)]
pub struct WebexSso {
    endpoint: OrgEndpoint,
}

impl WebexSso {
    /// The SSO setting of the org of `scim_base_url`, reached with its SCIM `token`.
    pub fn new(
        http: reqwest::Client,
        scim_base_url: &str,
        token: SecretString,
    ) -> Result<Self, CoordinatorError> {
        Ok(Self {
            endpoint: OrgEndpoint::new(http, scim_base_url, "sso", token)?,
        })
    }

    /// The org's setting now.
    pub async fn get(&self) -> Result<SsoState, CoordinatorError> {
        self.answer("reading the org's sso setting", Method::GET, None)
            .await
    }

    /// Turns Entra SSO on or off: the org's new setting, or [`CoordinatorError::Conflict`]
    /// when the org refuses it because SAML SSO is enabled.
    pub async fn set_entra(&self, active: bool) -> Result<SsoState, CoordinatorError> {
        let body = serde_json::json!({ "entra_sso_active": active });
        self.answer("changing the org's sso setting", Method::PUT, Some(&body))
            .await
    }

    async fn answer(
        &self,
        what: &str,
        method: Method,
        body: Option<&serde_json::Value>,
    ) -> Result<SsoState, CoordinatorError> {
        match self.endpoint.send(what, method, body).await? {
            (s, body) if s.is_success() => parse_state(&body),
            // Enabled meanwhile, between our read and this change.
            (StatusCode::CONFLICT, _) => Err(CoordinatorError::Conflict(SAML_FIRST.into())),
            (s, body) => Err(refused(what, s, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_sso_waits_for_saml_to_be_off() {
        let state = |saml, entra| SsoState {
            saml_sso_enabled: saml,
            entra_sso_active: entra,
        };
        // (saml enabled, entra active, wanted, refused)
        let cases = [
            (false, false, true, false),
            (false, true, false, false),
            (true, false, true, true),
            (true, false, false, false),
            (true, true, false, false),
            // Already on: nothing to refuse.
            (true, true, true, false),
        ];
        for (saml, entra, wanted, refused) in cases {
            let got = check_change(state(saml, entra), wanted);
            assert_eq!(got.is_err(), refused, "{saml} {entra} {wanted}");
            if let Err(e) = got {
                assert!(matches!(e, CoordinatorError::Conflict(_)), "{e}");
                assert!(e.to_string().contains("turn SAML SSO off"), "{e}");
            }
        }
    }

    #[test]
    fn the_org_answer() {
        let state = parse_state(br#"{"saml_sso_enabled": true, "entra_sso_active": false}"#);
        assert_eq!(
            state.unwrap(),
            SsoState {
                saml_sso_enabled: true,
                entra_sso_active: false,
            }
        );
        assert!(parse_state(br#"{"saml_sso_enabled": true}"#).is_err());
        assert!(parse_state(b"<html>").is_err());
        assert_eq!(
            crate::webex_api::org_api_url("https://webexapis.com/identity/scim/org-9/v2", "sso")
                .unwrap(),
            "https://webexapis.com/identity/organizations/org-9/v1/sso"
        );
    }
}
