//! HTTP routes of the SCIM simulator under `/identity/scim/{orgId}/v2/Users`, and the router
//! that joins them with `/Bulk` (`bulk.rs`), the `/Groups` routes (`group_routes.rs`) and
//! `/_sim` (`admin.rs`).
//! Org lookup, bearer-token check and counting are `call.rs`'s.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ScimSim;
use super::call::{ScimCall, json_response, parse_json, resource_response};
use super::counters::RequestKind;
use super::list::parse_query;

pub(super) fn router(sim: ScimSim) -> Router {
    let bulk = sim.inner.config.bulk;
    let router = Router::new()
        .route(
            "/identity/scim/{org_id}/v2/Users",
            get(list_users).post(create_user),
        )
        .route(
            "/identity/scim/{org_id}/v2/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        );
    // A target without Bulk answers 404 there, as an unknown path.
    let router = if bulk {
        router.route(
            "/identity/scim/{org_id}/v2/Bulk",
            axum::routing::post(super::bulk::bulk),
        )
    } else {
        router
    };
    router
        .merge(super::group_routes::routes())
        .merge(super::admin::routes())
        .merge(super::domains::routes())
        .merge(super::sso::routes())
        .merge(super::directory_connector::routes())
        .with_state(sim)
}

async fn create_user(call: ScimCall, body: Bytes) -> Response {
    call.handle(RequestKind::Create, |store, org| {
        let user = store.create(org, &call.base_url(), parse_json(&body)?)?;
        Ok(resource_response(StatusCode::CREATED, user))
    })
}

async fn list_users(call: ScimCall) -> Response {
    call.handle(RequestKind::List, |store, org| {
        let q = parse_query(call.query(), &store.config)?;
        Ok(json_response(store.list(org, &q)))
    })
}

async fn get_user(call: ScimCall) -> Response {
    call.handle(RequestKind::Get, |store, org| {
        Ok(resource_response(StatusCode::OK, store.get(org, &call.id)?))
    })
}

async fn patch_user(call: ScimCall, body: Bytes) -> Response {
    call.handle(RequestKind::Patch, |store, org| {
        let user = store.patch(org, &call.id, parse_json(&body)?)?;
        Ok(resource_response(StatusCode::OK, user))
    })
}

async fn put_user(call: ScimCall, body: Bytes) -> Response {
    call.handle(RequestKind::Put, |store, org| {
        let user = store.put(org, &call.id, parse_json(&body)?)?;
        Ok(resource_response(StatusCode::OK, user))
    })
}

async fn delete_user(call: ScimCall) -> Response {
    call.handle(RequestKind::Delete, |store, org| {
        store.delete(org, &call.id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
