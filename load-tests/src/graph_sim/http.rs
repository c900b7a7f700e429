//! The simulator's routes: the token endpoint, Graph `users/delta`, and `/_sim/` admin
//! endpoints for the harness (add tenants, apply change steps, read ground truth and counters).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::delta::{self, DeltaQuery};
use super::envelope::RequestIds;
use super::{GraphSim, GraphSimError, TenantSpec};
use crate::synthetic::ChangeStep;

pub(crate) fn router(sim: GraphSim) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/users/delta", get(users_delta))
        .route("/v1.0/users/microsoft.graph.delta", get(users_delta))
        .route("/_sim/tenants", post(add_tenant).get(list_tenants))
        .route("/_sim/tenants/{tenant}/changes", post(apply_changes))
        .route("/_sim/tenants/{tenant}/users", get(snapshot))
        .route("/_sim/tenants/{tenant}/requests", get(requests))
        .fallback(not_found)
        .with_state(sim)
}

async fn token(
    State(sim): State<GraphSim>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let request = super::auth::TokenRequest::parse(&body, authorization);
    match sim.issue_token(&tenant, &request) {
        Ok(body) => axum::Json(body).into_response(),
        Err(refusal) => {
            tracing::debug!(
                tenant,
                error = refusal.error,
                code = refusal.code,
                "token request refused"
            );
            refusal.into_response()
        }
    }
}

async fn users_delta(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let ids = RequestIds::new(&headers);
    let tenant = match sim.authenticate(&headers) {
        Ok(tenant) => tenant,
        Err(message) => {
            return ids.graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                message,
            );
        }
    };
    let query = DeltaQuery::parse(raw.as_deref());
    let minimal = prefers_minimal(&headers);
    let base_url = base_url(&headers);
    match delta::respond(&tenant, sim.config(), &query, &base_url, minimal) {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            if minimal {
                response.headers_mut().insert(
                    HeaderName::from_static("preference-applied"),
                    HeaderValue::from_static("return=minimal"),
                );
            }
            ids.stamp(response)
        }
        Err(e) => ids.graph_error(e.status, e.code, &e.message),
    }
}

/// `http://<Host>`: links must work on whatever address the client used.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
}

async fn not_found(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let segment = uri
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_owned();
    RequestIds::new(&headers).graph_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
}

fn admin_error(error: GraphSimError) -> Response {
    let status = match error {
        GraphSimError::UnknownTenant(_) => StatusCode::NOT_FOUND,
        GraphSimError::DuplicateTenant(_) => StatusCode::CONFLICT,
        GraphSimError::InvalidSpec(_) => StatusCode::BAD_REQUEST,
    };
    (status, axum::Json(json!({ "error": error.to_string() }))).into_response()
}

/// Runs CPU-heavy admin work (generating or snapshotting big tenants) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "simulator admin task failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "error": "admin task failed" })),
        )
            .into_response()
    })
}

async fn add_tenant(
    State(sim): State<GraphSim>,
    axum::Json(spec): axum::Json<TenantSpec>,
) -> Response {
    let (tenant_id, users) = (spec.tenant_id.clone(), spec.users);
    match blocking(move || sim.add_tenant(spec)).await {
        Ok(Ok(())) => (
            StatusCode::CREATED,
            axum::Json(json!({ "tenant_id": tenant_id, "users": users })),
        )
            .into_response(),
        Ok(Err(e)) => admin_error(e),
        Err(response) => response,
    }
}

async fn list_tenants(State(sim): State<GraphSim>) -> Response {
    axum::Json(sim.tenant_ids()).into_response()
}

async fn apply_changes(
    State(sim): State<GraphSim>,
    Path(tenant): Path<String>,
    axum::Json(step): axum::Json<ChangeStep>,
) -> Response {
    match blocking(move || sim.apply_changes(&tenant, &step)).await {
        Ok(Ok(report)) => axum::Json(report).into_response(),
        Ok(Err(e)) => admin_error(e),
        Err(response) => response,
    }
}

async fn snapshot(State(sim): State<GraphSim>, Path(tenant): Path<String>) -> Response {
    let body = blocking(move || {
        sim.snapshot(&tenant)
            .map(|users| serde_json::to_vec(&users))
    })
    .await;
    match body {
        Ok(Ok(Ok(bytes))) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(Ok(Err(e))) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
        Ok(Err(e)) => admin_error(e),
        Err(response) => response,
    }
}

async fn requests(State(sim): State<GraphSim>, Path(tenant): Path<String>) -> Response {
    match sim.requests(&tenant) {
        Ok(counts) => axum::Json(counts).into_response(),
        Err(e) => admin_error(e),
    }
}
