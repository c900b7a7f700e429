//! A scripted fake Graph on loopback: a token endpoint and a `users/delta` whose answer to
//! call `n` is `script(n)`, with the calls counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// Calls the fake Graph has answered.
#[derive(Default)]
pub struct Calls {
    pub tokens: AtomicU32,
    pub pages: AtomicU32,
}

/// The answer to the `n`-th `users/delta` call: status, headers, body.
pub type Script = dyn Fn(u32) -> (StatusCode, Vec<(&'static str, String)>, String) + Send + Sync;

/// A delta page of one user that ends the walk.
pub const PAGE: &str =
    r#"{"@odata.deltaLink":"http://x/v1.0/users/delta?$deltatoken=d1","value":[{"id":"u1"}]}"#;

/// Serves a token endpoint and a `users/delta` whose answer for call `n` is `script(n)`.
pub async fn fake_graph(
    script: impl Fn(u32) -> (StatusCode, Vec<(&'static str, String)>, String) + Send + Sync + 'static,
) -> (String, Arc<Calls>) {
    fake_graph_with_token_lifetime(3599, Arc::new(script)).await
}

/// [`fake_graph`] whose tokens say they expire in `expires_in` seconds.
pub async fn fake_graph_with_token_lifetime(
    expires_in: u64,
    script: Arc<Script>,
) -> (String, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let (c1, c2) = (calls.clone(), calls.clone());
    let app = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(move || async move {
                let n = c1.tokens.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": format!("t{n}")}))
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
