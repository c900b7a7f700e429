//! HTTP routes of the simulator's Groups (webex-scim.md §1, §7):
//! `POST|GET /identity/scim/{orgId}/v2/Groups`, `GET|PUT|PATCH|DELETE …/Groups/{id}` and
//! `GET …/Groups/{id}/Members`. Same org lookup, bearer token and counting as `/Users`
//! (`routes.rs`), counted under the `group_*` counters.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ScimSim;
use super::counters::RequestKind;
use super::group_query::{parse_group_list, parse_members_query, parse_shown};
use super::routes::{base_url, parse_json, resource_response};

pub(super) fn routes() -> Router<ScimSim> {
    Router::new()
        .route(
            "/identity/scim/{org_id}/v2/Groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/identity/scim/{org_id}/v2/Groups/{group_id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route(
            "/identity/scim/{org_id}/v2/Groups/{group_id}/Members",
            get(group_members),
        )
}

async fn create_group(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.handle(&org_id, RequestKind::GroupCreate, &headers, |store, org| {
        let group = store.create_group(
            org,
            &base_url(&headers),
            parse_json(&body)?,
            parse_shown(query.as_deref()),
        )?;
        Ok(resource_response(StatusCode::CREATED, group))
    })
}

async fn list_groups(
    State(sim): State<ScimSim>,
    Path(org_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    sim.handle(&org_id, RequestKind::GroupList, &headers, |store, org| {
        let q = parse_group_list(query.as_deref(), &store.config)?;
        Ok((StatusCode::OK, axum::Json(store.list_groups(org, &q))).into_response())
    })
}

async fn get_group(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    sim.handle(&org_id, RequestKind::GroupGet, &headers, |store, org| {
        let group = store.get_group(org, &id, parse_shown(query.as_deref()))?;
        Ok(resource_response(StatusCode::OK, group))
    })
}

async fn group_members(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    sim.handle(
        &org_id,
        RequestKind::GroupMembers,
        &headers,
        |store, org| {
            let q = parse_members_query(query.as_deref())?;
            let page = store.group_members_page(org, &id, &q)?;
            Ok((StatusCode::OK, axum::Json(page)).into_response())
        },
    )
}

async fn patch_group(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.handle(&org_id, RequestKind::GroupPatch, &headers, |store, org| {
        // Webex answers 200 with the group (§7.3); Entra accepts that as well as 204.
        let group =
            store.patch_group(org, &id, &parse_json(&body)?, parse_shown(query.as_deref()))?;
        Ok(resource_response(StatusCode::OK, group))
    })
}

async fn put_group(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.handle(&org_id, RequestKind::GroupPut, &headers, |store, org| {
        let group = store.put_group(org, &id, parse_json(&body)?, parse_shown(query.as_deref()))?;
        Ok(resource_response(StatusCode::OK, group))
    })
}

async fn delete_group(
    State(sim): State<ScimSim>,
    Path((org_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sim.handle(&org_id, RequestKind::GroupDelete, &headers, |store, org| {
        store.delete_group(org, &id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
