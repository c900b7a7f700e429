//! `GET /v1.0/users/{id}/photo` and `/photo/$value`: users' profile photos.
//!
//! A photo is not change-tracked by `users/delta` (graph.md §1.2: navigation properties such as
//! `photo` are not tracked), so a client learns of a new photo only by asking. The metadata
//! answer carries `@odata.mediaEtag`, which changes with the photo; a user without one answers
//! `404 ImageNotFound`, an unknown or deleted user `404 Request_ResourceNotFound`. Photos are
//! set by the harness through [`super::GraphSim::set_photo`]; every request is counted in
//! `photo_requests`. Photos live in Exchange, outside the directory's RU buckets, so these
//! requests are not throttled here.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::envelope::RequestIds;
use super::{Counters, GraphSim, Tenant, UserState};

/// One user's photo: its bytes (JPEG) and the entity tag that changes with them.
#[derive(Debug, Clone)]
pub(crate) struct Photo {
    pub etag: String,
    pub bytes: Arc<[u8]>,
}

/// The photos of a tenant's users, by user id, and the version that makes each etag new.
#[derive(Debug, Default)]
pub(crate) struct Photos {
    by_user: HashMap<String, Photo>,
    version: u64,
}

impl Photos {
    /// Sets (or with `None` removes) a user's photo; a new photo gets a new etag even when
    /// its bytes are the same, as an upload does in Exchange.
    pub(crate) fn set(&mut self, user_id: &str, bytes: Option<Vec<u8>>) {
        match bytes {
            Some(bytes) => {
                self.version += 1;
                let photo = Photo {
                    etag: format!("\"{:08X}\"", self.version),
                    bytes: bytes.into(),
                };
                self.by_user.insert(user_id.to_string(), photo);
            }
            None => {
                self.by_user.remove(user_id);
            }
        }
    }

    pub(crate) fn get(&self, user_id: &str) -> Option<&Photo> {
        self.by_user.get(user_id)
    }
}

/// What a photo request asks for.
#[derive(Clone, Copy)]
enum Want {
    Metadata,
    Content,
}

pub(crate) async fn metadata(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    answer(&sim, &headers, &user, Want::Metadata)
}

pub(crate) async fn content(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    answer(&sim, &headers, &user, Want::Content)
}

fn answer(sim: &GraphSim, headers: &HeaderMap, user: &str, want: Want) -> Response {
    let ids = RequestIds::new(headers);
    let tenant = match super::http::authenticated(sim, headers, &ids) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    Counters::bump(&tenant.counters.photo_requests, 1);
    if !is_live(&tenant, user) {
        return ids.graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{user}' does not exist or one of its queried reference-property objects are not present."),
        );
    }
    let Some(photo) = tenant.photos().get(user).cloned() else {
        return ids.graph_error(
            StatusCode::NOT_FOUND,
            "ImageNotFound",
            "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.",
        );
    };
    let response = match want {
        Want::Metadata => axum::Json(json!({
            "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#users('{user}')/photo/$entity"),
            "@odata.mediaContentType": "image/jpeg",
            "@odata.mediaEtag": photo.etag,
            "id": "240X240",
            "height": 240,
            "width": 240,
        }))
        .into_response(),
        Want::Content => {
            let mut response = photo.bytes.to_vec().into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            if let Ok(etag) = HeaderValue::from_str(&photo.etag) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
    };
    ids.stamp(response)
}

fn is_live(tenant: &Tenant, user: &str) -> bool {
    tenant
        .read()
        .initial_item(user, false)
        .is_some_and(|item| item.user.state == UserState::Live)
}
