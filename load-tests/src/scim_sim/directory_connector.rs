//! Whether the org syncs users with Cisco Directory Connector, and blocking it:
//! `GET /identity/organizations/{orgId}/v1/directory-connector` answers
//! `{"enabled": bool, "blocked": bool}`; `PUT` with `{"blocked": true}` blocks it, as the
//! Wizard App's "Block" does when an org that uses Directory Connector is set up with Entra.
//!
//! The shape is ours (no public reference); a deployment plugs Control Hub's API into the
//! coordinator's `webex_org.rs`. Authentication: the org's SCIM token, as for `domains.rs`.
//! Harness: [`ScimSim::set_directory_connector`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::ScimSim;
use super::domains::authorized_org;
use super::error::{ScimError, ScimType};
use super::store::lock;

/// An org's Directory Connector state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryConnector {
    /// The org syncs users with Directory Connector.
    pub enabled: bool,
    /// Directory Connector is blocked (it no longer changes users).
    pub blocked: bool,
}

#[derive(Deserialize)]
struct Change {
    blocked: bool,
}

pub(super) fn routes() -> Router<ScimSim> {
    Router::new().route(
        "/identity/organizations/{org_id}/v1/directory-connector",
        get(show).put(change),
    )
}

async fn show(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match authorized_org(&sim, &org_id, &headers) {
        Ok(org) => axum::Json(*lock(&org.directory_connector)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn change(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let changed = authorized_org(&sim, &org_id, &headers).and_then(|org| {
        let request: Change = serde_json::from_slice(&body).map_err(|e| {
            ScimError::bad(
                ScimType::InvalidSyntax,
                format!("expected {{\"blocked\"}}: {e}"),
            )
        })?;
        let mut state = lock(&org.directory_connector);
        state.blocked = request.blocked;
        Ok(*state)
    });
    match changed {
        Ok(state) => axum::Json(state).into_response(),
        Err(e) => e.into_response(),
    }
}

impl ScimSim {
    /// Marks the org as using Directory Connector (`true`, not blocked) or not.
    pub fn set_directory_connector(&self, org_id: &str, enabled: bool) {
        if let Some(org) = self.inner.org(org_id) {
            *lock(&org.directory_connector) = DirectoryConnector {
                enabled,
                blocked: false,
            };
        }
    }

    /// The org's Directory Connector state (default for an unknown org).
    pub fn directory_connector(&self, org_id: &str) -> DirectoryConnector {
        self.inner
            .org(org_id)
            .map(|org| *lock(&org.directory_connector))
            .unwrap_or_default()
    }
}
