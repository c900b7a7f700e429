//! The tracing subscriber every dirsync process (and [`crate::testing`]) runs: the filter,
//! the OpenTelemetry layer, and the log writer behind the repeated-event limiter.
//!
//! Each layer has its filter: `RUST_LOG` says what is logged, `DIRSYNC_TRACE_FILTER` (default
//! `info`) what is traced, so quiet logs (`warn`) still leave a run's spans to export, and
//! per-object spans at DEBUG cost nothing unless asked for.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::{self, MakeWriter, format::JsonFields};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::ratelimit::layer::RateLimiter;
use crate::settings::env;
use crate::trace_ids::WithTraceIds;
use crate::{LogFormat, TelemetryError};

/// `RUST_LOG` when set and not empty, else `default`.
pub(crate) fn env_filter(default: &str) -> Result<EnvFilter, TelemetryError> {
    let directives = env("RUST_LOG").unwrap_or_else(|| default.to_owned());
    parse_filter(&directives)
}

/// What is traced: `DIRSYNC_TRACE_FILTER` when set and not empty, else [`TRACE_DEFAULT`].
pub(crate) fn trace_filter() -> Result<EnvFilter, TelemetryError> {
    let directives = env("DIRSYNC_TRACE_FILTER").unwrap_or_else(|| TRACE_DEFAULT.to_owned());
    parse_filter(&directives)
}

/// The spans traced by default: the units of work (run, page, publish, batch, SCIM
/// request, record) are at INFO.
pub(crate) const TRACE_DEFAULT: &str = "info";

pub(crate) fn parse_filter(directives: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::try_new(directives).map_err(|source| TelemetryError::Filter {
        filter: directives.to_owned(),
        source,
    })
}

/// How log lines are written.
pub(crate) struct Output<W> {
    pub(crate) format: LogFormat,
    /// Colours, for text on a terminal.
    pub(crate) ansi: bool,
    pub(crate) writer: W,
}

/// OpenTelemetry behind `traces` (spans and span events it lets through), and the log
/// writer behind `limiter` and `logs`.
pub(crate) fn build<W>(
    logs: EnvFilter,
    traces: EnvFilter,
    tracer: opentelemetry_sdk::trace::SdkTracer,
    output: Output<W>,
    limiter: &RateLimiter,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(traces),
        )
        .with(limiter.layer(log_layer(output)).with_filter(logs))
}

fn log_layer<S, W>(output: Output<W>) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match output.format {
        LogFormat::Json => fmt::layer()
            .with_writer(output.writer)
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(WithTraceIds(fmt::format().json().flatten_event(true)))
            .boxed(),
        LogFormat::Text => fmt::layer()
            .with_writer(output.writer)
            .with_ansi(output.ansi)
            .boxed(),
    }
}
