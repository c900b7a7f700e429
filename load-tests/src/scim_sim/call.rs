//! What every `/Users` and `/Groups` request goes through, in one place: the [`ScimCall`]
//! extractor (org id, resource id, query and headers), org lookup, bearer-token check, the
//! org's token bucket and counting, and the JSON in and out. Handlers do their work synchronously inside
//! [`ScimCall::handle`], so no lock is ever held across an await.

use std::time::Instant;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::ScimSim;
use super::counters::RequestKind;
use super::error::{ScimError, ScimType};
use super::store::{Org, Store, lock};
use super::throttle::retry_after_secs;

/// One SCIM request, as every handler needs it; the body, where there is one, is extracted
/// beside it.
pub(super) struct ScimCall {
    sim: ScimSim,
    org_id: String,
    /// The `{id}` of `…/Users/{id}` or `…/Groups/{id}[/Members]`; empty on a collection.
    pub id: String,
    /// The raw (URL-encoded) query string.
    query: Option<String>,
    headers: HeaderMap,
}

/// The path parameters of every SCIM route.
#[derive(Deserialize)]
struct PathIds {
    org_id: String,
    #[serde(default)]
    id: String,
}

impl FromRequestParts<ScimSim> for ScimCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sim: &ScimSim) -> Result<Self, Response> {
        let Path(ids) = Path::<PathIds>::from_request_parts(parts, sim)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(ScimCall {
            sim: sim.clone(),
            org_id: ids.org_id,
            id: ids.id,
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
        })
    }
}

impl ScimCall {
    /// Runs `op` for a known org with a valid token, counting the request and its outcome.
    /// An unknown org is a 404 and is not counted (there is no org to count it against).
    pub fn handle(
        &self,
        kind: RequestKind,
        op: impl FnOnce(&Store, &Org) -> Result<Response, ScimError>,
    ) -> Response {
        let store = &self.sim.inner;
        let Some(org) = store.org(&self.org_id) else {
            return ScimError::NotFound(format!("organization {} not found", self.org_id))
                .into_response();
        };
        org.counters.count(kind);
        let response = match authorize(&org, &self.headers)
            .and_then(|()| throttle(store, &org))
            .and_then(|()| random_fault(store, &org))
            .and_then(|()| inject_fault(store))
            .and_then(|()| op(store, &org))
        {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        org.counters.record_status(response.status());
        response
    }

    /// `http://<Host>`, for `meta.location` and the `Location` header.
    pub fn base_url(&self) -> String {
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

/// Every `fail_every`th request fails with 503, before it changes anything.
fn inject_fault(store: &Store) -> Result<(), ScimError> {
    let Some(every) = store.config.fail_every.filter(|&n| n > 0) else {
        return Ok(());
    };
    let seq = store
        .fault_sequence
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    if seq.is_multiple_of(every) {
        return Err(ScimError::Unavailable("injected failure".into()));
    }
    Ok(())
}

/// The org's random fault for this request, if any (`faults.rs`); a 429 counts as
/// throttled.
fn random_fault(store: &Store, org: &Org) -> Result<(), ScimError> {
    let (faults, generation) = store.faults();
    if faults.is_off() {
        return Ok(());
    }
    let drawn = lock(&org.faults).draw(&faults, generation, org.index, Instant::now());
    if let Err(ScimError::Throttled { .. }) = &drawn {
        org.counters.count_throttled();
    }
    drawn
}

/// Takes one of the org's tokens when a rate limit is configured.
fn throttle(store: &Store, org: &Org) -> Result<(), ScimError> {
    let Some(limit) = store.config.rate_limit else {
        return Ok(());
    };
    org.bucket.take(limit, Instant::now()).map_err(|wait| {
        org.counters.count_throttled();
        ScimError::Throttled {
            retry_after_secs: retry_after_secs(wait),
        }
    })
}

pub(super) fn authorize(org: &Org, headers: &HeaderMap) -> Result<(), ScimError> {
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

/// A 200 with a JSON body that is no single resource (a list, a member page).
pub(super) fn json_response(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}
