//! The Graph client with the budget of its app registration as a whole, shared through
//! Redis (127.0.0.1:6379, a key prefix per test, removed at the end): every request takes a
//! slot, only a 429 naming the application pauses the app for every coordinator, and a dead
//! Redis stops nothing.

mod common;

use common::client;
use common::fake_graph::{Calls, PAGE};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;

use dirsync_coordinator::CoordinatorError;
use dirsync_coordinator::graph::app_budget::{AppBudget, AppRate};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The client id of [`common::client`]'s tenant.
const APP: &str = "app";

/// A fake Graph whose `users/delta` always answers `status` with `headers` (a page when
/// `status` is a success); its URL and its calls.
async fn fake_graph(
    status: StatusCode,
    headers: Vec<(&'static str, &'static str)>,
) -> (String, Arc<Calls>) {
    common::fake_graph::fake_graph(move |_| {
        let body = if status.is_success() { PAGE } else { "{}" };
        let headers = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        (status, headers, body.to_owned())
    })
    .await
}

/// A key prefix of one test's own.
fn prefix(test: &str) -> String {
    format!(
        "dirsync-test-graph-app-budget-{test}-{}",
        uuid::Uuid::new_v4()
    )
}

#[tokio::test]
async fn every_request_takes_a_slot_of_the_app_budget() {
    // One request per 100 s with a burst of 3: the client's three pages go at once and
    // spend the burst, so another coordinator's next request gets the first slot after it.
    let prefix = prefix("slots");
    let rate = AppRate {
        per_second: 0.01,
        burst: 3,
    };
    let ours = AppBudget::new(REDIS_URL, &prefix, rate).unwrap();
    let theirs = AppBudget::new(REDIS_URL, &prefix, rate).unwrap();
    let (url, calls) = fake_graph(StatusCode::OK, vec![]).await;
    let client = client(&url).with_app_budget(Some(ours.clone()));
    for _ in 0..3 {
        client
            .users_page(&format!("{url}/v1.0/users/delta"))
            .await
            .unwrap();
    }
    assert_eq!(calls.pages.load(Ordering::SeqCst), 3);
    assert_eq!(ours.delayed(), 0, "within the burst");
    let wait = theirs.reserve(APP).await.unwrap();
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(100),
        "the burst is spent: {wait:?}"
    );
    ours.forget(APP).await.unwrap();
}

#[tokio::test]
async fn only_a_429_naming_the_application_pauses_the_app_for_every_coordinator() {
    // (x-ms-throttle-scope, whether the app is paused)
    let cases = [
        (Some("Application/Read/app/contoso"), true),
        (Some("Tenant_Application/Read/app/contoso"), false),
        (Some("Tenant/ReadWrite/app/contoso"), false),
        (None, false),
    ];
    for (scope, paused) in cases {
        let prefix = prefix("pause");
        let rate = AppRate::per_second(1_000.0).unwrap();
        let ours = AppBudget::new(REDIS_URL, &prefix, rate).unwrap();
        let theirs = AppBudget::new(REDIS_URL, &prefix, rate).unwrap();
        let mut headers = vec![("retry-after", "90")];
        headers.extend(scope.map(|s| ("x-ms-throttle-scope", s)));
        let (url, _) = fake_graph(StatusCode::TOO_MANY_REQUESTS, headers).await;
        // No retries: the answer comes back at once instead of after 90 s.
        let client = client(&url)
            .with_retries(Duration::from_millis(1), Duration::from_millis(1), 0)
            .with_app_budget(Some(ours.clone()));
        let err = client
            .users_page(&format!("{url}/v1.0/users/delta"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CoordinatorError::GraphStatus { status: 429, .. }),
            "{err}"
        );
        let wait = theirs.reserve(APP).await.unwrap();
        if paused {
            assert!(
                wait > Duration::from_secs(60) && wait <= Duration::from_secs(90),
                "{scope:?}: {wait:?}"
            );
        } else {
            assert_eq!(wait, Duration::ZERO, "{scope:?}");
        }
        ours.forget(APP).await.unwrap();
    }
}

#[tokio::test]
async fn a_dead_redis_stops_nothing() {
    // Nothing listens on port 1.
    let budget = AppBudget::new(
        "redis://127.0.0.1:1",
        &prefix("dead"),
        AppRate::per_second(0.01).unwrap(),
    )
    .unwrap();
    let (url, calls) = fake_graph(StatusCode::OK, vec![]).await;
    let client = client(&url).with_app_budget(Some(budget.clone()));
    for _ in 0..5 {
        client
            .users_page(&format!("{url}/v1.0/users/delta"))
            .await
            .unwrap();
    }
    assert_eq!(calls.pages.load(Ordering::SeqCst), 5);
    assert!(budget.is_failing());
    assert_eq!(budget.delayed(), 0, "unmetered, not held to one per 100 s");
}
