//! The worker's spans and probes: a delivery carrying W3C trace context is processed in a
//! `batch` span that continues the publisher's trace, with the SCIM requests (HTTP client
//! conventions, retry attempt numbers) and the record step under it; `/readyz` names the
//! dependency that fails.

use std::collections::HashMap;
use std::time::Duration;

use dirsync_telemetry::testing::TestTelemetry;
use dirsync_worker::WorkerSettings;
use dirsync_worker::http::{BrokerStatus, Readiness, router};
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::SpanData;
use serde_json::json;

use crate::common::{TestDb, TopologyGuard, amqp_url, redis, unique_topology};
use crate::fake_scim::{FakeScim, TOKEN};
use crate::harness::{RunningWorker, batch, next_event, results_consumer, user};

/// The publisher's span, as the coordinator's `publish` span would put it in the headers.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn attributes(span: &SpanData) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

#[tokio::test]
async fn a_batch_continues_the_publishers_trace() {
    let telemetry = TestTelemetry::new("worker");
    // A current-thread runtime: the worker's tasks run on this thread, under this subscriber.
    let _subscriber = telemetry.set_default();
    let db = TestDb::new().await;
    let fake = FakeScim::start().await;
    let topology = unique_topology();
    let (tenant, run) = db.seed(&fake.base_url, TOKEN, false).await;
    let _guard = TopologyGuard {
        topology: topology.clone(),
        runs: vec![run],
    };
    fake.state
        .lock()
        .unwrap()
        .throttle_once
        .insert("ada@x.com".into());
    let worker = RunningWorker::start(db.pool.clone(), &topology, WorkerSettings::default()).await;
    let mut events = results_consumer(&worker.channel, &topology, run).await;

    let message = batch(
        tenant,
        run,
        7,
        vec![user(
            "e-ada",
            json!({"userPrincipalName": "ada@x.com", "displayName": "Ada", "accountEnabled": true}),
        )],
    );
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from("traceparent"),
        AMQPValue::LongString(LongString::from(format!(
            "00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
        ))),
    );
    worker
        .channel
        .basic_publish(
            ShortString::from(""),
            ShortString::from(topology.batch_queue()),
            BasicPublishOptions::default(),
            &message.encode(),
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(next_event(&mut events).await.seq, 7);
    // The batch span ends once the delivery is acked, just after the result event.
    let batch_name = "batch";
    let mut spans = Vec::new();
    for _ in 0..300 {
        spans = telemetry.spans();
        if spans.iter().any(|s| s.name == batch_name) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(worker.stop().await, 0);

    let processed = spans
        .iter()
        .find(|s| s.name == batch_name)
        .unwrap_or_else(|| panic!("a {batch_name:?} span in {spans:#?}"));
    assert_eq!(processed.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(processed.parent_span_id.to_string(), PARENT_SPAN_ID);
    assert!(processed.parent_span_is_remote);
    assert_eq!(processed.span_kind, SpanKind::Consumer);
    let attrs = attributes(processed);
    let expected = [
        ("tenant_id", tenant.to_string()),
        ("run_id", run.to_string()),
        ("seq", "7".to_string()),
        ("users", "1".to_string()),
        ("dry_run", "false".to_string()),
        ("messaging.system", "rabbitmq".to_string()),
        ("messaging.operation.type", "process".to_string()),
        ("messaging.destination.name", topology.batch_queue()),
    ];
    for (key, value) in expected {
        assert_eq!(attrs.get(key), Some(&value), "{key} in {attrs:#?}");
    }
    let batch_span = processed.span_context.span_id();

    let children: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id().to_string() == TRACE_ID && s.name != batch_name)
        .collect();
    let record = children
        .iter()
        .find(|s| s.name == "record")
        .expect("a record span");
    assert_eq!(record.parent_span_id, batch_span);
    assert_eq!(attributes(record).get("seq").map(String::as_str), Some("7"));
    assert_eq!(
        attributes(record).get("tenant_id"),
        Some(&tenant.to_string())
    );

    // The create was throttled once: two attempts of one request, numbered 0 and 1.
    let creates: Vec<HashMap<String, String>> = children
        .iter()
        .filter(|s| s.name == "scim_request")
        .map(|s| {
            assert_eq!(s.span_kind, SpanKind::Client);
            assert_ne!(s.parent_span_id, SpanId::INVALID);
            attributes(s)
        })
        .filter(|a| a["http.request.method"] == "POST" && a["url.template"] == "/Users")
        .collect();
    let answers: Vec<(&str, &str)> = creates
        .iter()
        .map(|a| {
            (
                a["http.request.resend_count"].as_str(),
                a["http.response.status_code"].as_str(),
            )
        })
        .collect();
    assert_eq!(answers, [("0", "429"), ("1", "201")], "{creates:#?}");
    assert_eq!(creates[0]["http.request.method"], "POST");
    assert_eq!(creates[0]["error.type"], "429");
    assert_eq!(creates[0]["url.template"], "/Users");
    assert!(!creates[1].contains_key("error.type"));
    for attrs in &creates {
        assert!(
            attrs.values().all(|v| !v.contains(TOKEN)),
            "no token in {attrs:?}"
        );
    }
}

#[tokio::test]
async fn readiness_names_the_dependency_that_fails() {
    let db = TestDb::new().await;
    let amqp = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let open = amqp.create_channel().await.unwrap();
    let closed = amqp.create_channel().await.unwrap();
    closed.close(200, ShortString::from("done")).await.unwrap();

    let serve = |readiness: Readiness| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router(None, readiness))
                .await
                .unwrap();
        });
        let response = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };

    let healthy = Readiness::default();
    let broker = BrokerStatus::new(&amqp, vec![open.clone()]);
    healthy.connected(db.pool.clone(), redis().await, broker);
    let (status, body) = serve(healthy).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "broker": "ok"}})
    );

    // A database nobody listens on, and one of the worker's channels closed.
    let unreachable = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://root@127.0.0.1:1/none")
        .unwrap();
    let broken = Readiness::default();
    let broker = BrokerStatus::new(&amqp, vec![open, closed]);
    broken.connected(unreachable, redis().await, broker);
    let (status, body) = serve(broken).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        json!({"status": "not_ready", "checks": {"postgres": "failed", "redis": "ok", "broker": "failed"}})
    );
    let _ = amqp.close(200, ShortString::from("done")).await;
}
