//! What a binary tells [`crate::init`], and the environment rules this crate applies itself.
//!
//! The OpenTelemetry SDK reads most `OTEL_*` variables on its own (service name, resource
//! attributes, sampler, batch processor, OTLP endpoint, headers, timeout). Two decisions it
//! leaves to the application are made here: whether traces are exported at all
//! (`OTEL_TRACES_EXPORTER`, which the Rust SDK ignores) and the log format. The rules are
//! pure functions over a variable lookup so they are tested without touching the process
//! environment.

use std::io::IsTerminal;
use std::time::Duration;

use crate::TelemetryError;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with `trace_id` and `span_id` when inside a span.
    Json,
    /// Human-readable lines (coloured on a terminal).
    Text,
}

/// Repeated WARN/ERROR events: how many identical ones (same callsite, same message) are
/// written per window before the rest are counted instead. One line per window then says
/// how many were suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Identical events written per window; the ones after that are suppressed.
    pub max_repeats: u32,
    /// Length of the window, starting at the first event of a kind.
    pub window: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            max_repeats: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// Start-up settings of one process's telemetry.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `service.name` when `OTEL_SERVICE_NAME` is unset or empty.
    pub service_name: &'static str,
    /// Log line format; [`Settings::from_env`] reads `DIRSYNC_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `EnvFilter` directives used when `RUST_LOG` is unset or empty, e.g. `"info"`: what
    /// is traced and logged.
    pub default_filter: String,
    /// Directives that narrow what is *logged* only, not what is traced: a quiet program
    /// (`"warn"`) whose runs are still whole traces. `None`: logs show all the filter lets
    /// through.
    pub log_filter: Option<String>,
    /// Suppression of repeated WARN/ERROR lines.
    pub rate_limit: RateLimit,
}

impl Settings {
    /// Settings for `service_name` with the log format from `DIRSYNC_LOG_FORMAT` (`json` or
    /// `text`; unset: JSON unless stderr is a terminal), filter `info`, default rate limit.
    pub fn from_env(service_name: &'static str) -> Result<Self, TelemetryError> {
        let log_format = log_format_from(env, std::io::stderr().is_terminal())?;
        Ok(Self {
            service_name,
            log_format,
            default_filter: "info".to_owned(),
            log_filter: None,
            rate_limit: RateLimit::default(),
        })
    }
}

/// Reads a variable; empty or whitespace-only counts as unset, as the OTel spec says.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `DIRSYNC_LOG_FORMAT`: `json` or `text` (any case); unset follows the terminal, because a
/// person reads a terminal and a log shipper reads everything else.
pub(crate) fn log_format_from(
    get: impl Fn(&str) -> Option<String>,
    stderr_is_terminal: bool,
) -> Result<LogFormat, TelemetryError> {
    match get("DIRSYNC_LOG_FORMAT") {
        None if stderr_is_terminal => Ok(LogFormat::Text),
        None => Ok(LogFormat::Json),
        Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
        Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
        Some(value) => Err(TelemetryError::InvalidEnv {
            var: "DIRSYNC_LOG_FORMAT",
            value,
            expected: "json or text",
        }),
    }
}

/// Whether spans go to an OTLP exporter. `OTEL_TRACES_EXPORTER=none` turns it off,
/// `otlp` on; unset, it is on only when an OTLP endpoint is configured, so a process
/// without a collector neither exports nor retries against `localhost:4318`.
pub(crate) fn otlp_traces_enabled(
    get: impl Fn(&str) -> Option<String>,
) -> Result<bool, TelemetryError> {
    match get("OTEL_TRACES_EXPORTER") {
        Some(v) if v.eq_ignore_ascii_case("none") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("otlp") => Ok(true),
        Some(value) => Err(TelemetryError::InvalidEnv {
            var: "OTEL_TRACES_EXPORTER",
            value,
            expected: "otlp or none",
        }),
        None => Ok(get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()),
    }
}

/// The service name to set in code: none when `OTEL_SERVICE_NAME` is set, because a name
/// set in code would override the operator's.
pub(crate) fn fallback_service_name(
    get: impl Fn(&str) -> Option<String>,
    default: &'static str,
) -> Option<&'static str> {
    get("OTEL_SERVICE_NAME").is_none().then_some(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn traces_are_exported_only_with_an_endpoint_or_explicit_otlp() {
        assert!(!otlp_traces_enabled(vars(&[])).unwrap());
        assert!(!otlp_traces_enabled(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])).unwrap());
        assert!(
            otlp_traces_enabled(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])).unwrap()
        );
        assert!(
            otlp_traces_enabled(vars(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )]))
            .unwrap()
        );
        assert!(otlp_traces_enabled(vars(&[("OTEL_TRACES_EXPORTER", "OTLP")])).unwrap());
        assert!(
            !otlp_traces_enabled(vars(&[
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ]))
            .unwrap()
        );
    }

    #[test]
    fn an_unsupported_traces_exporter_is_refused() {
        let err = otlp_traces_enabled(vars(&[("OTEL_TRACES_EXPORTER", "zipkin")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid OTEL_TRACES_EXPORTER=\"zipkin\": expected otlp or none"
        );
    }

    #[test]
    fn log_format_follows_the_variable_then_the_terminal() {
        assert_eq!(log_format_from(vars(&[]), true).unwrap(), LogFormat::Text);
        assert_eq!(log_format_from(vars(&[]), false).unwrap(), LogFormat::Json);
        let json = vars(&[("DIRSYNC_LOG_FORMAT", "JSON")]);
        assert_eq!(log_format_from(json, true).unwrap(), LogFormat::Json);
        let text = vars(&[("DIRSYNC_LOG_FORMAT", "text")]);
        assert_eq!(log_format_from(text, false).unwrap(), LogFormat::Text);
        let bad = vars(&[("DIRSYNC_LOG_FORMAT", "yaml")]);
        assert!(matches!(
            log_format_from(bad, false),
            Err(TelemetryError::InvalidEnv {
                var: "DIRSYNC_LOG_FORMAT",
                ..
            })
        ));
    }

    #[test]
    fn the_operator_service_name_wins_over_the_default() {
        assert_eq!(
            fallback_service_name(vars(&[]), "dirsync-worker"),
            Some("dirsync-worker")
        );
        let set = vars(&[("OTEL_SERVICE_NAME", "worker-eu")]);
        assert_eq!(fallback_service_name(set, "dirsync-worker"), None);
    }
}
