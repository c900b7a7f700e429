//! The simulator's routes: the token endpoint, Graph `users/delta` and `groups/delta`,
//! `DELETE /v1.0/servicePrincipals(appId='…')` (revoking the app's consent, `auth.rs`), and
//! `/_sim/` admin endpoints for the harness (add tenants, apply change steps, read ground truth
//! and counters).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::delta::{self, DeltaError, DeltaQuery};
use super::envelope::RequestIds;
use super::throttle::{self, Charge};
use super::{
    Counters, GraphSim, GraphSimConfig, GraphSimError, ResetMode, Tenant, TenantSpec, faults,
    groups_delta,
};
use crate::synthetic::{ChangeStep, GroupChangeStep, GroupSpec};

const RESOURCE_UNIT: HeaderName = HeaderName::from_static("x-ms-resource-unit");
const THROTTLE_PRIORITY: HeaderName = HeaderName::from_static("x-ms-throttle-priority");
const THROTTLE_SCOPE: HeaderName = HeaderName::from_static("x-ms-throttle-scope");
const THROTTLE_INFORMATION: HeaderName = HeaderName::from_static("x-ms-throttle-information");
const THROTTLE_LIMIT_PERCENTAGE: HeaderName =
    HeaderName::from_static("x-ms-throttle-limit-percentage");

/// Body of `POST /_sim/tenants`: a [`TenantSpec`] and, optionally, `"groups"`.
#[derive(serde::Deserialize)]
struct AddTenantRequest {
    #[serde(flatten)]
    spec: TenantSpec,
    #[serde(default)]
    groups: Option<GroupSpec>,
}

/// Body of `POST /_sim/tenants/{t}/changes`: the fields of [`ChangeStep`] and of
/// [`GroupChangeStep`], all optional.
#[derive(serde::Deserialize)]
struct ChangeRequest {
    #[serde(flatten)]
    users: ChangeStep,
    #[serde(flatten)]
    groups: GroupChangeStep,
}

/// Serves one delta request of a tenant (users or groups).
type Respond =
    fn(&Tenant, &GraphSimConfig, &DeltaQuery, &str, bool) -> Result<serde_json::Value, DeltaError>;

/// Body of `POST /_sim/tenants/{t}/reset`.
#[derive(serde::Deserialize)]
struct ResetRequest {
    mode: ResetMode,
}

pub(crate) fn router(sim: GraphSim) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/users/delta", get(users_delta))
        .route("/v1.0/users/microsoft.graph.delta", get(users_delta))
        .route("/v1.0/groups/delta", get(groups_delta))
        .route("/v1.0/groups/microsoft.graph.delta", get(groups_delta))
        .route("/v1.0/places/microsoft.graph.room", get(rooms))
        .route("/v1.0/domains", get(super::domains::list))
        .route("/v1.0/users", get(super::search::users))
        .route("/v1.0/groups", get(super::search::groups))
        // The router matches no suffix after a parameter: the `'…')` is the handler's.
        .route(
            "/v1.0/servicePrincipals(appId={key}",
            axum::routing::delete(delete_service_principal),
        )
        .route(
            "/v1.0/servicePrincipals/{sp}/synchronization/jobs",
            get(super::synchronization::jobs),
        )
        .route(
            "/v1.0/servicePrincipals/{sp}/synchronization/jobs/{job}/schema",
            get(super::synchronization::schema),
        )
        .route(
            "/v1.0/servicePrincipals/{sp}/synchronization/secrets",
            get(super::synchronization::secrets),
        )
        .route(
            "/v1.0/servicePrincipals/{sp}/appRoleAssignedTo",
            get(super::synchronization::assignments),
        )
        .route("/v1.0/users/{user}", get(super::user::get))
        .route("/v1.0/users/{user}/photo", get(super::photos::metadata))
        .route(
            "/v1.0/users/{user}/photo/$value",
            get(super::photos::content),
        )
        .route("/_sim/tenants", post(add_tenant).get(list_tenants))
        .route("/_sim/tenants/{tenant}/changes", post(apply_changes))
        .route("/_sim/tenants/{tenant}/users", get(snapshot))
        .route("/_sim/tenants/{tenant}/groups", get(groups_snapshot))
        .route("/_sim/tenants/{tenant}/requests", get(requests))
        .route("/_sim/tenants/{tenant}/reset", post(reset))
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
    delta_request(&sim, &headers, raw.as_deref(), delta::respond)
}

async fn groups_delta(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    delta_request(&sim, &headers, raw.as_deref(), groups_delta::respond)
}

async fn rooms(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    delta_request(&sim, &headers, raw.as_deref(), super::rooms::respond)
}

/// The app id of a `servicePrincipals(appId='…')` key, from what follows `appId=`.
fn app_id_of_key(key: &str) -> Option<&str> {
    key.strip_prefix('\'')?
        .strip_suffix("')")
        .filter(|id| !id.is_empty() && !id.contains('\''))
}

/// Deletes the service principal of the caller's own app in the caller's tenant (204), as
/// an admin does to revoke its consent; any other app id is not found there.
async fn delete_service_principal(
    State(sim): State<GraphSim>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let ids = RequestIds::new(&headers);
    let tenant = match authenticated(&sim, &headers, &ids) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let Some(app_id) = app_id_of_key(&key) else {
        return ids.graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Invalid object identifier '{key}'."),
        );
    };
    let deleted = app_id == tenant.spec.client_id
        && sim.revoke_consent(&tenant.spec.tenant_id).unwrap_or(false);
    if !deleted {
        return ids.graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{app_id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    }
    tracing::info!(tenant = %tenant.spec.tenant_id, app_id, "service principal deleted: consent revoked");
    ids.stamp(StatusCode::NO_CONTENT.into_response())
}

/// The tenant whose bearer token the request carries, or Graph's 401.
pub(crate) fn authenticated(
    sim: &GraphSim,
    headers: &HeaderMap,
    ids: &RequestIds,
) -> Result<std::sync::Arc<Tenant>, Box<Response>> {
    sim.authenticate(headers).map_err(|message| {
        Box::new(ids.graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        ))
    })
}

/// Authentication, throttling and injected faults, then `respond`.
fn delta_request(
    sim: &GraphSim,
    headers: &HeaderMap,
    raw: Option<&str>,
    respond: Respond,
) -> Response {
    let ids = RequestIds::new(headers);
    let tenant = match authenticated(sim, headers, &ids) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let counters = &tenant.counters;
    Counters::bump(&counters.delta_requests, 1);
    if low_priority(headers) {
        Counters::bump(&counters.low_priority_requests, 1);
    }
    let config = sim.config();
    let mut charged = HeaderMap::new();
    match tenant.charge(config) {
        Some(Charge::Throttled { retry_after }) => return throttled(&ids, &tenant, retry_after),
        // Graph reports the share of the budget in use above 80 %.
        Some(Charge::Allowed { used }) if used >= 0.8 => {
            if let Ok(value) = HeaderValue::from_str(&format!("{used:.1}")) {
                charged.insert(THROTTLE_LIMIT_PERCENTAGE, value);
            }
        }
        _ => {}
    }
    Counters::bump(&counters.ru_charged, throttle::DELTA_PAGE_COST as u64);
    charged.insert(RESOURCE_UNIT, HeaderValue::from_static("1"));

    let mut response = if let Some(fault) = tenant.transient_fault(config) {
        Counters::bump(&counters.transient_errors, 1);
        let (status, code, message) = fault.answer();
        ids.graph_error(status, code, message)
    } else {
        let query = DeltaQuery::parse(raw);
        let minimal = prefers_minimal(headers);
        let base_url = base_url(headers);
        match respond(&tenant, config, &query, &base_url, minimal) {
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
            Err(e) => {
                let mut response = ids.graph_error_with(e.status, e.code, &e.message, e.inner);
                if let Some(location) = e.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                response
            }
        }
    };
    response.headers_mut().extend(charged);
    response
}

/// A 429 as Graph sends it when the app+tenant RU bucket is empty (graph.md §1.8 F5, §2).
fn throttled(ids: &RequestIds, tenant: &Tenant, retry_after: Duration) -> Response {
    Counters::bump(&tenant.counters.throttled, 1);
    let mut response = ids.graph_error_with(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Please retry again later.",
        faults::throttled_inner(),
    );
    let scope = format!(
        "Tenant_Application/ReadWrite/{}/{}",
        tenant.spec.client_id, tenant.spec.tenant_id
    );
    let headers = [
        (
            header::RETRY_AFTER,
            throttle::retry_after_value(retry_after),
        ),
        // A refused request is charged nothing.
        (RESOURCE_UNIT, "0".to_owned()),
        (THROTTLE_SCOPE, scope),
        (THROTTLE_INFORMATION, "ResourceUnitLimitExceeded".to_owned()),
    ];
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Whether the caller asked to be throttled first (`x-ms-throttle-priority: low`).
fn low_priority(headers: &HeaderMap) -> bool {
    headers
        .get_all(THROTTLE_PRIORITY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.trim().eq_ignore_ascii_case("low"))
}

/// `http://<Host>`: links must work on whatever address the client used.
pub(super) fn base_url(headers: &HeaderMap) -> String {
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
    axum::Json(request): axum::Json<AddTenantRequest>,
) -> Response {
    let AddTenantRequest { spec, groups } = request;
    let (tenant_id, users) = (spec.tenant_id.clone(), spec.users);
    let groups = groups.unwrap_or_default();
    match blocking(move || sim.add_tenant_with_groups(spec, groups)).await {
        Ok(Ok(())) => (
            StatusCode::CREATED,
            axum::Json(json!({ "tenant_id": tenant_id, "users": users, "groups": groups.count })),
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
    axum::Json(step): axum::Json<ChangeRequest>,
) -> Response {
    match blocking(move || sim.apply_step(&tenant, &step.users, &step.groups)).await {
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

async fn groups_snapshot(State(sim): State<GraphSim>, Path(tenant): Path<String>) -> Response {
    match blocking(move || sim.groups(&tenant)).await {
        Ok(Ok(groups)) => axum::Json(groups).into_response(),
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

async fn reset(
    State(sim): State<GraphSim>,
    Path(tenant): Path<String>,
    axum::Json(request): axum::Json<ResetRequest>,
) -> Response {
    match sim.reset(&tenant, request.mode) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::app_id_of_key;

    #[test]
    fn service_principal_keys() {
        let cases = [
            ("'app-1')", Some("app-1")),
            (
                "'00000000-0000-0000-0000-000000000001')",
                Some("00000000-0000-0000-0000-000000000001"),
            ),
            ("app-1)", None),
            ("'app-1'", None),
            ("'')", None),
            ("'a'b')", None),
        ];
        for (key, want) in cases {
            assert_eq!(app_id_of_key(key), want, "{key}");
        }
    }
}
