//! The tracing subscriber every dirsync process (and [`crate::testing`]) runs: the filter,
//! the OpenTelemetry layer, and the log writer behind the repeated-event limiter.
//!
//! The filter sits below both layers, so what `RUST_LOG` hides is neither logged nor traced:
//! per-object spans at DEBUG cost nothing in production. An optional second filter narrows
//! the log lines alone (a quiet program still traces its runs whole).

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

/// Filter, then OpenTelemetry (spans and span events of everything the filter lets
/// through), then the log writer behind `limiter` and `logs_only`.
pub(crate) fn build<W>(
    filter: EnvFilter,
    logs_only: Option<EnvFilter>,
    tracer: opentelemetry_sdk::trace::SdkTracer,
    output: Output<W>,
    limiter: &RateLimiter,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The OpenTelemetry layer stays under the global filter, not a per-layer one: filtered
    // per layer, it dropped spans whose context had been read (`publish`), and the run's
    // trace fell apart (`load-tests/tests/telemetry.rs`).
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(limiter.layer(log_layer(output)).with_filter(logs_only))
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
