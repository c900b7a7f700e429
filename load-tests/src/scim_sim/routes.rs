//! HTTP routes of the SCIM simulator under `/identity/scim/{orgId}/v2/Users`: org lookup,
//! bearer-token check, counters, then the store. Handlers do their work synchronously, so no
//! lock is ever held across an await. The `/Groups` routes (`group_routes.rs`) share the
//! request handling defined here.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::ScimSim;
use super::counters::RequestKind;
use super::error::{ScimError, ScimType};
use super::list::parse_query;
use super::store::{Org, Store};

pub(super) fn router(sim: ScimSim) -> Router {
    Router::new()
        .route(
            "/identity/scim/{org_id}/v2/Users",
            get(list_users).post(create_user),
        )
        .route(
            "/identity/scim/{org_id}/v2/Users/{user_id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .merge(super::group_routes::routes())
        .merge(super::admin::routes())
        .with_state(sim)
}

impl ScimSim {
    /// Runs `op` for a known org with a valid token, counting the request and its outcome.
    /// An unknown org is a 404 and is not counted (there is no org to count it against).
    pub(super) fn handle(
        &self,
        org_id: &str,
        kind: RequestKind,
        headers: &HeaderMap,
        op: impl FnOnce(&Store, &Org) -> Result<Response, ScimError>,
    ) -> Response {
        let Some(org) = self.inner.org(org_id) else {
            return ScimError::NotFound(format!("organization {org_id} not found")).into_response();
        };
        org.counters.count(kind);
        let response = match authorize(&org, headers).and_then(|()| op(&self.inner, &org)) {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        org.counters.record_status(response.status());
        response
    }
}

fn authorize(org: &Org, headers: &HeaderMap) -> Result<(), ScimError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ScimError::Unauthorized("missing bearer token".into()))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| ScimError::Unauthorized("expected a bearer token".into()))?;
    if org.token_matches(token) {
        Ok(())
    } else {
        Err(ScimError::Unauthorized("invalid bearer token".into()))
    }
}

pub(super) fn parse_json(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad(ScimType::InvalidSyntax, format!("invalid JSON: {e}")))
}

/// `http://<Host>`, for `meta.location` and the `Location` header.
pub(super) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// A single user or group: JSON body plus `ETag` (= `meta.version`) and, for 201, `Location`.
pub(super) fn resource_response(status: StatusCode, resource: Value) -> Response {
    let meta = |key: &str| {
        resource
            .get("meta")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
    };
    let (etag, location) = (meta("version"), meta("location"));
    let mut response = (status, axum::Json(&resource)).into_response();
    let headers = response.headers_mut();
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED
        && let Some(location) = location
    {
        headers.insert(header::LOCATION, location);
    }
    response
}

async fn create_user(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.handle(&org_id, RequestKind::Create, &headers, |store, org| {
        let user = store.create(org, &base_url(&headers), parse_json(&body)?)?;
        Ok(resource_response(StatusCode::CREATED, user))
    })
}

async fn list_users(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    sim.handle(&org_id, RequestKind::List, &headers, |store, org| {
        let q = parse_query(query.as_deref(), &store.config)?;
        Ok((StatusCode::OK, axum::Json(store.list(org, &q))).into_response())
    })
}

async fn get_user(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sim.handle(&org_id, RequestKind::Get, &headers, |store, org| {
        Ok(resource_response(StatusCode::OK, store.get(org, &id)?))
    })
}

async fn patch_user(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.handle(&org_id, RequestKind::Patch, &headers, |store, org| {
        Ok(resource_response(
            StatusCode::OK,
            store.patch(org, &id, &parse_json(&body)?)?,
        ))
    })
}

async fn put_user(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.handle(&org_id, RequestKind::Put, &headers, |store, org| {
        Ok(resource_response(
            StatusCode::OK,
            store.put(org, &id, parse_json(&body)?)?,
        ))
    })
}

async fn delete_user(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sim.handle(&org_id, RequestKind::Delete, &headers, |store, org| {
        store.delete(org, &id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
