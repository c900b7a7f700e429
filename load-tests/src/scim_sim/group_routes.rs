//! HTTP routes of the simulator's Groups (webex-scim.md §1, §7):
//! `POST|GET /identity/scim/{orgId}/v2/Groups`, `GET|PUT|PATCH|DELETE …/Groups/{id}` and
//! `GET …/Groups/{id}/Members`. Same org lookup, bearer token and counting as `/Users`
//! (`call.rs`), counted under the `group_*` counters.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ScimSim;
use super::call::{ScimCall, json_response, parse_json, resource_response};
use super::counters::RequestKind;
use super::group_query::{parse_group_list, parse_members_query, parse_shown};

pub(super) fn routes() -> Router<ScimSim> {
    Router::new()
        .route(
            "/identity/scim/{org_id}/v2/Groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/identity/scim/{org_id}/v2/Groups/{id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route(
            "/identity/scim/{org_id}/v2/Groups/{id}/Members",
            get(group_members),
        )
}

async fn create_group(call: ScimCall, body: Bytes) -> Response {
    call.handle(RequestKind::GroupCreate, |store, org| {
        let (body, shown) = (parse_json(&body)?, parse_shown(call.query()));
        let group = store.create_group(org, &call.base_url(), body, shown)?;
        Ok(resource_response(StatusCode::CREATED, group))
    })
}

async fn list_groups(call: ScimCall) -> Response {
    call.handle(RequestKind::GroupList, |store, org| {
        let q = parse_group_list(call.query(), &store.config)?;
        Ok(json_response(store.list_groups(org, &q)))
    })
}

async fn get_group(call: ScimCall) -> Response {
    call.handle(RequestKind::GroupGet, |store, org| {
        let group = store.get_group(org, &call.id, parse_shown(call.query()))?;
        Ok(resource_response(StatusCode::OK, group))
    })
}

async fn group_members(call: ScimCall) -> Response {
    call.handle(RequestKind::GroupMembers, |store, org| {
        let q = parse_members_query(call.query())?;
        Ok(json_response(store.group_members_page(org, &call.id, &q)?))
    })
}

async fn patch_group(call: ScimCall, body: Bytes) -> Response {
    call.handle(RequestKind::GroupPatch, |store, org| {
        // Webex answers 200 with the group (§7.3); Entra accepts that as well as 204.
        let (body, shown) = (parse_json(&body)?, parse_shown(call.query()));
        let group = store.patch_group(org, &call.id, &body, shown)?;
        Ok(resource_response(StatusCode::OK, group))
    })
}

async fn put_group(call: ScimCall, body: Bytes) -> Response {
    call.handle(RequestKind::GroupPut, |store, org| {
        let (body, shown) = (parse_json(&body)?, parse_shown(call.query()));
        let group = store.put_group(org, &call.id, body, shown)?;
        Ok(resource_response(StatusCode::OK, group))
    })
}

async fn delete_group(call: ScimCall) -> Response {
    call.handle(RequestKind::GroupDelete, |store, org| {
        store.delete_group(org, &call.id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
