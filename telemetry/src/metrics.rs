//! The fleet's metrics: one set of OpenTelemetry instruments, made once, recorded through
//! one-line typed helpers.
//!
//! Names follow the OpenTelemetry conventions (dotted, unit in metadata); the Prometheus
//! scrape shows them as `dirsync_objects_total`, `http_client_request_duration_seconds`
//! and so on. Attributes are the enums of [`labels`] only: never a tenant, run, user or
//! batch id (those belong on spans and log lines). Instruments are made from the global
//! meter provider, so [`metrics()`] must first be called after [`crate::init`] (which
//! calls it); instruments made before are no-ops for the life of the process.

pub mod labels;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

use labels::{
    BatchKind, BatchOutcome, GraphRequestKind, ObjectAction, ObjectOutcome, Queue, RetryReason,
    RunKind, RunOutcome, http_method, status_class,
};

/// Bucket bounds (seconds) of single HTTP requests: the OpenTelemetry HTTP default.
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Bucket bounds (seconds) of waits for the org's shared SCIM rate limit.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Bucket bounds (seconds) of whole runs: seconds for an idle incremental run, hours for
/// the initial run of a large tenant.
const RUN_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

/// The process's instruments (see the module documentation).
#[derive(Debug, Clone)]
pub struct Metrics {
    batches_processed: Counter<u64>,
    objects: Counter<u64>,
    scim_request_duration: Histogram<f64>,
    scim_retries: Counter<u64>,
    scim_throttled: Counter<u64>,
    ratelimit_wait: Histogram<f64>,
    queue_depth: Gauge<u64>,
    queue_consumers: Gauge<u64>,
    batch_lag: Histogram<f64>,
    run_duration: Histogram<f64>,
    runs: Counter<u64>,
    tenants_quarantined: Gauge<u64>,
    graph_requests: Counter<u64>,
    graph_throttled: Counter<u64>,
}

/// The process's metrics, made on first use from `global::meter("dirsync")`.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new(&opentelemetry::global::meter("dirsync")))
}

impl Metrics {
    /// The instruments on `meter`; tests use a meter of their own provider.
    pub fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .build()
        };
        let seconds = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(buckets.to_vec())
                .build()
        };
        let gauge = |name: &'static str, description: &'static str| {
            meter.u64_gauge(name).with_description(description).build()
        };
        Self {
            batches_processed: counter(
                "dirsync.batches.processed",
                "Batch deliveries handled by workers, by outcome and kind.",
            ),
            objects: counter(
                "dirsync.objects",
                "Directory objects handled by workers, by outcome and action.",
            ),
            scim_request_duration: seconds(
                "http.client.request.duration",
                "Duration of SCIM requests to Webex.",
                REQUEST_BUCKETS,
            ),
            scim_retries: counter("dirsync.scim.retries", "SCIM requests retried, by reason."),
            scim_throttled: counter(
                "dirsync.scim.throttled",
                "SCIM responses 429 Too Many Requests.",
            ),
            ratelimit_wait: seconds(
                "dirsync.ratelimit.wait",
                "Time spent waiting for the org's shared SCIM rate limit.",
                WAIT_BUCKETS,
            ),
            queue_depth: gauge("dirsync.queue.depth", "Messages ready in a broker queue."),
            queue_consumers: gauge("dirsync.queue.consumers", "Consumers of a broker queue."),
            batch_lag: seconds(
                "dirsync.batch.lag",
                "Consumer lag: time from a batch's publish to a worker starting it, by queue.",
                WAIT_BUCKETS,
            ),
            run_duration: seconds(
                "dirsync.run.duration",
                "Duration of finished runs, by kind and outcome.",
                RUN_BUCKETS,
            ),
            runs: counter("dirsync.runs", "Finished runs, by kind and outcome."),
            tenants_quarantined: gauge(
                "dirsync.tenants.quarantined",
                "Tenants currently quarantined.",
            ),
            graph_requests: counter(
                "dirsync.graph.requests",
                "Microsoft Graph requests, by kind and status class.",
            ),
            graph_throttled: counter(
                "dirsync.graph.throttled",
                "Microsoft Graph responses 429 Too Many Requests, by kind.",
            ),
        }
    }

    /// One batch delivery settled.
    pub fn batch_processed(&self, kind: BatchKind, outcome: BatchOutcome) {
        self.batches_processed.add(
            1,
            &[
                KeyValue::new("kind", kind.as_str()),
                KeyValue::new("outcome", outcome.as_str()),
            ],
        );
    }

    /// `count` objects of a batch ended with `outcome` after `action`.
    pub fn objects(&self, outcome: ObjectOutcome, action: ObjectAction, count: u64) {
        self.objects.add(
            count,
            &[
                KeyValue::new("outcome", outcome.as_str()),
                KeyValue::new("action", action.as_str()),
            ],
        );
    }

    /// One SCIM request: its method, its status (`None` when no response came back) and
    /// how long it took. A 429 also counts in `dirsync.scim.throttled`.
    pub fn scim_request(&self, method: &str, status: Option<u16>, duration: Duration) {
        let method = KeyValue::new("http.request.method", http_method(method));
        let result = match status {
            Some(code) => KeyValue::new("http.response.status_code", i64::from(code)),
            None => KeyValue::new("error.type", "transport"),
        };
        self.scim_request_duration
            .record(duration.as_secs_f64(), &[method, result]);
        if status == Some(429) {
            self.scim_throttled.add(1, &[]);
        }
    }

    /// One SCIM request is retried.
    pub fn scim_retry(&self, reason: RetryReason) {
        self.scim_retries
            .add(1, &[KeyValue::new("reason", reason.as_str())]);
    }

    /// Time waited for the org's rate limit before one SCIM request.
    pub fn ratelimit_wait(&self, waited: Duration) {
        self.ratelimit_wait.record(waited.as_secs_f64(), &[]);
    }

    /// The latest depth and consumer count seen for `queue` (e.g. from a passive declare).
    pub fn queue_state(&self, queue: Queue, depth: u64, consumers: u64) {
        let attrs = [KeyValue::new("queue", queue.as_str())];
        self.queue_depth.record(depth, &attrs);
        self.queue_consumers.record(consumers, &attrs);
    }

    /// How long a batch waited in `queue` between its publish and a worker starting it.
    pub fn batch_lag(&self, queue: Queue, waited: Duration) {
        self.batch_lag.record(
            waited.as_secs_f64(),
            &[KeyValue::new("queue", queue.as_str())],
        );
    }

    /// One run ended: counts it and records its duration.
    pub fn run_finished(&self, kind: RunKind, outcome: RunOutcome, duration: Duration) {
        let attrs = [
            KeyValue::new("kind", kind.as_str()),
            KeyValue::new("outcome", outcome.as_str()),
        ];
        self.runs.add(1, &attrs);
        self.run_duration.record(duration.as_secs_f64(), &attrs);
    }

    /// The number of tenants in quarantine now.
    pub fn tenants_quarantined(&self, count: u64) {
        self.tenants_quarantined.record(count, &[]);
    }

    /// One Graph request with its status (`None`: no response). A 429 also counts in
    /// `dirsync.graph.throttled`.
    pub fn graph_request(&self, kind: GraphRequestKind, status: Option<u16>) {
        let kind = KeyValue::new("kind", kind.as_str());
        if status == Some(429) {
            self.graph_throttled.add(1, std::slice::from_ref(&kind));
        }
        self.graph_requests
            .add(1, &[kind, KeyValue::new("status", status_class(status))]);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    use super::*;
    use crate::MetricsHandle;

    /// Instruments on a provider of their own, rendered like the process's scrape.
    fn local() -> (Metrics, MetricsHandle, SdkMeterProvider) {
        let registry = prometheus::Registry::new();
        let reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .unwrap();
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        let metrics = Metrics::new(&provider.meter("dirsync"));
        (metrics, MetricsHandle::new(registry), provider)
    }

    /// The value of the one series of `name` whose labels include all of `labels`.
    fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
        let mut found = text.lines().filter(|line| {
            line.split_once(['{', ' '])
                .is_some_and(|(series, _)| series == name)
                && labels.iter().all(|l| line.contains(l))
        });
        let line = found.next()?;
        assert!(
            found.next().is_none(),
            "several series of {name} {labels:?}"
        );
        line.rsplit_once(' ')?.1.parse().ok()
    }

    /// The Grafana dashboard in `deploy/` asks only for series and labels the scrape has:
    /// renaming an instrument or an attribute without the dashboard fails here.
    #[test]
    fn the_dashboard_queries_what_the_scrape_serves() {
        let (m, handle, _provider) = local();
        m.objects(ObjectOutcome::Synced, ObjectAction::Create, 1);
        m.batch_processed(BatchKind::Users, BatchOutcome::Ok);
        m.scim_request("POST", Some(429), Duration::from_millis(20));
        m.scim_retry(RetryReason::Throttled);
        m.ratelimit_wait(Duration::from_millis(3));
        m.queue_state(Queue::Batches, 3, 1);
        m.batch_lag(Queue::Batches, Duration::from_millis(40));
        m.run_finished(
            RunKind::Initial,
            RunOutcome::Completed,
            Duration::from_secs(9),
        );
        m.tenants_quarantined(0);
        m.graph_request(GraphRequestKind::UsersDelta, Some(429));
        let text = handle.render();
        let series: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../deploy/grafana/dirsync-dashboard.json"))
                .unwrap();
        let mut asked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if word.starts_with("dirsync_") || word.starts_with("http_client_") {
                        asked += 1;
                        assert!(series.contains(word), "{word} (in {expr}) is not scraped");
                    }
                }
                // Every label the query groups by is on the series.
                if let Some(by) = expr.split("by (").nth(1) {
                    let labels = by.split(')').next().unwrap();
                    for label in labels.split(',').map(str::trim).filter(|l| *l != "le") {
                        assert!(
                            text.contains(&format!("{label}=")),
                            "label {label} (in {expr}) is not scraped"
                        );
                    }
                }
            }
        }
        assert!(asked >= 12, "{asked}");
    }

    #[test]
    fn recorded_values_appear_in_the_scrape_with_bounded_labels() {
        let (m, handle, _provider) = local();
        m.objects(ObjectOutcome::Synced, ObjectAction::Create, 3);
        m.objects(ObjectOutcome::Failed, ObjectAction::Fail, 1);
        m.batch_processed(BatchKind::Users, BatchOutcome::Ok);
        m.batch_processed(BatchKind::Users, BatchOutcome::Ok);
        m.batch_processed(BatchKind::DryRun, BatchOutcome::Requeued);
        m.scim_request("post", Some(200), Duration::from_millis(80));
        m.scim_request("PATCH", Some(429), Duration::from_millis(20));
        m.scim_request("GET", None, Duration::from_secs(30));
        m.scim_retry(RetryReason::Throttled);
        m.ratelimit_wait(Duration::from_millis(300));
        m.queue_state(Queue::Priority, 12, 2);
        m.run_finished(RunKind::Initial, RunOutcome::Held, Duration::from_secs(90));
        m.tenants_quarantined(1);
        m.graph_request(GraphRequestKind::UsersDelta, Some(200));
        m.graph_request(GraphRequestKind::UsersDelta, Some(429));

        let text = handle.render();
        let v = |name, labels: &[&str]| value(&text, name, labels);
        assert_eq!(
            v(
                "dirsync_objects_total",
                &[r#"action="create""#, r#"outcome="synced""#]
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            v(
                "dirsync_objects_total",
                &[r#"action="fail""#, r#"outcome="failed""#]
            ),
            Some(1.0)
        );
        let ok = [r#"kind="users""#, r#"outcome="ok""#];
        assert_eq!(v("dirsync_batches_processed_total", &ok), Some(2.0));
        let requeued = [r#"kind="dry_run""#, r#"outcome="requeued""#];
        assert_eq!(v("dirsync_batches_processed_total", &requeued), Some(1.0));
        let post = [
            r#"http_request_method="POST""#,
            r#"http_response_status_code="200""#,
        ];
        assert_eq!(
            v("http_client_request_duration_seconds_count", &post),
            Some(1.0)
        );
        assert_eq!(
            v(
                "http_client_request_duration_seconds_bucket",
                &[&post[..], &[r#"le="0.1""#]].concat()
            ),
            Some(1.0)
        );
        let transport = [r#"http_request_method="GET""#, r#"error_type="transport""#];
        assert_eq!(
            v("http_client_request_duration_seconds_sum", &transport),
            Some(30.0)
        );
        assert_eq!(v("dirsync_scim_throttled_total", &[]), Some(1.0));
        assert_eq!(
            v("dirsync_scim_retries_total", &[r#"reason="throttled""#]),
            Some(1.0)
        );
        assert_eq!(v("dirsync_ratelimit_wait_seconds_sum", &[]), Some(0.3));
        assert_eq!(
            v("dirsync_queue_depth", &[r#"queue="priority""#]),
            Some(12.0)
        );
        assert_eq!(
            v("dirsync_queue_consumers", &[r#"queue="priority""#]),
            Some(2.0)
        );
        let held = [r#"kind="initial""#, r#"outcome="held""#];
        assert_eq!(v("dirsync_runs_total", &held), Some(1.0));
        assert_eq!(v("dirsync_run_duration_seconds_sum", &held), Some(90.0));
        assert_eq!(v("dirsync_tenants_quarantined", &[]), Some(1.0));
        let delta = r#"kind="users_delta""#;
        assert_eq!(
            v("dirsync_graph_requests_total", &[delta, r#"status="2xx""#]),
            Some(1.0)
        );
        assert_eq!(
            v("dirsync_graph_requests_total", &[delta, r#"status="4xx""#]),
            Some(1.0)
        );
        assert_eq!(v("dirsync_graph_throttled_total", &[delta]), Some(1.0));
    }

    #[test]
    fn gauges_keep_the_latest_value() {
        let (m, handle, _provider) = local();
        m.queue_state(Queue::Batches, 40, 3);
        m.queue_state(Queue::Batches, 7, 3);
        m.tenants_quarantined(2);
        m.tenants_quarantined(0);
        let text = handle.render();
        assert_eq!(
            value(&text, "dirsync_queue_depth", &[r#"queue="batches""#]),
            Some(7.0)
        );
        assert_eq!(value(&text, "dirsync_tenants_quarantined", &[]), Some(0.0));
    }
}
