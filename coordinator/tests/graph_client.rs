//! The Graph client against a scripted fake Graph: throttling, pacing under the RU budget,
//! token refresh (early, short-lived, on 401 mid-walk), resync.

mod common;

use common::client;
use common::fake_graph::{PAGE, fake_graph, fake_graph_with_token_lifetime};

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use dirsync_coordinator::CoordinatorError;
use dirsync_coordinator::graph::{GraphClient, PageLink};

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

fn ok_page(
    headers: Vec<(&'static str, String)>,
) -> (StatusCode, Vec<(&'static str, String)>, String) {
    (StatusCode::OK, headers, PAGE.into())
}

/// Fetches `n` pages one after the other and says how long it took.
async fn fetch_pages(client: &GraphClient, url: &str, n: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        client
            .users_page(&format!("{url}/v1.0/users/delta"))
            .await
            .unwrap();
    }
    started.elapsed()
}

#[tokio::test]
async fn requests_beyond_the_budget_are_paced_to_it() {
    // 20 RU per 10 s: twenty requests at once, then one every 500 ms.
    let (url, calls) = fake_graph(|_| ok_page(vec![])).await;
    let client = client(&url).with_budget(20);
    let took = fetch_pages(&client, &url, 24).await;
    assert!(
        took >= Duration::from_millis(1_700),
        "4 requests over the budget take about 2 s: {took:?}"
    );
    assert_eq!(calls.pages.load(Ordering::SeqCst), 24);
    assert!(!client.pacer().is_cautious(), "graph reported no pressure");
}

#[tokio::test]
async fn far_below_the_budget_pacing_adds_no_delay() {
    // Evenly spaced, 50 requests at 100 RU per 10 s would take 5 s; the budget's burst
    // lets them through at once. The default budget (8,000) is further still.
    let (url, _) = fake_graph(|_| ok_page(vec![])).await;
    let near = client(&url).with_budget(100);
    fetch_pages(&near, &url, 50).await;
    assert_eq!(near.pacer().delayed(), 0, "the burst covers 50 requests");
    let (url, calls) = fake_graph(|_| ok_page(vec![])).await;
    let far = client(&url);
    fetch_pages(&far, &url, 50).await;
    assert_eq!(far.pacer().delayed(), 0);
    assert_eq!(calls.pages.load(Ordering::SeqCst), 50);
}

#[tokio::test]
async fn a_high_limit_percentage_halves_the_rate() {
    // Budget 100 RU per 10 s: ten requests fit the burst. Told it is at 90 % of the budget,
    // the client goes at half rate without burst, one request per 200 ms.
    let (calm, _) =
        fake_graph(|_| ok_page(vec![("x-ms-throttle-limit-percentage", "0.5".into())])).await;
    let (busy, _) =
        fake_graph(|_| ok_page(vec![("x-ms-throttle-limit-percentage", "0.9".into())])).await;
    let calm_client = client(&calm).with_budget(100);
    let calm_took = fetch_pages(&calm_client, &calm, 10).await;
    let busy_client = client(&busy).with_budget(100);
    let busy_took = fetch_pages(&busy_client, &busy, 10).await;
    assert_eq!(
        calm_client.pacer().delayed(),
        0,
        "calm: no request waited ({calm_took:?})"
    );
    assert!(!calm_client.pacer().is_cautious());
    assert!(
        busy_took >= Duration::from_millis(1_200),
        "eight paced requests take about 1.6 s: {busy_took:?}"
    );
    assert!(busy_client.pacer().is_cautious());
}

#[tokio::test]
async fn a_429_makes_the_client_cautious() {
    let (url, _) = fake_graph(|n| match n {
        0 => (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "0.05".into())],
            "{}".into(),
        ),
        _ => ok_page(vec![]),
    })
    .await;
    let client = client(&url);
    assert!(!client.pacer().is_cautious());
    fetch_pages(&client, &url, 1).await;
    assert!(client.pacer().is_cautious());
}

#[tokio::test]
async fn clients_of_one_app_and_tenant_share_the_budget() {
    // A new client (a new run) starts with the bucket the previous one drained.
    let (url, _) = fake_graph(|_| ok_page(vec![])).await;
    fetch_pages(&client(&url).with_budget(20), &url, 20).await;
    let took = fetch_pages(&client(&url).with_budget(20), &url, 3).await;
    assert!(took >= Duration::from_millis(1_000), "{took:?}");
}

#[tokio::test]
async fn a_token_shorter_than_the_refresh_margin_is_used_for_half_its_life() {
    let (url, calls) = fake_graph_with_token_lifetime(2, Arc::new(|_: u32| ok_page(vec![]))).await;
    let client = client(&url);
    fetch_pages(&client, &url, 3).await;
    assert_eq!(calls.tokens.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    fetch_pages(&client, &url, 2).await;
    assert_eq!(calls.tokens.load(Ordering::SeqCst), 2);
    assert_eq!(calls.pages.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_token_without_lifetime_is_fetched_per_request_and_pages_still_come() {
    let (url, calls) = fake_graph_with_token_lifetime(0, Arc::new(|_: u32| ok_page(vec![]))).await;
    fetch_pages(&client(&url), &url, 3).await;
    assert_eq!(calls.tokens.load(Ordering::SeqCst), 3);
    assert_eq!(calls.pages.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_token_revoked_mid_walk_is_replaced_and_the_walk_goes_on_from_its_page() {
    // Five pages chained by `$skiptoken`; the token in use is revoked while the walk is on
    // page 2, so the fake accepts only the newest token from then on.
    #[derive(Default)]
    struct Walk {
        tokens: u32,
        /// (skiptoken, bearer token) of every delta request, in order.
        requests: Vec<(u32, String)>,
    }
    let walk = Arc::new(Mutex::new(Walk::default()));
    let (w1, w2) = (walk.clone(), walk.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let base = url.clone();
    let app = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(move || async move {
                let mut walk = w1.lock().unwrap();
                walk.tokens += 1;
                axum::Json(serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("t{}", walk.tokens)}))
            }),
        )
        .route(
            "/v1.0/users/delta",
            get(move |Query(query): Query<HashMap<String, String>>, headers: HeaderMap| async move {
                let skip: u32 = query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
                let bearer = headers["authorization"].to_str().unwrap().trim_start_matches("Bearer ").to_string();
                let mut walk = w2.lock().unwrap();
                walk.requests.push((skip, bearer.clone()));
                let revoked = skip >= 2 && bearer == "t1";
                if revoked {
                    return (StatusCode::UNAUTHORIZED, r#"{"error":{"code":"InvalidAuthenticationToken"}}"#.to_string());
                }
                let link = if skip < 4 {
                    format!(r#""@odata.nextLink":"{base}/v1.0/users/delta?$skiptoken={}""#, skip + 1)
                } else {
                    format!(r#""@odata.deltaLink":"{base}/v1.0/users/delta?$deltatoken=d""#)
                };
                (StatusCode::OK, format!(r#"{{{link},"value":[{{"id":"u{skip}"}}]}}"#))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = client(&url);
    let mut next = client.initial_users_url();
    let mut users = Vec::new();
    loop {
        let page = client.users_page(&next).await.unwrap();
        users.extend(page.users.into_iter().map(|u| u.id));
        match page.link {
            PageLink::Next(link) => next = link,
            PageLink::Delta(_) => break,
        }
    }
    assert_eq!(users, ["u0", "u1", "u2", "u3", "u4"]);
    let walk = walk.lock().unwrap();
    assert_eq!(walk.tokens, 2, "one refresh");
    let pages: Vec<u32> = walk.requests.iter().map(|(skip, _)| *skip).collect();
    assert_eq!(pages, [0, 1, 2, 2, 3, 4], "page 2 asked again, not page 0");
    assert_eq!(walk.requests[3].1, "t2");
}

#[test]
fn a_targeted_read_names_at_most_fifty_ids_as_odata_literals() {
    let graph = client("http://graph.test");
    let ids: Vec<String> = vec!["a".into(), "o'brien".into()];
    let url = url::Url::parse(&graph.users_by_id_url(&ids).unwrap()).unwrap();
    assert_eq!(url.path(), "/v1.0/users/delta");
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["$filter"], "id eq 'a' or id eq 'o''brien'");
    assert!(query["$select"].contains("userPrincipalName"));
    let fifty: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert!(graph.users_by_id_url(&fifty).is_ok());
    let too_many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
    assert!(matches!(
        graph.users_by_id_url(&too_many),
        Err(CoordinatorError::Invalid(_))
    ));
    assert!(graph.users_by_id_url(&[]).is_err());
}
