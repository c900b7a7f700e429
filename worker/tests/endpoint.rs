//! A worker process's HTTP endpoint as `dirsync-worker` runs it: telemetry started
//! (`dirsync_telemetry::init`, global, hence a test binary of its own), the worker run by
//! `run_with_metrics` against real PostgreSQL, Redis and RabbitMQ; `/readyz` turns 200 once
//! connected, and `/metrics` shows the batch the worker processed.

#[path = "integration/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "integration/fake_scim.rs"]
#[allow(dead_code)]
mod fake_scim;
#[path = "integration/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::Duration;

use dirsync_telemetry::{LogFormat, RateLimit, Settings};
use dirsync_worker::{HttpAddr, WorkerConfig};
use lapin::types::ShortString;
use lapin::{Connection, ConnectionProperties};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use common::{TestDb, TopologyGuard, amqp_url, redis_url, secrets_key, unique_topology};
use fake_scim::{FakeScim, TOKEN};
use harness::{batch, next_event, publish_raw, results_consumer, user};

/// A port free a moment ago. Should another process take it first, the worker moves to a
/// port of its own and this test cannot find it: it fails, loudly, instead of passing.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// GETs `url` until `done` accepts the answer (status, body), at most 30 s.
async fn poll(url: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let mut last = (0, String::new());
    for _ in 0..300 {
        if let Ok(response) = reqwest::get(url).await {
            let status = response.status().as_u16();
            last = (status, response.text().await.unwrap_or_default());
            if done(last.0, &last.1) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered as expected; last answer {last:?}");
}

/// The value of the first series of the scrape starting with `prefix` and holding `labels`.
fn value(scrape: &str, prefix: &str, labels: &[&str]) -> Option<String> {
    scrape
        .lines()
        .find(|l| l.starts_with(prefix) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_probes_and_the_scrape() {
    let telemetry = dirsync_telemetry::init(Settings {
        service_name: "dirsync-worker-test",
        log_format: LogFormat::Json,
        default_filter: "warn".into(),
        log_filter: None,
        rate_limit: RateLimit::default(),
    })
    .unwrap();
    let db = TestDb::new().await;
    let fake = FakeScim::start().await;
    let topology = unique_topology();
    let (tenant, run) = db.seed(&fake.base_url, TOKEN, false).await;
    let _guard = TopologyGuard {
        topology: topology.clone(),
        runs: vec![run],
    };
    let port = free_port();
    let config = WorkerConfig {
        amqp_url: amqp_url(),
        database_url: db.url(),
        redis_url: redis_url(),
        prefix: topology.prefix().to_string(),
        delivery_limit: topology.delivery_limit(),
        prefetch: 2,
        priority_prefetch: 1,
        scim_concurrency: 2,
        scim_rate_per_org: 0.0,
        scim_burst_per_org: 10,
        secrets_key: Some(secrets_key()),
        http_addr: HttpAddr(Some(([127, 0, 0, 1], port).into())),
        // The SCIM server of the test is on the loopback interface.
        allowed_hosts: vec!["127.0.0.1".into()],
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dirsync_worker::run_with_metrics(
        config,
        shutdown.clone(),
        Some(telemetry.metrics_handle()),
    ));
    let base = format!("http://127.0.0.1:{port}");

    let (_, ready) = poll(&format!("{base}/readyz"), |status, _| status == 200).await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(
        ready,
        json!({"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "broker": "ok"}})
    );
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let amqp = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let mut events = results_consumer(&channel, &topology, run).await;
    let message = batch(
        tenant,
        run,
        0,
        vec![user(
            "e-ada",
            json!({"userPrincipalName": "ada@x.com", "displayName": "Ada", "accountEnabled": true}),
        )],
    );
    publish_raw(&channel, &topology, &message.encode()).await;
    assert_eq!(next_event(&mut events).await.counts.synced, 1);

    // The delivery is counted when it is acked, just after its result event.
    let processed = (
        "dirsync_batches_processed_total{",
        [r#"kind="users""#, r#"outcome="ok""#],
    );
    let (_, scrape) = poll(&format!("{base}/metrics"), |status, body| {
        status == 200 && value(body, processed.0, &processed.1).is_some()
    })
    .await;
    let series = |prefix: &str, labels: &[&str]| value(&scrape, prefix, labels);
    assert_eq!(
        series(processed.0, &processed.1).as_deref(),
        Some("1"),
        "{scrape}"
    );
    assert_eq!(
        series(
            "dirsync_objects_total{",
            &[r#"action="create""#, r#"outcome="synced""#]
        )
        .as_deref(),
        Some("1"),
        "{scrape}"
    );
    assert_eq!(
        series(
            "http_client_request_duration_seconds_count{",
            &[
                r#"http_request_method="POST""#,
                r#"http_response_status_code="201""#
            ]
        )
        .as_deref(),
        Some("1"),
        "{scrape}"
    );
    assert!(
        !scrape.contains(&tenant.to_string()) && !scrape.contains(TOKEN),
        "no ids or secrets in the scrape"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the endpoint stops with the worker"
    );
    let _ = amqp.close(200, ShortString::from("done")).await;
    telemetry.shutdown().await;
}
