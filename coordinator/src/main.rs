//! `dirsync`: the coordinator's command line. All logic lives in the library; this maps a
//! failure to its exit code (see `api_client::ExitCode`; clap exits with 2 on bad usage).

use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: every Graph page is parsed into thousands of small
/// JSON values and encoded again as a batch, and glibc's malloc and free were a quarter of
/// the coordinator's CPU (BENCHMARKS.md, run 9).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Flags, environment, then the configuration file (`--config`), validated before
    // anything connects; every problem is listed, and exit code 2 as for a bad flag.
    let cli = match dirsync_coordinator::config::load(|c: &mut dirsync_coordinator::cli::Cli| {
        &mut c.config
    }) {
        Ok(cli) => cli,
        Err(problems) => {
            eprintln!("error: {problems}");
            return std::process::ExitCode::from(2);
        }
    };
    let settings = dirsync_telemetry::Settings::from_env("dirsync-coordinator").map(|mut s| {
        // An operator's command prints its answer; its own lifecycle is not news.
        if cli.calls_api() {
            s.default_filter = "warn".into();
        }
        s
    });
    let telemetry = match settings.and_then(dirsync_telemetry::init) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: starting telemetry: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        signal.cancel();
    });
    let result = dirsync_coordinator::cli::run(cli, shutdown).await;
    // Spans and metrics of the last moments are flushed before the process ends.
    telemetry.shutdown().await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(dirsync_coordinator::cli::exit_code(&e))
        }
    }
}
