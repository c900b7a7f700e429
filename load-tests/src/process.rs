//! What every binary of this crate does at start: logs to stderr, telemetry as the fleet's
//! own processes have it (OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set), and one
//! cancellation token that SIGTERM or Ctrl-C cancels.

use tokio_util::sync::CancellationToken;

/// Logs to stderr with `RUST_LOG`, or `default_filter` when it is unset.
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The fleet's telemetry ([`dirsync_telemetry::init`]) as `service_name`: spans at `info`
/// (or `RUST_LOG`), log lines only from `quiet_logs` up unless `RUST_LOG` is set. Shut it
/// down at exit to flush spans.
pub fn init_telemetry(
    service_name: &'static str,
    quiet_logs: &str,
) -> anyhow::Result<dirsync_telemetry::Telemetry> {
    let mut settings = dirsync_telemetry::Settings::from_env(service_name)?;
    if std::env::var_os("RUST_LOG").is_none() {
        settings.log_filter = Some(quiet_logs.to_string());
    }
    Ok(dirsync_telemetry::init(settings)?)
}

/// A token cancelled on the first SIGTERM or Ctrl-C. Needs a running Tokio runtime.
pub fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler; only Ctrl-C stops this process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        cancel.cancel();
    });
    token
}
