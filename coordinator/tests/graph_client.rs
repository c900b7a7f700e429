//! The Graph client against a scripted fake Graph: throttling, token refresh, resync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use secrecy::SecretString;

use dirsync_coordinator::graph::{GraphClient, PageLink};
use dirsync_coordinator::{CoordinatorError, Tenant};
use dirsync_proto::TenantId;

#[derive(Default)]
struct Calls {
    tokens: AtomicU32,
    pages: AtomicU32,
}

/// Serves a token endpoint and a `users/delta` whose answer for call `n` is `script(n)`.
async fn fake_graph(
    script: impl Fn(u32) -> (StatusCode, Vec<(&'static str, String)>, String) + Send + Sync + 'static,
) -> (String, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let script = Arc::new(script);
    let (c1, c2) = (calls.clone(), calls.clone());
    let app = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(move || async move {
                let n = c1.tokens.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("t{n}")}))
            }),
        )
        .route(
            "/v1.0/users/delta",
            get(move || async move {
                let n = c2.pages.fetch_add(1, Ordering::SeqCst);
                let (status, headers, body) = script(n);
                let mut response = (status, body).into_response();
                for (k, v) in headers {
                    response.headers_mut().insert(k, v.parse().unwrap());
                }
                response
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn client(url: &str) -> GraphClient {
    let tenant = Tenant {
        id: TenantId::new(),
        name: "t".into(),
        graph_tenant_id: "contoso".into(),
        graph_login_url: url.into(),
        graph_base_url: url.into(),
        client_id: "app".into(),
        client_secret: SecretString::from("s3cret"),
        scim_base_url: "http://unused/v2".into(),
        status: "NotRun".into(),
        delta_link: None,
    };
    GraphClient::new(reqwest::Client::new(), &tenant)
}

const PAGE: &str =
    r#"{"@odata.deltaLink":"http://x/v1.0/users/delta?$deltatoken=d1","value":[{"id":"u1"}]}"#;

#[tokio::test]
async fn throttling_honours_decimal_retry_after_then_succeeds() {
    let (url, calls) = fake_graph(|n| match n {
        0 | 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "0.3".into())],
            "{}".into(),
        ),
        _ => (StatusCode::OK, vec![], PAGE.into()),
    })
    .await;
    let started = Instant::now();
    let page = client(&url)
        .users_page(&format!("{url}/v1.0/users/delta"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(calls.pages.load(Ordering::SeqCst), 3);
    assert!(matches!(page.link, PageLink::Delta(_)));
}

#[tokio::test]
async fn a_server_that_always_throttles_is_given_up_on() {
    let (url, calls) = fake_graph(|_| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "0.01".into())],
            "{}".into(),
        )
    })
    .await;
    let client = client(&url).with_retries(Duration::from_millis(1), Duration::from_millis(5), 4);
    let err = client
        .users_page(&format!("{url}/v1.0/users/delta"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CoordinatorError::GraphStatus { status: 429, .. }),
        "{err}"
    );
    assert_eq!(
        calls.pages.load(Ordering::SeqCst),
        5,
        "one try and four retries, then stop"
    );
}

#[tokio::test]
async fn an_unauthorized_answer_fetches_a_new_token_once() {
    let (url, calls) = fake_graph(|n| match n {
        0 => (
            StatusCode::UNAUTHORIZED,
            vec![],
            r#"{"error":{"code":"InvalidAuthenticationToken"}}"#.into(),
        ),
        _ => (StatusCode::OK, vec![], PAGE.into()),
    })
    .await;
    client(&url)
        .users_page(&format!("{url}/v1.0/users/delta"))
        .await
        .unwrap();
    assert_eq!(calls.tokens.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_expired_delta_token_asks_for_a_resync_without_retrying() {
    let (url, calls) = fake_graph(|_| {
        (
            StatusCode::BAD_REQUEST,
            vec![],
            r#"{"error":{"code":"syncStateNotFound","message":"expired"}}"#.into(),
        )
    })
    .await;
    let err = client(&url)
        .users_page(&format!("{url}/v1.0/users/delta"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoordinatorError::ResyncRequired(_)), "{err}");
    assert_eq!(calls.pages.load(Ordering::SeqCst), 1);
}
