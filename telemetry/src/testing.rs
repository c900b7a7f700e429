//! Test support (cargo feature `testing`): the production subscriber with spans kept in
//! memory and log lines captured, installable per thread so tests in one process do not
//! share telemetry.
//!
//! Spans are exported synchronously as they end (`with_simple_exporter`), so a test reads
//! them right after the code under test returns, with no flush and no waiting.
//!
//! ```ignore
//! let telemetry = TestTelemetry::new("e2e");
//! let _guard = telemetry.set_default();          // this thread (a current-thread runtime)
//! run_coordinator_and_worker().await;
//! let spans = telemetry.spans();                  // assert trace ids, parents, attributes
//! ```
//!
//! A test on a multi-thread runtime installs it for the whole process instead
//! ([`TestTelemetry::try_init_global`]), which nextest's process per test makes safe.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Dispatch;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;

use crate::ratelimit::layer::RateLimiter;
use crate::subscriber::{self, Output};
use crate::{LogFormat, RateLimit, TelemetryError};

/// Filter of test subscribers: everything of dirsync's crates (targets `dirsync_*`), INFO
/// and above of the libraries under them.
pub const TEST_FILTER: &str = "info,dirsync=trace";

/// In-memory telemetry for one test (see the module documentation).
#[derive(Debug, Clone)]
pub struct TestTelemetry {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    logs: CapturedLogs,
    dispatch: Dispatch,
}

impl TestTelemetry {
    /// Telemetry whose spans carry `service_name` as their tracer (scope) name, logging
    /// JSON lines into memory through [`TEST_FILTER`].
    pub fn new(service_name: &'static str) -> Self {
        Self::with_filter(service_name, TEST_FILTER).expect("TEST_FILTER parses")
    }

    /// As [`new`](Self::new) with other `EnvFilter` directives.
    pub fn with_filter(
        service_name: &'static str,
        directives: &str,
    ) -> Result<Self, TelemetryError> {
        let filter = subscriber::parse_filter(directives)?;
        // The propagator is process-global; the W3C one is what production installs too.
        global::set_text_map_propagator(TraceContextPropagator::new());
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(service_name)
                    .build(),
            )
            .with_simple_exporter(exporter.clone())
            .build();
        let logs = CapturedLogs::default();
        let output = Output {
            format: LogFormat::Json,
            ansi: false,
            writer: logs.clone(),
        };
        let limiter = RateLimiter::new(RateLimit::default(), Arc::new(Instant::now));
        let tracer = provider.tracer(service_name);
        let dispatch = Dispatch::new(subscriber::build(filter, None, tracer, output, &limiter));
        Ok(Self {
            exporter,
            provider,
            logs,
            dispatch,
        })
    }

    /// Makes this the subscriber of the current thread until the guard drops.
    pub fn set_default(&self) -> DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch)
    }

    /// Makes this the subscriber of the whole process (and its tracer provider the global
    /// one). Fails when a global subscriber is already installed.
    pub fn try_init_global(&self) -> Result<(), TelemetryError> {
        use tracing_subscriber::util::SubscriberInitExt as _;
        self.dispatch
            .clone()
            .try_init()
            .map_err(TelemetryError::AlreadyInitialised)?;
        global::set_tracer_provider(self.provider.clone());
        Ok(())
    }

    /// The subscriber, e.g. for `WithSubscriber::with_subscriber` on a future.
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// The spans ended so far, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("the in-memory exporter is never shut down while in use")
    }

    /// The log lines written so far.
    pub fn logs(&self) -> &CapturedLogs {
        &self.logs
    }

    /// Forgets the spans and log lines so far.
    pub fn reset(&self) {
        self.exporter.reset();
        self.logs.clear();
    }
}

/// Log output kept in memory; a `MakeWriter` for tracing-subscriber's fmt layer.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Every line written so far, parsed as JSON (panics on a line that is not).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn clear(&self) {
        self.bytes().clear();
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A [`TestTelemetry`] installed on the current thread until the guard drops.
pub fn init_for_tests(service_name: &'static str) -> (TestTelemetry, DefaultGuard) {
    let telemetry = TestTelemetry::new(service_name);
    let guard = telemetry.set_default();
    (telemetry, guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_inside_spans_carry_the_span_ids() {
        let (telemetry, _guard) = init_for_tests("worker");
        tracing::info!("outside");
        tracing::info_span!("batch.process", batch.seq = 4).in_scope(|| {
            tracing::debug!(action = "create", "object pushed");
        });
        tracing::trace!(target: "lapin", "hidden by the filter");

        let lines = telemetry.logs().json_lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].get("trace_id").is_none());
        let inside = &lines[1];
        assert_eq!(inside["message"], "object pushed");
        assert_eq!(inside["level"], "DEBUG");
        assert_eq!(inside["span"]["name"], "batch.process");

        let spans = telemetry.spans();
        assert_eq!(spans.len(), 1);
        let ids = &spans[0].span_context;
        assert_eq!(inside["trace_id"], ids.trace_id().to_string());
        assert_eq!(inside["span_id"], ids.span_id().to_string());
        assert!(
            spans[0]
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == "batch.seq" && kv.value.as_str() == "4")
        );

        telemetry.reset();
        assert!(telemetry.spans().is_empty());
        assert!(telemetry.logs().text().is_empty());
    }
}
