//! The Prometheus scrape body of the process's OpenTelemetry metrics.
//!
//! The opentelemetry-prometheus reader renders into a `prometheus::Registry` on every
//! gather; [`MetricsHandle`] is a cheap clone of it that an HTTP handler keeps.

use prometheus::Encoder as _;

/// `Content-Type` of [`MetricsHandle::render`]'s body (Prometheus text format 0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the process's metrics for a scrape. Cloning shares the registry.
///
/// ```ignore
/// let handle = telemetry.metrics_handle();
/// let route = axum::routing::get(move || async move {
///     ([(CONTENT_TYPE, dirsync_telemetry::PROMETHEUS_CONTENT_TYPE)], handle.render())
/// });
/// ```
#[derive(Clone, Debug)]
pub struct MetricsHandle {
    registry: prometheus::Registry,
}

impl MetricsHandle {
    pub(crate) fn new(registry: prometheus::Registry) -> Self {
        Self { registry }
    }

    /// The scrape body: every instrument with its current values, `target_info` with the
    /// resource (service name and `OTEL_RESOURCE_ATTRIBUTES`).
    pub fn render(&self) -> String {
        let mut body = Vec::new();
        if let Err(error) =
            prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut body)
        {
            // Only an inconsistent metric family fails; the rest is still worth serving.
            tracing::warn!(%error, "rendering the prometheus scrape body");
        }
        String::from_utf8_lossy(&body).into_owned()
    }

    /// The registry itself, e.g. to register collectors from other crates.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }
}
