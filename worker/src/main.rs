//! The `dirsync-worker` process: parses its configuration, starts telemetry (JSON logs with
//! trace ids, OTLP traces when configured, the Prometheus scrape), runs the worker until
//! SIGTERM or Ctrl-C, lets in-flight batches finish, then flushes telemetry.

use anyhow::Context;
use dirsync_telemetry::Settings;
use dirsync_worker::config::{self, WorkerCli};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: a batch is thousands of small JSON strings and maps
/// built and dropped across threads, and glibc's malloc and free (with its fastbin
/// consolidation on every large free) were 30 % of a worker's CPU. Counted over a whole
/// 300,000-user initial cycle, mimalloc runs the workers in 21 % fewer instructions for
/// about 40 MB more resident memory each (BENCHMARKS.md, run 9).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Flags, environment, then the configuration file (`--config`), validated before
    // anything connects; every problem is listed, and exit code 2 as for a bad flag.
    let cli = match config::load(|c: &mut WorkerCli| &mut c.worker) {
        Ok(cli) => cli,
        Err(problems) => {
            eprintln!("error: {problems}");
            std::process::exit(2);
        }
    };
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
