//! Hostile Graph answers fed to the real Graph client through a fake Graph: truncated JSON,
//! wrong types, huge strings, control characters, unknown `@removed` reasons, duplicate ids.
//! Each must end as a clear `GraphPage` error for that page (short, not retried), never a
//! panic, and never a tombstone made up from garbage; what Graph may legitimately send
//! (long or odd strings, repeated ids) must come through unchanged.

mod common;

use common::client;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use dirsync_coordinator::CoordinatorError;
use dirsync_coordinator::graph::{DeltaPage, GraphClient, PageLink};
use dirsync_proto::RemovedReason;

/// Longest error message a hostile page may produce (it is logged and stored with the run).
const MAX_MESSAGE: usize = 400;

/// A fake Graph answering every `users/delta`, `groups/delta` and user read with `body`.
struct FakeGraph {
    url: String,
    body: Arc<Mutex<Vec<u8>>>,
    pages: Arc<AtomicU32>,
}

impl FakeGraph {
    async fn start() -> FakeGraph {
        let body = Arc::new(Mutex::new(Vec::new()));
        let pages = Arc::new(AtomicU32::new(0));
        let answer = {
            let (body, pages) = (body.clone(), pages.clone());
            move || {
                let (body, pages) = (body.clone(), pages.clone());
                async move {
                    pages.fetch_add(1, Ordering::SeqCst);
                    let bytes = body.lock().unwrap().clone();
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, "application/json")],
                        bytes,
                    )
                        .into_response()
                }
            }
        };
        let app = Router::new()
            .route(
                "/{tenant}/oauth2/v2.0/token",
                post(|| async {
                    axum::Json(
                        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "t"}),
                    )
                }),
            )
            .route("/v1.0/users/delta", get(answer.clone()))
            .route("/v1.0/groups/delta", get(answer.clone()))
            .route("/v1.0/users/{key}", get(answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGraph { url, body, pages }
    }

    fn client(&self) -> GraphClient {
        client(&self.url)
    }

    /// Serves `body`, resets the request count, and fetches one users page.
    async fn users_page(&self, body: &[u8]) -> Result<DeltaPage, CoordinatorError> {
        *self.body.lock().unwrap() = body.to_vec();
        self.pages.store(0, Ordering::SeqCst);
        let url = format!("{}/v1.0/users/delta", self.url);
        self.client().users_page(&url).await
    }
}

/// A users page ending the round with these objects.
fn page(objects: Value) -> Vec<u8> {
    json!({"@odata.deltaLink": "http://g/v1.0/users/delta?$deltatoken=d", "value": objects})
        .to_string()
        .into_bytes()
}

/// Hostile bodies that must each be one short `GraphPage` error naming `expected`.
fn hostile_users_pages() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let huge = "x".repeat(1 << 20);
    let mut deep = "[".repeat(10_000);
    deep.push_str(&"]".repeat(10_000));
    vec![
        (
            "truncated json",
            br#"{"@odata.deltaLink":"d","value":[{"id":"u1","displayName":"Ad"#.to_vec(),
            "eof",
        ),
        ("empty body", Vec::new(), "eof"),
        (
            "html error page answered 200",
            b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
            "expected value",
        ),
        (
            "value is an object",
            br#"{"@odata.deltaLink":"d","value":{"id":"u1"}}"#.to_vec(),
            "invalid type",
        ),
        (
            "value holds a string",
            br#"{"@odata.deltaLink":"d","value":["u1"]}"#.to_vec(),
            "invalid type",
        ),
        (
            "nextLink is a number",
            br#"{"@odata.nextLink":42,"value":[]}"#.to_vec(),
            "invalid type",
        ),
        (
            "no link at all",
            br#"{"value":[{"id":"u1"}]}"#.to_vec(),
            "neither a nextlink nor a deltalink",
        ),
        (
            "value twice",
            br#"{"@odata.deltaLink":"d","value":[],"value":[{"id":"u1"}]}"#.to_vec(),
            "duplicate field",
        ),
        (
            "deeply nested attribute",
            format!(r#"{{"@odata.deltaLink":"d","value":[{{"id":"u1","x":{deep}}}]}}"#)
                .into_bytes(),
            "recursion limit",
        ),
        (
            "id missing",
            page(json!([{"displayName": "no id"}])),
            "usable id",
        ),
        ("id a number", page(json!([{"id": 7}])), "usable id"),
        ("id null", page(json!([{"id": null}])), "usable id"),
        ("id an array", page(json!([{"id": ["u1"]}])), "usable id"),
        ("id empty", page(json!([{"id": ""}])), "usable id"),
        ("id huge", page(json!([{"id": huge}])), "usable id"),
        (
            "id with a new line",
            page(json!([{"id": "u1\n"}])),
            "usable id",
        ),
        (
            "id with a nul",
            page(json!([{"id": "u1\u{0}"}])),
            "usable id",
        ),
        (
            "nul in a property",
            page(json!([{"id": "u1", "displayName": "Ada\u{0}"}])),
            "nul character",
        ),
        (
            "nul in a nested property",
            page(json!([{"id": "u1", "businessPhones": ["+1", "\u{0}"]}])),
            "nul character",
        ),
        (
            "nul in a property name",
            page(json!([{"id": "u1", "display\u{0}Name": "Ada"}])),
            "nul character",
        ),
        (
            "unknown @removed reason",
            page(json!([{"id": "u1", "@removed": {"reason": "vanished"}}])),
            "unknown @removed reason",
        ),
        (
            "empty @removed reason",
            page(json!([{"id": "u1", "@removed": {"reason": ""}}])),
            "unknown @removed reason",
        ),
        (
            "@removed a bare string",
            page(json!([{"id": "u1", "@removed": "deleted"}])),
            "unknown @removed reason",
        ),
        (
            "@removed without a reason",
            page(json!([{"id": "u1", "@removed": {}}])),
            "unknown @removed reason",
        ),
        (
            "@removed null",
            page(json!([{"id": "u1", "@removed": null}])),
            "unknown @removed reason",
        ),
        (
            "@removed reason a number",
            page(json!([{"id": "u1", "@removed": {"reason": 1}}])),
            "unknown @removed reason",
        ),
        (
            "@removed reason huge",
            page(json!([{"id": "u1", "@removed": {"reason": huge}}])),
            "unknown @removed reason",
        ),
        (
            "one bad object among good ones",
            page(json!([
                {"id": "u1", "displayName": "Ada"},
                {"id": "u2", "@removed": {"reason": "purged"}},
                {"id": "u3", "@removed": {"reason": "deleted"}}
            ])),
            "object u2",
        ),
        (
            "manager entry without an id",
            page(json!([{"id": "u1", "manager@delta": [{"id": 5}]}])),
            "manager@delta entry without a string id",
        ),
        (
            "manager entry a bare string",
            page(json!([{"id": "u1", "manager@delta": ["m1"]}])),
            "manager@delta entry without a string id",
        ),
    ]
}

#[tokio::test]
async fn hostile_users_pages_are_short_page_errors_never_retried() {
    let graph = FakeGraph::start().await;
    for (name, body, expected) in hostile_users_pages() {
        let err = graph.users_page(&body).await.unwrap_err();
        let CoordinatorError::GraphPage(message) = &err else {
            panic!("{name}: not a page error: {err}");
        };
        assert!(
            message.to_lowercase().contains(expected),
            "{name}: {message}"
        );
        assert!(
            err.to_string().chars().count() <= MAX_MESSAGE,
            "{name}: a message of {} chars",
            err.to_string().chars().count()
        );
        assert_eq!(
            graph.pages.load(Ordering::SeqCst),
            1,
            "{name}: a malformed page is not fetched again"
        );
    }
}

#[tokio::test]
async fn odd_but_valid_users_pages_come_through_unchanged() {
    let graph = FakeGraph::start().await;
    let huge = "Zoë ".repeat(250_000);
    let controls = "\u{1}tab\there\r\nbell\u{7}\u{1b}[31mred\u{7f}\u{202e}rtl";
    let body = page(json!([
        {"id": "u1", "displayName": huge, "jobTitle": controls},
        // Wrong types of ordinary properties are the mapping's business (it ignores them).
        {"id": "u2", "accountEnabled": "false", "businessPhones": "+1 555", "surname": 42},
        {"id": "u3", "@removed": {"reason": "Deleted"}},
        {"id": "u4", "@removed": {"reason": "CHANGED", "extra": [1, 2]}},
        {"id": "u5", "manager@delta": [{"id": "m1", "@removed": {"reason": "deleted"}}]},
        {"id": "u6", "manager@delta": "not an array"},
        {"id": "u7", "@odata.type": "#microsoft.graph.user", "unknown@odata.annotation": 1}
    ]));
    let users = graph.users_page(&body).await.unwrap().users;
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["u1", "u2", "u3", "u4", "u5", "u6", "u7"]);
    assert_eq!(users[0].str_attr("displayName"), Some(huge.as_str()));
    assert_eq!(users[0].str_attr("jobTitle"), Some(controls));
    assert_eq!(
        users[1].removed, None,
        "a wrong-typed accountEnabled is no tombstone"
    );
    assert_eq!(users[1].attributes["accountEnabled"], json!("false"));
    assert_eq!(users[2].removed, Some(RemovedReason::Deleted));
    assert_eq!(users[3].removed, Some(RemovedReason::Changed));
    assert_eq!(
        users[4].attributes.get("manager"),
        Some(&Value::Null),
        "a removed manager link clears the reference"
    );
    assert!(!users[5].attributes.contains_key("manager"));
    assert!(
        users[6].attributes.is_empty(),
        "annotations are not properties"
    );
}

#[tokio::test]
async fn duplicate_ids_in_a_page_stay_in_page_order_for_the_worker_to_fold() {
    // Graph may send the same user twice in a page (graph.md §7.7); the worker folds the
    // entries into the last one (`worker/src/pipeline.rs`), so the parser keeps them all.
    let graph = FakeGraph::start().await;
    let body = page(json!([
        {"id": "u1", "displayName": "Ada", "userPrincipalName": "ada@contoso.example"},
        {"id": "u2", "displayName": "Bo"},
        {"id": "u1", "jobTitle": "Analyst"},
        {"id": "u1", "@removed": {"reason": "changed"}},
        {"id": "u1", "displayName": "Ada again"}
    ]));
    let page = graph.users_page(&body).await.unwrap();
    let seen: Vec<(&str, Option<RemovedReason>)> = page
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.removed))
        .collect();
    assert_eq!(
        seen,
        [
            ("u1", None),
            ("u2", None),
            ("u1", None),
            ("u1", Some(RemovedReason::Changed)),
            ("u1", None)
        ]
    );
    assert_eq!(
        page.link,
        PageLink::Delta("http://g/v1.0/users/delta?$deltatoken=d".into())
    );
}

#[tokio::test]
async fn hostile_groups_pages_are_short_page_errors() {
    let graph = FakeGraph::start().await;
    let huge = "g".repeat(1 << 20);
    let group = |members: Value| {
        json!({"@odata.deltaLink": "d", "value": [{"id": "g1", "displayName": "Sales", "members@delta": members}]})
            .to_string()
            .into_bytes()
    };
    let user = "#microsoft.graph.user";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            br#"{"@odata.deltaLink":"d","value":[{"id":"g1""#.to_vec(),
            "eof",
        ),
        (
            "members not an array",
            group(json!(huge)),
            "members@delta is not an array",
        ),
        (
            "member a string",
            group(json!([huge])),
            "entry is not an object",
        ),
        (
            "member without a type",
            group(json!([{"id": "u1"}])),
            "without a string @odata.type",
        ),
        (
            "member without an id",
            group(json!([{"@odata.type": user}])),
            "usable id",
        ),
        (
            "member id huge",
            group(json!([{"@odata.type": user, "id": huge}])),
            "usable id",
        ),
        (
            "member id with a nul",
            group(json!([{"@odata.type": user, "id": "u\u{0}"}])),
            "nul character",
        ),
        (
            "member removed for an unknown reason",
            group(json!([{"@odata.type": user, "id": "u1", "@removed": {"reason": "changed"}}])),
            "unknown @removed reason",
        ),
        (
            "group removed for an unknown reason",
            br#"{"@odata.deltaLink":"d","value":[{"id":"g1","@removed":{"reason":"gone"}}]}"#
                .to_vec(),
            "unknown @removed reason",
        ),
    ];
    let url = format!("{}/v1.0/groups/delta", graph.url);
    for (name, body, expected) in cases {
        *graph.body.lock().unwrap() = body;
        let err = graph.client().groups_page(&url).await.unwrap_err();
        let CoordinatorError::GraphPage(message) = &err else {
            panic!("{name}: not a page error: {err}");
        };
        assert!(
            message.to_lowercase().contains(expected),
            "{name}: {message}"
        );
        assert!(
            err.to_string().chars().count() <= MAX_MESSAGE,
            "{name}: a message of {} chars",
            err.to_string().chars().count()
        );
    }
}

#[tokio::test]
async fn a_hostile_single_user_read_is_an_error_not_a_missing_user() {
    // "Provision on demand": garbage must not read as "no such user" (Ok(None)).
    let graph = FakeGraph::start().await;
    for body in [
        &b""[..],
        b"<html>sign in</html>",
        br#"{"id": 5, "displayName": "Ada"}"#,
        br#"{"id": "u1", "displayName": "A\u0000da"}"#,
        br#"[{"id": "u1"}]"#,
    ] {
        *graph.body.lock().unwrap() = body.to_vec();
        let got = graph.client().read_user("u1").await;
        assert!(
            matches!(got, Err(CoordinatorError::GraphPage(_))),
            "{}: {got:?}",
            String::from_utf8_lossy(body)
        );
    }
}
