//! Spans really leave the process over OTLP/HTTP when an endpoint is configured, and never
//! when export is off. An in-process receiver plays the collector; each case runs `init`
//! in a child process (see `common`) with its own `OTEL_*` variables.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{is_child, run_child};
use dirsync_telemetry::{Settings, init};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;

/// What the fake collector received: each request's headers and decoded body.
type Received = Arc<Mutex<Vec<(HeaderMap, ExportTraceServiceRequest)>>>;

/// A collector on a free port answering `POST /v1/traces` with 200.
async fn collector() -> (SocketAddr, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return StatusCode::BAD_REQUEST;
                };
                store.lock().unwrap().push((headers, request));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

fn string(value: &Option<AnyValue>) -> Option<&str> {
    match value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| string(&kv.value))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const SECRET: &str = "s3cr3t-collector-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_by_shutdown() {
    let (addr, received) = collector().await;
    let endpoint = format!("http://{addr}/v1/traces");
    let headers = format!("authorization=Bearer {SECRET}");
    let child = tokio::task::spawn_blocking(move || {
        run_child(
            "child_traces_one_span",
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_HEADERS", &headers),
                // Far beyond the test: only the flush at shutdown can have sent the span.
                ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment.name=test",
                ),
                ("DIRSYNC_LOG_FORMAT", "json"),
            ],
        )
    })
    .await
    .unwrap();

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1, "one export, at shutdown");
    let (headers, request) = &received[0];
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["authorization"], format!("Bearer {SECRET}"));
    let resource_spans = &request.resource_spans[0];
    let resource = &resource_spans.resource.as_ref().unwrap().attributes;
    assert_eq!(attribute(resource, "service.name"), Some("otlp-child"));
    assert_eq!(
        attribute(resource, "deployment.environment.name"),
        Some("test")
    );
    let spans: Vec<_> = resource_spans
        .scope_spans
        .iter()
        .flat_map(|s| &s.spans)
        .collect();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "batch.publish");
    assert_eq!(
        attribute(&spans[0].attributes, "messaging.system"),
        Some("rabbitmq")
    );

    // The log line written inside the span names the exported span.
    let line = child.line("inside the span");
    assert_eq!(line["trace_id"], hex(&spans[0].trace_id));
    assert_eq!(line["span_id"], hex(&spans[0].span_id));
    assert!(!child.stderr.contains(SECRET), "{}", child.stderr);
    assert_eq!(child.line("telemetry started")["otlp_traces"], true);
}

#[tokio::test]
#[ignore = "run in a child process by spans_reach_the_collector_by_shutdown"]
async fn child_traces_one_span() {
    if !is_child() {
        return;
    }
    let telemetry = init(Settings::from_env("otlp-child").unwrap()).unwrap();
    tracing::info_span!(
        "batch.publish",
        otel.kind = "producer",
        messaging.system = "rabbitmq"
    )
    .in_scope(|| tracing::info!("inside the span"));
    telemetry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_none_sends_nothing_even_with_an_endpoint() {
    let (addr, received) = collector().await;
    let endpoint = format!("http://{addr}");
    let child = tokio::task::spawn_blocking(move || {
        run_child(
            "child_traces_one_span",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_TRACES_EXPORTER", "none"),
                ("DIRSYNC_LOG_FORMAT", "json"),
            ],
        )
    })
    .await
    .unwrap();
    // The child has flushed and exited: whatever it would send has been sent.
    assert!(received.lock().unwrap().is_empty());
    // Spans still have ids, for the logs and the queue.
    let line = child.line("inside the span");
    assert_eq!(line["trace_id"].as_str().map(str::len), Some(32));
    assert_eq!(child.line("telemetry started")["otlp_traces"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_endpoint_gets_the_traces_path() {
    let (addr, received) = collector().await;
    let endpoint = format!("http://{addr}");
    tokio::task::spawn_blocking(move || {
        run_child(
            "child_traces_one_span",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_SERVICE_NAME", "worker-eu"),
            ],
        )
    })
    .await
    .unwrap();
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    let resource = &received[0].1.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name"),
        Some("worker-eu")
    );
}
