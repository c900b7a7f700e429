//! A tiny in-memory SCIM server for exercising the worker's push path: bearer auth,
//! 409 uniqueness (in the org, or "foreign" outside it), one-off 429 with a fractional
//! Retry-After, userName search, PATCH replace, DELETE, and an injected fault status for a
//! range of requests (an expired token, an outage). Users are kept as path → value maps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use serde_json::{Value, json};

pub const TOKEN: &str = "tok-fake-scim";
pub const RETRY_AFTER: &str = "0.3";

pub type Attributes = BTreeMap<String, Value>;

#[derive(Debug, Default)]
pub struct FakeState {
    pub users: BTreeMap<String, Attributes>,
    /// Lower-cased userNames that exist in another org.
    pub foreign: HashSet<String>,
    /// Lower-cased userNames whose next POST is answered 429.
    pub throttle_once: HashSet<String>,
    /// Answers `status` to the requests whose number (from 0, over all requests) is in
    /// `requests`, without serving them.
    pub fault: Option<Fault>,
    /// Requests received so far.
    pub requests: usize,
    /// Every request: (method, path, status).
    pub log: Vec<(String, String, u16)>,
    /// When each POST of a userName arrived, and its status.
    pub posts: Vec<(String, Instant, u16)>,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub status: StatusCode,
    pub requests: Range<usize>,
}

impl FakeState {
    pub fn by_user_name(&self, user_name: &str) -> Option<(&String, &Attributes)> {
        self.users.iter().find(|(_, u)| {
            u.get("userName")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
        })
    }

    pub fn count(&self, method: &str) -> usize {
        self.log.iter().filter(|(m, _, _)| m == method).count()
    }

    /// Requests answered with `status`.
    pub fn answered(&self, status: u16) -> usize {
        self.log.iter().filter(|(_, _, s)| *s == status).count()
    }

    /// Users with this userName (case-insensitive).
    pub fn named(&self, user_name: &str) -> usize {
        self.users
            .values()
            .filter(|u| {
                u.get("userName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
            })
            .count()
    }
}

/// Counts the request and answers the injected fault if its number is in the fault's range.
fn injected(state: &Shared, method: &str, path: String) -> Option<Response> {
    let mut s = state.lock().unwrap();
    let number = s.requests;
    s.requests += 1;
    let fault = s.fault.clone()?;
    if !fault.requests.contains(&number) {
        return None;
    }
    s.log.push((method.into(), path, fault.status.as_u16()));
    Some(scim_error(fault.status, None, "injected fault"))
}

type Shared = Arc<Mutex<FakeState>>;

pub struct FakeScim {
    pub base_url: String,
    pub state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeScim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeScim {
    pub async fn start() -> FakeScim {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/org/v2/Users", post(create).get(search))
            .route("/org/v2/Users/{id}", patch(patch_user).delete(delete_user))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeScim {
            base_url: format!("http://{addr}/org/v2"),
            state,
            server,
        }
    }

    /// Adds a user as if created earlier by someone else; returns its id.
    pub fn insert(&self, attributes: Attributes) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.state
            .lock()
            .unwrap()
            .users
            .insert(id.clone(), attributes);
        id
    }
}

fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                          "status": status.as_u16().to_string(), "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    (
        status,
        [("content-type", "application/scim+json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn log(state: &Shared, method: &str, path: String, status: StatusCode) {
    state
        .lock()
        .unwrap()
        .log
        .push((method.into(), path, status.as_u16()));
}

fn flatten(resource: &Value) -> Attributes {
    let mut out = Attributes::new();
    for key in [
        "userName",
        "externalId",
        "displayName",
        "active",
        "userType",
    ] {
        if let Some(v) = resource.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(name) = resource.get("name").and_then(Value::as_object) {
        for (k, v) in name {
            out.insert(format!("name.{k}"), v.clone());
        }
    }
    if let Some(emails) = resource.get("emails").and_then(Value::as_array) {
        for e in emails {
            if let (Some(t), Some(v)) = (e.get("type").and_then(Value::as_str), e.get("value")) {
                out.insert(format!("emails[type eq \"{t}\"].value"), v.clone());
            }
        }
    }
    out
}

async fn create(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let path = "/Users".to_string();
    if let Some(response) = injected(&state, "POST", path.clone()) {
        return response;
    }
    if !authorized(&headers) {
        log(&state, "POST", path, StatusCode::UNAUTHORIZED);
        return scim_error(StatusCode::UNAUTHORIZED, None, "bad token");
    }
    let Ok(resource) = serde_json::from_slice::<Value>(&body) else {
        return scim_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "not json");
    };
    let core = "urn:ietf:params:scim:schemas:core:2.0:User";
    let has_core = resource["schemas"]
        .as_array()
        .is_some_and(|s| s.iter().any(|x| x == core));
    let Some(user_name) = resource["userName"].as_str().map(str::to_string) else {
        return scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "userName required",
        );
    };
    if !has_core || resource["userType"].as_str().is_none() {
        return scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "schemas and userType required",
        );
    }
    let lower = user_name.to_lowercase();
    let mut s = state.lock().unwrap();
    let (status, response) = if s.throttle_once.remove(&lower) {
        let r = (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", RETRY_AFTER),
                ("content-type", "application/scim+json"),
            ],
            "{}",
        )
            .into_response();
        (StatusCode::TOO_MANY_REQUESTS, r)
    } else if s.foreign.contains(&lower) || s.by_user_name(&user_name).is_some() {
        (
            StatusCode::CONFLICT,
            scim_error(
                StatusCode::CONFLICT,
                Some("uniqueness"),
                "userName already exists",
            ),
        )
    } else {
        let id = uuid::Uuid::new_v4().to_string();
        s.users.insert(id.clone(), flatten(&resource));
        (
            StatusCode::CREATED,
            (
                StatusCode::CREATED,
                axum::Json(json!({"id": id, "userName": user_name})),
            )
                .into_response(),
        )
    };
    s.posts.push((user_name, Instant::now(), status.as_u16()));
    s.log.push(("POST".into(), path, status.as_u16()));
    response
}

async fn search(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = injected(&state, "GET", "/Users".into()) {
        return response;
    }
    if !authorized(&headers) {
        return scim_error(StatusCode::UNAUTHORIZED, None, "bad token");
    }
    let Some(value) = q.get("filter").and_then(|f| f.strip_prefix("userName eq ")) else {
        return scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
            "unsupported filter",
        );
    };
    let Ok(user_name) = serde_json::from_str::<String>(value) else {
        return scim_error(
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
            "bad filter value",
        );
    };
    let s = state.lock().unwrap();
    let found: Vec<Value> = s
        .by_user_name(&user_name)
        .map(|(id, u)| json!({"id": id, "userName": u["userName"]}))
        .into_iter()
        .collect();
    drop(s);
    log(&state, "GET", "/Users".into(), StatusCode::OK);
    axum::Json(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                      "totalResults": found.len(), "startIndex": 1, "itemsPerPage": found.len(),
                      "Resources": found}),
    )
    .into_response()
}

async fn patch_user(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = injected(&state, "PATCH", format!("/Users/{id}")) {
        return response;
    }
    if !authorized(&headers) {
        return scim_error(StatusCode::UNAUTHORIZED, None, "bad token");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return scim_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "not json");
    };
    let mut s = state.lock().unwrap();
    let Some(user) = s.users.get_mut(&id) else {
        drop(s);
        log(
            &state,
            "PATCH",
            format!("/Users/{id}"),
            StatusCode::NOT_FOUND,
        );
        return scim_error(StatusCode::NOT_FOUND, None, "no such user");
    };
    for op in request["Operations"].as_array().into_iter().flatten() {
        if op["op"].as_str().map(str::to_lowercase).as_deref() != Some("replace") {
            return scim_error(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                "only replace",
            );
        }
        let Some(path) = op["path"].as_str() else {
            return scim_error(StatusCode::BAD_REQUEST, Some("noTarget"), "path required");
        };
        user.insert(path.to_string(), op["value"].clone());
    }
    s.log.push(("PATCH".into(), format!("/Users/{id}"), 204));
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_user(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = injected(&state, "DELETE", format!("/Users/{id}")) {
        return response;
    }
    if !authorized(&headers) {
        return scim_error(StatusCode::UNAUTHORIZED, None, "bad token");
    }
    let mut s = state.lock().unwrap();
    let status = if s.users.remove(&id).is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    };
    s.log
        .push(("DELETE".into(), format!("/Users/{id}"), status.as_u16()));
    status.into_response()
}
