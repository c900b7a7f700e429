//! One sync run as a trace: the coordinator's run, its Graph pages and the publish of each
//! batch, and each worker's processing of that batch with its SCIM requests and record
//! step, all in one trace, the worker's batch span a child of the coordinator's publish span
//! (the W3C context travels in the AMQP headers), each with tenant id, run id and sequence.
//!
//! Coordinator and worker run in this process, under one in-memory exporter; between them
//! the batch goes through the real RabbitMQ, so the trace context crosses the broker in the
//! message headers exactly as between processes. Run with `--no-capture` to see the tree.

use std::collections::{HashMap, HashSet};

use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::SpanData;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_telemetry::testing::TestTelemetry;
use dirsync_worker::{Worker, WorkerSettings};

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// The trace as indented text: each span with its kind and the attributes that matter,
/// children in start order; of repeated siblings with the same name, the first `keep`.
fn tree(spans: &[SpanData], root: &SpanData, keep: usize) -> String {
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    for s in spans {
        children.entry(s.parent_span_id).or_default().push(s);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time);
    }
    let mut out = String::new();
    write_span(&children, root, 0, keep, &mut out);
    out
}

const SHOWN: [&str; 11] = [
    "tenant_id",
    "run_id",
    "kind",
    "seq",
    "users",
    "messaging.operation.type",
    "messaging.destination.name",
    "http.request.method",
    "http.response.status_code",
    "http.request.resend_count",
    "url.template",
];

fn write_span(
    children: &HashMap<SpanId, Vec<&SpanData>>,
    span: &SpanData,
    depth: usize,
    keep: usize,
    out: &mut String,
) {
    let shown: Vec<String> = SHOWN
        .iter()
        .filter_map(|k| attr(span, k).map(|v| format!("{k}={v}")))
        .collect();
    out.push_str(&format!(
        "{}{} [{:?}] {}\n",
        "  ".repeat(depth),
        span.name,
        span.span_kind,
        shown.join(" ")
    ));
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let kids = children.get(&span.span_context.span_id());
    for kid in kids.into_iter().flatten() {
        let n = seen.entry(kid.name.as_ref()).or_default();
        *n += 1;
        if *n <= keep {
            write_span(children, kid, depth + 1, keep, out);
        }
    }
    let mut more: Vec<(&&str, &usize)> = seen.iter().filter(|(_, n)| **n > keep).collect();
    more.sort();
    for (name, n) in more {
        out.push_str(&format!(
            "{}… {} more {name}\n",
            "  ".repeat(depth + 1),
            n - keep
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_is_one_trace_across_coordinator_and_worker() {
    let telemetry = TestTelemetry::new("dirsync-test");
    telemetry.try_init_global().unwrap();
    let stack = Stack::start(&StackOptions::new("telemetry", 450))
        .await
        .unwrap();
    let amqp = lapin::Connection::connect(&stack.env.amqp_url, Default::default())
        .await
        .unwrap();
    let redis = redis::aio::ConnectionManager::new(
        redis::Client::open(stack.env.redis_url.as_str()).unwrap(),
    )
    .await
    .unwrap();
    let settings = WorkerSettings {
        secrets: Some(stack.env.secrets_key.clone()),
        ..WorkerSettings::default()
    };
    let worker = Worker::new(
        stack.env.pool.clone(),
        redis,
        &amqp,
        stack.env.topology(),
        settings,
    )
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let worker = tokio::spawn(worker.run(stop.clone()));
    telemetry.reset();

    let report = stack.cycle("initial", None).await.unwrap();
    assert!(report.converged, "{:?}", report.verdict);
    stop.cancel();
    worker.await.unwrap().unwrap();
    let spans = telemetry.spans();

    // The run: one root span with the tenant and run ids.
    let runs = named(&spans, "run");
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = runs[0];
    let trace = run.span_context.trace_id();
    let tenant = stack.tenant_id.to_string();
    let run_id = report.run_id.to_string();
    assert_eq!(attr(run, "tenant_id").as_deref(), Some(tenant.as_str()));
    assert_eq!(attr(run, "run_id").as_deref(), Some(run_id.as_str()));
    assert_eq!(attr(run, "kind").as_deref(), Some("initial"));
    let in_trace: Vec<SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .cloned()
        .collect();

    // Graph pages, under the run, each with its HTTP request.
    let pages = named(&in_trace, "graph_page");
    assert!(pages.len() >= 3, "{} pages", pages.len());
    let requests = named(&in_trace, "graph_request");
    assert!(requests.len() >= pages.len());
    for r in &requests {
        assert_eq!(r.span_kind, SpanKind::Client);
        assert_eq!(attr(r, "http.request.method").as_deref(), Some("GET"));
        assert!(attr(r, "http.response.status_code").is_some(), "{r:?}");
    }

    // Every batch published by the coordinator (a producer span with the batch's keys) ...
    let publishes = named(&in_trace, "publish");
    assert!(publishes.len() >= 3, "{} publishes", publishes.len());
    let mut published: HashMap<SpanId, String> = HashMap::new();
    for p in &publishes {
        assert_eq!(p.span_kind, SpanKind::Producer);
        assert_eq!(attr(p, "messaging.system").as_deref(), Some("rabbitmq"));
        assert_eq!(attr(p, "tenant_id").as_deref(), Some(tenant.as_str()));
        assert_eq!(attr(p, "run_id").as_deref(), Some(run_id.as_str()));
        published.insert(p.span_context.span_id(), attr(p, "seq").expect("seq"));
    }
    // ... is processed by the worker in a consumer span that is its child in the same trace,
    // with the same keys.
    let batches: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "batch" && published.contains_key(&s.parent_span_id))
        .collect();
    let processed: HashSet<String> = batches
        .iter()
        .map(|b| attr(b, "seq").expect("seq"))
        .collect();
    let sent: HashSet<String> = published.values().cloned().collect();
    assert_eq!(processed, sent, "every published batch has its worker span");
    for b in &batches {
        assert_eq!(b.span_context.trace_id(), trace);
        assert_eq!(b.span_kind, SpanKind::Consumer);
        assert_eq!(attr(b, "tenant_id").as_deref(), Some(tenant.as_str()));
        assert_eq!(attr(b, "run_id").as_deref(), Some(run_id.as_str()));
        assert_eq!(attr(b, "seq"), published.get(&b.parent_span_id).cloned());
        assert_eq!(attr(b, "messaging.system").as_deref(), Some("rabbitmq"));
    }

    // SCIM requests and the record step, under the batches.
    let batch_ids: HashSet<SpanId> = batches.iter().map(|b| b.span_context.span_id()).collect();
    let under_batch = |s: &SpanData| {
        let by_id: HashMap<SpanId, &SpanData> = in_trace
            .iter()
            .map(|s| (s.span_context.span_id(), s))
            .collect();
        let mut parent = s.parent_span_id;
        while let Some(p) = by_id.get(&parent) {
            if batch_ids.contains(&parent) {
                return true;
            }
            parent = p.parent_span_id;
        }
        false
    };
    let scim = named(&in_trace, "scim_request");
    assert!(!scim.is_empty(), "no scim request spans in the run's trace");
    for s in &scim {
        assert!(under_batch(s), "{s:?}");
        assert_eq!(s.span_kind, SpanKind::Client);
        assert!(attr(s, "http.request.method").is_some(), "{s:?}");
        assert!(attr(s, "http.response.status_code").is_some(), "{s:?}");
        assert!(attr(s, "http.request.resend_count").is_some(), "{s:?}");
    }
    let records = named(&in_trace, "record");
    assert!(records.len() >= batches.len(), "{} records", records.len());
    for r in &records {
        assert!(under_batch(r), "{r:?}");
        assert_eq!(attr(r, "run_id").as_deref(), Some(run_id.as_str()));
        assert!(attr(r, "seq").is_some());
    }

    // No secret in any span: the tenant's client secret and SCIM token.
    let graph_secret = dirsync_coordinator::TenantStore::new(stack.env.pool.clone())
        .with_key(stack.env.secrets_key.clone())
        .get(stack.tenant_id)
        .await
        .unwrap()
        .client_secret;
    let scim_token = stack.worker_tenant().await.unwrap().scim_token.clone();
    let everything = format!("{spans:?}");
    for secret in [graph_secret.expose_secret(), scim_token.expose_secret()] {
        assert!(!everything.contains(secret), "a secret is in a span");
    }

    println!("{}", tree(&in_trace, run, 2));
    stack.shutdown().await.unwrap();
}
