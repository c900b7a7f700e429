//! The one error type of the crate: what can stop telemetry from starting.
//!
//! Everything after start-up (failed exports, failed flushes) is logged, never returned:
//! observability must not take the fleet down.

/// Why [`crate::init`] (or reading [`crate::Settings`] from the environment) failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An environment variable holds a value this crate does not understand. Refusing is
    /// better than silently ignoring an operator's explicit choice.
    #[error("invalid {var}={value:?}: expected {expected}")]
    InvalidEnv {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    /// `RUST_LOG` (or the default filter) is not a valid `EnvFilter` directive list.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The OTLP span exporter could not be built, e.g. an invalid `OTEL_EXPORTER_OTLP_*`.
    #[error("building the otlp span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The Prometheus reader could not be built.
    #[error("building the prometheus metrics reader: {0}")]
    Prometheus(#[source] opentelemetry_sdk::error::OTelSdkError),
    /// A global tracing subscriber (or `log` logger) is already installed, e.g. a second
    /// `init` in the same process.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialised(#[source] tracing_subscriber::util::TryInitError),
}
