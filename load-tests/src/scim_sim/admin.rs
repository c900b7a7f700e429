//! Verification and setup endpoints of the SCIM simulator, outside the SCIM namespace and
//! without auth (the simulator is a test tool on a loopback port):
//! `POST /_sim/orgs` `{"org_id","token"}`, `GET /_sim/orgs/{org}/users`,
//! `GET /_sim/orgs/{org}/groups` (every member of each), `GET /_sim/orgs/{org}/counters`,
//! `POST /_sim/orgs/{org}/counters/reset`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::ScimSim;
use super::error::{ScimError, ScimType};

pub(super) fn routes() -> Router<ScimSim> {
    Router::new()
        .route("/_sim/orgs", post(add_org))
        .route("/_sim/orgs/{org_id}/users", get(org_users))
        .route("/_sim/orgs/{org_id}/groups", get(org_groups))
        .route("/_sim/orgs/{org_id}/counters", get(org_counters))
        .route("/_sim/orgs/{org_id}/counters/reset", post(reset_counters))
}

#[derive(Deserialize)]
struct NewOrg {
    org_id: String,
    token: String,
}

fn unknown_org(org_id: &str) -> Response {
    ScimError::NotFound(format!("organization {org_id} not found")).into_response()
}

async fn add_org(State(sim): State<ScimSim>, body: Bytes) -> Response {
    let org: NewOrg = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => {
            return ScimError::bad(
                ScimType::InvalidSyntax,
                format!("expected {{\"org_id\",\"token\"}}: {e}"),
            )
            .into_response();
        }
    };
    if org.org_id.is_empty() || org.token.is_empty() {
        return ScimError::bad(ScimType::InvalidValue, "org_id and token must not be empty")
            .into_response();
    }
    sim.add_org(&org.org_id, &org.token);
    (
        StatusCode::CREATED,
        axum::Json(json!({"org_id": org.org_id})),
    )
        .into_response()
}

async fn org_users(State(sim): State<ScimSim>, Path(org_id): Path<String>) -> Response {
    match sim.inner.org(&org_id) {
        Some(org) => axum::Json(sim.inner.users(&org)).into_response(),
        None => unknown_org(&org_id),
    }
}

async fn org_groups(State(sim): State<ScimSim>, Path(org_id): Path<String>) -> Response {
    match sim.inner.org(&org_id) {
        Some(_) => axum::Json(sim.groups(&org_id)).into_response(),
        None => unknown_org(&org_id),
    }
}

async fn org_counters(State(sim): State<ScimSim>, Path(org_id): Path<String>) -> Response {
    match sim.inner.org(&org_id) {
        Some(org) => axum::Json(org.counters.snapshot()).into_response(),
        None => unknown_org(&org_id),
    }
}

async fn reset_counters(State(sim): State<ScimSim>, Path(org_id): Path<String>) -> Response {
    match sim.inner.org(&org_id) {
        Some(org) => {
            org.counters.reset();
            StatusCode::NO_CONTENT.into_response()
        }
        None => unknown_org(&org_id),
    }
}
