//! `GraphClient::groups_page` against a fake Graph: the initial URL selects members, a walk
//! over sliced pages folds into per-group state, and throttling, 401 and resync signals are
//! handled as for users.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use dirsync_coordinator::CoordinatorError;
use dirsync_coordinator::graph::groups::{GroupsDelta, MemberKind};
use dirsync_coordinator::graph::{GraphClient, PageLink};

#[derive(Default)]
struct Calls {
    tokens: AtomicU32,
    pages: AtomicU32,
    queries: Mutex<Vec<String>>,
}

type Answer = (StatusCode, Vec<(&'static str, String)>, String);

/// A token endpoint and a `groups/delta` whose answer for call `n` is `script(n, base_url)`.
async fn fake_graph(
    script: impl Fn(u32, &str) -> Answer + Send + Sync + 'static,
) -> (String, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (c1, c2) = (calls.clone(), calls.clone());
    let base = url.clone();
    let script = Arc::new(script);
    let app = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(move || async move {
                let n = c1.tokens.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("t{n}")}))
            }),
        )
        .route(
            "/v1.0/groups/delta",
            get(move |RawQuery(query): RawQuery| {
                let (calls, script, base) = (c2.clone(), script.clone(), base.clone());
                async move {
                    calls.queries.lock().unwrap().push(query.unwrap_or_default());
                    let n = calls.pages.fetch_add(1, Ordering::SeqCst);
                    let (status, headers, body) = script(n, &base);
                    let mut response = (status, body).into_response();
                    for (k, v) in headers {
                        response.headers_mut().insert(k, v.parse().unwrap());
                    }
                    response
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn client(url: &str) -> GraphClient {
    common::client(url).with_retries(Duration::from_millis(1), Duration::from_millis(20), 4)
}

fn user(id: &str) -> serde_json::Value {
    json!({"@odata.type": "#microsoft.graph.user", "id": id})
}

/// Three pages: a large group's first slice, an empty page, the same group's second slice
/// with a removal and another group, then the deltaLink.
fn sliced_walk(n: u32, base: &str) -> Answer {
    let body = match n {
        0 => json!({
            "@odata.nextLink": format!("{base}/v1.0/groups/delta?$skiptoken=s1"),
            "value": [{"id": "g1", "displayName": "Big", "securityEnabled": true,
                       "members@delta": [user("u1"), user("u2"), user("u3")]}]
        }),
        1 => json!({
            "@odata.nextLink": format!("{base}/v1.0/groups/delta?$skiptoken=s2"),
            "value": []
        }),
        _ => json!({
            "@odata.deltaLink": format!("{base}/v1.0/groups/delta?$deltatoken=d1"),
            "value": [
                {"id": "g1", "members@delta": [
                    {"@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": {"reason": "deleted"}},
                    {"@odata.type": "#microsoft.graph.group", "id": "g2"},
                    {"@odata.type": "#microsoft.graph.device", "id": "d1"}
                ]},
                {"id": "g2", "displayName": "Small"}
            ]
        }),
    };
    (StatusCode::OK, vec![], body.to_string())
}

#[tokio::test]
async fn a_sliced_walk_folds_into_per_group_state() {
    let (url, calls) = fake_graph(sliced_walk).await;
    let client = client(&url);
    let initial = client.initial_groups_url();
    assert_eq!(
        initial,
        format!(
            "{url}/v1.0/groups/delta?$select=id,displayName,description,securityEnabled,mailNickname,members"
        )
    );
    let mut delta = GroupsDelta::new();
    let mut next = initial;
    let delta_link = loop {
        let page = client.groups_page(&next).await.unwrap();
        match delta.apply(page) {
            PageLink::Next(link) => next = link,
            PageLink::Delta(link) => break link,
        }
    };
    assert_eq!(
        delta_link,
        format!("{url}/v1.0/groups/delta?$deltatoken=d1")
    );
    let queries = calls.queries.lock().unwrap().clone();
    assert_eq!(
        queries,
        vec![
            "$select=id,displayName,description,securityEnabled,mailNickname,members".to_string(),
            "$skiptoken=s1".into(),
            "$skiptoken=s2".into(),
        ],
        "links are followed verbatim"
    );
    let g1 = delta.get("g1").unwrap();
    let members: Vec<(&str, MemberKind, bool)> = g1
        .members
        .iter()
        .map(|(id, m)| (id.as_str(), m.kind, m.present))
        .collect();
    assert_eq!(
        members,
        vec![
            ("g2", MemberKind::Group, true),
            ("u1", MemberKind::User, true),
            ("u2", MemberKind::User, false),
            ("u3", MemberKind::User, true),
        ]
    );
    assert_eq!(g1.display_name(), Some(Some("Big")));
    assert_eq!(delta.get("g2").unwrap().display_name(), Some(Some("Small")));
    assert_eq!(delta.ignored_members(), 1);
    assert_eq!(
        calls.tokens.load(Ordering::SeqCst),
        1,
        "one token for the walk"
    );
}

#[tokio::test]
async fn throttling_and_an_expired_token_are_retried() {
    let (url, calls) = fake_graph(|n, base| match n {
        0 => (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "0.05".into())],
            r#"{"error":{"code":"TooManyRequests"}}"#.into(),
        ),
        1 => (
            StatusCode::UNAUTHORIZED,
            vec![],
            r#"{"error":{"code":"InvalidAuthenticationToken"}}"#.into(),
        ),
        _ => sliced_walk(2, base),
    })
    .await;
    let client = client(&url);
    let page = client
        .groups_page(&client.initial_groups_url())
        .await
        .unwrap();
    assert_eq!(page.groups.len(), 2);
    assert_eq!(calls.pages.load(Ordering::SeqCst), 3);
    assert_eq!(
        calls.tokens.load(Ordering::SeqCst),
        2,
        "a new token after the 401"
    );
}

#[tokio::test]
async fn resync_and_malformed_pages_are_errors() {
    let (url, calls) = fake_graph(|n, _| match n {
        0 => (
            StatusCode::GONE,
            vec![],
            r#"{"error":{"code":"resyncRequired"}}"#.into(),
        ),
        _ => (
            StatusCode::OK,
            vec![],
            r#"{"@odata.deltaLink":"d","value":[{"id":"g1","members@delta":[{"id":"u1"}]}]}"#
                .into(),
        ),
    })
    .await;
    let client = client(&url);
    let err = client
        .groups_page(&client.initial_groups_url())
        .await
        .unwrap_err();
    assert!(matches!(err, CoordinatorError::ResyncRequired(_)), "{err}");
    let err = client
        .groups_page(&client.initial_groups_url())
        .await
        .unwrap_err();
    assert!(matches!(err, CoordinatorError::GraphPage(_)), "{err}");
    assert_eq!(calls.pages.load(Ordering::SeqCst), 2, "neither is retried");
}
