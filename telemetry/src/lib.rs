//! Observability shared by the dirsync coordinator and workers: OpenTelemetry traces
//! exported over OTLP, W3C trace context across RabbitMQ, OpenTelemetry metrics served as a
//! Prometheus scrape, and JSON log lines that carry trace and span ids.
//!
//! # Use
//!
//! ```ignore
//! let telemetry = dirsync_telemetry::init(Settings::from_env("dirsync-worker")?)?;
//! let scrape = telemetry.metrics_handle();          // for GET /metrics
//! dirsync_telemetry::metrics().batch_processed(BatchKind::Users, BatchOutcome::Ok);
//! // … run until the shutdown signal …
//! telemetry.shutdown().await;                        // flushes spans and metrics
//! ```
//!
//! - [`init`] installs the global W3C propagator, tracer provider, meter provider and the
//!   tracing subscriber, and returns the [`Telemetry`] to shut down at exit.
//! - [`amqp`] carries the current span's context in message headers and continues it in
//!   the consumer.
//! - [`metrics()`] holds the fleet's instruments ([`Metrics`], attribute values in
//!   [`labels`]).
//! - `testing` (cargo feature `testing`): in-memory spans and captured logs for tests.
//!
//! # Environment
//!
//! | variable | effect |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | Collector base URL (OTLP/HTTP protobuf), `/v1/traces` appended. Setting it turns trace export on. |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | Full traces URL, used as given; wins over the base URL. Also turns export on. |
//! | `OTEL_TRACES_EXPORTER` | `otlp`: export (to `http://localhost:4318` without an endpoint); `none`: never export. Unset: export iff an endpoint is set. Anything else is refused. |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT` (ms), `…_COMPRESSION` | Read by the exporter. Header values (credentials) are never logged. |
//! | `OTEL_SERVICE_NAME` | `service.name`; the binary's default (e.g. `dirsync-worker`) otherwise. |
//! | `OTEL_RESOURCE_ATTRIBUTES` | More resource attributes, e.g. `deployment.environment.name=prod`. |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | Sampler, e.g. `parentbased_traceidratio` with `0.1`; default `parentbased_always_on`. |
//! | `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | Batch span processor: export interval (ms, default 5000) and sizes. Spans beyond the queue are dropped, never block. |
//! | `RUST_LOG` | `EnvFilter` directives for logs *and* spans; default from [`Settings`] (`info`). |
//! | `DIRSYNC_LOG_FORMAT` | `json` or `text`; unset: text on a terminal, JSON otherwise. |
//!
//! Without an endpoint nothing is exported, but spans still get ids: log lines carry them
//! and messages carry trace context, so a collector added later sees whole traces.
//!
//! # Logging conventions
//!
//! Lifecycle events (start, stop, a run's start and end, reconnects) at INFO, per-object
//! work at DEBUG, so the default filter keeps volume independent of tenant size. Identical
//! WARN/ERROR events (same callsite and message) beyond [`RateLimit::max_repeats`] per
//! [`RateLimit::window`] are not written; one line per window then says how many were
//! suppressed. Secrets are `secrecy` types and are never given to a log or span field;
//! this crate itself logs no endpoint or header value (a test checks that a token in
//! `OTEL_EXPORTER_OTLP_HEADERS` never reaches the logs). Failed exports are logged by the
//! SDK (targets `opentelemetry*`, WARN/ERROR) and never fail the process.
//!
//! # Metrics
//!
//! Instruments follow OpenTelemetry naming; the scrape renders `dirsync.objects` as
//! `dirsync_objects_total{action="create",outcome="synced",otel_scope_name="dirsync",…}`.
//! Attributes are bounded enums only: ids belong on spans, not on series.

pub mod amqp;
mod error;
mod init;
pub mod metrics;
mod ratelimit;
pub mod readiness;
mod scrape;
mod settings;
mod subscriber;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod trace_ids;

pub use error::TelemetryError;
pub use init::{Telemetry, init, scrape};
pub use metrics::{Metrics, labels, metrics};
pub use scrape::{MetricsHandle, PROMETHEUS_CONTENT_TYPE};
pub use settings::{LogFormat, RateLimit, Settings};
