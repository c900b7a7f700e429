//! Injected trouble over HTTP: synchronization resets in their five wire forms, the RU token
//! bucket with its 429s and headers, and transient 503/504 answers.

use std::time::{Duration, Instant};

use dirsync_load_tests::graph_sim::{GraphSimConfig, ResetMode, UserState};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use serde_json::{Value, json};

use crate::harness::{Harness, spec};

/// A GET with `x-ms-throttle-priority: low` (as the coordinator sends): status, headers, body.
async fn get_low(h: &Harness, url: &str, token: &str) -> (StatusCode, HeaderMap, Value) {
    let response = h
        .http
        .get(url)
        .bearer_auth(token)
        .header("x-ms-throttle-priority", "low")
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn live(h: &Harness, tenant: &str) -> usize {
    h.sim
        .snapshot(tenant)
        .unwrap()
        .iter()
        .filter(|u| u.state == UserState::Live)
        .count()
}

fn assert_envelope(body: &Value) {
    let inner = &body["error"]["innerError"];
    for field in ["date", "request-id", "client-request-id"] {
        assert!(inner[field].is_string(), "{field} missing in {body}");
    }
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn a_reset_refuses_older_delta_links_in_each_documented_form() {
    let tenant = spec("reset", 15, 120);
    let h = Harness::start(GraphSimConfig::default(), std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let initial = h.url("/v1.0/users/delta?$select=displayName,mail");
    // (mode, status, error.code, Location, code nested two levels down)
    let cases = [
        (
            "gone_with_location",
            410,
            "resyncRequired",
            Some(h.url("/v1.0/users/delta?$select=displayName,mail&$deltatoken=")),
            None,
        ),
        ("gone_without_location", 410, "resyncRequired", None, None),
        ("sync_state_not_found", 400, "syncStateNotFound", None, None),
        (
            "sync_state_not_found_capitalised",
            410,
            "SyncStateNotFound",
            None,
            None,
        ),
        (
            "resync_required_nested",
            400,
            "badRequest",
            None,
            Some("resyncRequired"),
        ),
    ];
    for (i, (mode, status, code, location, nested)) in cases.into_iter().enumerate() {
        let (_, _, before) = h.round(&initial, &token, false).await;
        let reset = h
            .http
            .post(h.url("/_sim/tenants/reset/reset"))
            .json(&json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
        assert_eq!(reset.status(), StatusCode::NO_CONTENT, "{mode}");

        let (got_status, headers, body) = get_low(&h, &before, &token).await;
        assert_eq!(got_status.as_u16(), status, "{mode}: {body}");
        assert_eq!(body["error"]["code"], code, "{mode}");
        assert_envelope(&body);
        assert_eq!(
            header(&headers, LOCATION.as_str()),
            location.as_deref(),
            "{mode}"
        );
        assert_eq!(
            body["error"]["innerError"]["innerError"]["code"].as_str(),
            nested,
            "{mode}"
        );
        // Links issued after the reset work, and so does the Location.
        let (_, _, after) = h.round(&initial, &token, false).await;
        assert_eq!(
            get_low(&h, &after, &token).await.0,
            StatusCode::OK,
            "{mode}"
        );
        if let Some(location) = location {
            let (entries, _, _) = h.round(&location, &token, false).await;
            assert_eq!(entries.len(), live(&h, "reset"), "a full enumeration");
            assert!(entries[0].get("jobTitle").is_none(), "the $select is kept");
        }
        assert_eq!(
            h.sim.requests("reset").unwrap().reset_refusals,
            i as u64 + 1
        );
    }

    // The Rust API does the same; bad modes and unknown tenants are refused.
    let (_, _, before) = h.round(&initial, &token, false).await;
    h.sim
        .reset("reset", ResetMode::GoneWithoutLocation)
        .unwrap();
    assert_eq!(get_low(&h, &before, &token).await.0, StatusCode::GONE);
    assert!(h.sim.reset("nobody", ResetMode::SyncStateNotFound).is_err());
    let bad = h
        .http
        .post(h.url("/_sim/tenants/reset/reset"))
        .json(&json!({ "mode": "sometimes" }))
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error(), "{}", bad.status());
    let unknown = h
        .http
        .post(h.url("/_sim/tenants/nobody/reset"))
        .json(&json!({ "mode": "gone_with_location" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ru_bucket_throttles_with_decimal_retry_after_and_the_documented_headers() {
    let tenant = spec("throttle", 16, 60);
    let config = GraphSimConfig {
        page_size: 5,
        ru_budget_per_10s: Some(4),
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let mut url = h.url("/v1.0/users/delta");
    let started = Instant::now();
    for i in 0..4 {
        let (status, headers, body) = get_low(&h, &url, &token).await;
        assert_eq!(status, StatusCode::OK, "{i}: {body}");
        assert_eq!(header(&headers, "x-ms-resource-unit"), Some("1"));
        // Graph reports the use of the budget above 80 %.
        let percentage = header(&headers, "x-ms-throttle-limit-percentage");
        assert_eq!(percentage.is_some(), i >= 3, "{i}: {percentage:?}");
        url = body["@odata.nextLink"].as_str().unwrap().to_owned();
    }
    let (status, headers, body) = get_low(&h, &url, &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["code"], "429");
    assert_eq!(body["error"]["innerError"]["status"], "429");
    assert_envelope(&body);
    assert_eq!(
        header(&headers, "x-ms-throttle-information"),
        Some("ResourceUnitLimitExceeded")
    );
    assert_eq!(
        header(&headers, "x-ms-throttle-scope"),
        Some("Tenant_Application/ReadWrite/app-throttle/throttle")
    );
    assert_eq!(header(&headers, "x-ms-resource-unit"), Some("0"));
    // 4 RU per 10 s: one RU every 2.5 s, less the time spent so far; decimal seconds.
    let retry_after: f64 = header(&headers, RETRY_AFTER.as_str())
        .unwrap()
        .parse()
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        retry_after <= 2.5 && retry_after >= 2.5 - elapsed - 0.01,
        "{retry_after} after {elapsed}"
    );
    tokio::time::sleep(Duration::from_secs_f64(retry_after)).await;
    let (status, _, body) = get_low(&h, &url, &token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "waiting Retry-After is enough: {body}"
    );

    // Requests without the low-priority header are counted apart.
    let (status, _) = h.get(&h.url("/v1.0/users/delta"), &token, false).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let counts = h.sim.requests("throttle").unwrap();
    assert_eq!(
        (
            counts.delta_requests,
            counts.low_priority_requests,
            counts.throttled,
            counts.ru_charged,
            counts.delta_pages
        ),
        (7, 6, 2, 5, 5)
    );
}

#[tokio::test]
async fn the_documented_tier_budget_applies_when_throttling_is_on() {
    // A small tenant (S, < 50 users): 3,500 RU per 10 s, so request 3,501 in a burst is refused.
    let tenant = spec("tier", 17, 10);
    let config = GraphSimConfig {
        throttling: true,
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let url = h.url("/v1.0/users/delta?$deltatoken=latest");
    let started = Instant::now();
    let mut refused = None;
    for i in 0..50_000 {
        let (status, _) = h.get(&url, &token, false).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(i);
            break;
        }
    }
    // The bucket refills while the burst runs (350 RU/s), so that many more get through.
    let refused = refused.expect("the burst is throttled") as f64;
    let refill = 350.0 * started.elapsed().as_secs_f64();
    assert!(
        refused >= 3_500.0 && refused <= 3_500.0 + refill + 1.0,
        "refused request {refused} after a refill of {refill}"
    );
}

#[tokio::test]
async fn every_nth_delta_request_fails_transiently_with_503_then_504() {
    let tenant = spec("flaky", 18, 100);
    let config = GraphSimConfig {
        page_size: 10,
        fail_every: Some(3),
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let mut url = h.url("/v1.0/users/delta");
    let (mut statuses, mut entries) = (Vec::new(), 0);
    loop {
        let (status, headers, body) = get_low(&h, &url, &token).await;
        statuses.push(status.as_u16());
        assert_eq!(header(&headers, "x-ms-resource-unit"), Some("1"));
        match status.as_u16() {
            200 => {
                entries += body["value"].as_array().unwrap().len();
                match body["@odata.nextLink"].as_str() {
                    Some(next) => url = next.to_owned(),
                    None => break,
                }
            }
            503 => assert_eq!(body["error"]["code"], "serviceNotAvailable"),
            504 => assert_eq!(body["error"]["code"], "timeout"),
            other => panic!("unexpected {other}: {body}"),
        }
        if status != StatusCode::OK {
            assert_envelope(&body);
        }
    }
    assert_eq!(entries, live(&h, "flaky"));
    // Ten pages need fourteen requests: the 3rd, 6th, 9th and 12th fail.
    let faults: Vec<u16> = statuses.iter().copied().filter(|&s| s != 200).collect();
    assert_eq!(faults, [503, 504, 503, 504]);
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(*status != 200, (i + 1) % 3 == 0, "{statuses:?}");
    }
    let counts = h.sim.requests("flaky").unwrap();
    assert_eq!(
        (
            counts.transient_errors,
            counts.delta_pages,
            counts.delta_requests
        ),
        (4, 10, 14)
    );
}
