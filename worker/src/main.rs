//! The `dirsync-worker` process: parses its configuration, starts telemetry (JSON logs with
//! trace ids, OTLP traces when configured, the Prometheus scrape), runs the worker until
//! SIGTERM or Ctrl-C, lets in-flight batches finish, then flushes telemetry.

use anyhow::Context;
use clap::Parser;
use dirsync_telemetry::Settings;
use dirsync_worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "dirsync-worker",
    about = "dirsync worker: pushes Entra batches to Webex SCIM"
)]
struct Cli {
    #[command(flatten)]
    worker: WorkerConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings =
        Settings::from_env("dirsync-worker").context("reading the telemetry settings")?;
    let telemetry = dirsync_telemetry::init(settings).context("starting telemetry")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let result =
        dirsync_worker::run_with_metrics(cli.worker, shutdown, Some(telemetry.metrics_handle()))
            .await
            .context("worker failed");
    // Also after a failure: the spans of what went wrong are the ones worth exporting.
    telemetry.shutdown().await;
    result
}

/// Cancels `token` on SIGTERM (how orchestrators stop a process) or Ctrl-C.
async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM, only Ctrl-C stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
    token.cancel();
}
