//! The `dirsync-worker` process: parses its configuration, runs the worker until SIGTERM
//! or Ctrl-C, then lets in-flight batches finish.

use anyhow::Context;
use clap::Parser;
use dirsync_worker::WorkerConfig;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    dirsync_worker::run(cli.worker, shutdown)
        .await
        .context("worker failed")
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
