//! Starting and stopping a process's telemetry: [`init`] installs the global propagator,
//! tracer provider, meter provider and tracing subscriber; [`Telemetry::shutdown`] flushes
//! them.
//!
//! The tracer provider always exists, with an OTLP exporter only when the environment asks
//! for one: trace ids in logs and trace context on the queue work either way. Both SDK
//! pipelines run on their own threads (batch span processor, Prometheus reader on demand),
//! so nothing here needs the tokio runtime except `shutdown`, which moves the blocking
//! flush off it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::ratelimit::layer::RateLimiter;
use crate::settings::{env, fallback_service_name, otlp_traces_enabled};
use crate::subscriber::{self, Output};
use crate::{MetricsHandle, Settings, TelemetryError};

/// The running telemetry of a process. Keep it until exit and call
/// [`shutdown`](Self::shutdown): the global providers hold clones, so dropping it flushes
/// nothing.
#[derive(Debug)]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    metrics: MetricsHandle,
    limiter: RateLimiter,
}

static SCRAPE: std::sync::OnceLock<MetricsHandle> = std::sync::OnceLock::new();

/// The scrape of the process's metrics once [`init`] has run: what a `/metrics` route
/// serves, wherever in the process it is mounted.
pub fn scrape() -> Option<MetricsHandle> {
    SCRAPE.get().cloned()
}

/// Installs everything (see the crate documentation for the environment variables).
///
/// Fails on invalid settings, an OTLP exporter that cannot be built, or when a global
/// subscriber is already installed (a second `init` in one process); nothing global is
/// changed then.
pub fn init(settings: Settings) -> Result<Telemetry, TelemetryError> {
    let filter = subscriber::env_filter(&settings.default_filter)?;
    let logs_only = settings
        .log_filter
        .as_deref()
        .map(subscriber::parse_filter)
        .transpose()?;
    let export = otlp_traces_enabled(env)?;
    let resource = resource(settings.service_name);

    let mut traces = SdkTracerProvider::builder().with_resource(resource.clone());
    if export {
        // Endpoint, headers, timeout and protocol come from OTEL_EXPORTER_OTLP_*: anything
        // set here would override the operator's environment.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        traces = traces.with_batch_exporter(exporter);
    }
    let tracer_provider = traces.build();

    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(TelemetryError::Prometheus)?;
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .build();

    let limiter = RateLimiter::new(settings.rate_limit, Arc::new(Instant::now));
    let output = Output {
        format: settings.log_format,
        ansi: std::io::stderr().is_terminal(),
        writer: std::io::stderr,
    };
    let tracer = tracer_provider.tracer(settings.service_name);
    subscriber::build(filter, logs_only, tracer, output, &limiter)
        .try_init()
        .map_err(TelemetryError::AlreadyInitialised)?;

    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(tracer_provider.clone());
    // Before the first `metrics()`: instruments of a meter taken earlier stay no-ops.
    global::set_meter_provider(meter_provider.clone());
    crate::metrics();

    tracing::info!(
        service_name = settings.service_name,
        otlp_traces = export,
        log_format = ?settings.log_format,
        "telemetry started"
    );
    Ok(Telemetry {
        tracer_provider,
        meter_provider,
        metrics: {
            let handle = MetricsHandle::new(registry);
            // The first init's scrape is the process's (see `scrape()`).
            let _ = SCRAPE.set(handle.clone());
            handle
        },
        limiter,
    })
}

/// The resource of both providers: the SDK's detectors read `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`; the binary's name only fills in for a missing service name.
fn resource(default_service: &'static str) -> Resource {
    let builder = Resource::builder();
    match fallback_service_name(env, default_service) {
        Some(name) => builder.with_service_name(name).build(),
        None => builder.build(),
    }
}

impl Telemetry {
    /// The Prometheus scrape body (see [`MetricsHandle::render`]).
    pub fn prometheus_text(&self) -> String {
        self.metrics.render()
    }

    /// A clonable handle for the HTTP handler that serves the scrape body.
    pub fn metrics_handle(&self) -> MetricsHandle {
        self.metrics.clone()
    }

    /// Flushes and stops: logs the suppressed-repeat summaries still open, exports the
    /// spans still queued, stops the meter provider. The SDK calls block (up to its 5 s
    /// timeout each), so they run on tokio's blocking pool. Failures are logged.
    pub async fn shutdown(self) {
        if let Err(error) = tokio::task::spawn_blocking(move || self.shutdown_blocking()).await {
            tracing::warn!(%error, "telemetry shutdown did not finish");
        }
    }

    /// [`shutdown`](Self::shutdown) for a thread that may block (not a tokio worker), e.g.
    /// after the runtime has ended.
    pub fn shutdown_blocking(self) {
        self.limiter.log_remaining();
        tracing::info!("telemetry stopping");
        if let Err(error) = self.tracer_provider.shutdown() {
            tracing::warn!(%error, "flushing traces on shutdown");
        }
        if let Err(error) = self.meter_provider.shutdown() {
            tracing::warn!(%error, "stopping the meter provider");
        }
    }
}
