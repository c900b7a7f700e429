//! The dirsync demo: a whole fleet against the simulators, end to end.
//!
//! `demo` starts the Graph and SCIM simulators, a coordinator in-process and worker
//! processes (this same binary, `demo worker`), syncs a synthetic tenant, applies a change
//! step, syncs again, and prints one JSON line per cycle with the oracle's verdict.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use dirsync_coordinator::RunProgress;
use dirsync_load_tests::fleet::{CycleReport, Stack, StackOptions};
use dirsync_load_tests::process;
use dirsync_load_tests::synthetic::ChangeStep;

#[derive(Debug, Parser)]
#[command(
    name = "demo",
    about = "Runs dirsync end to end against the Graph and Webex simulators"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Users in the synthetic tenant.
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// Seed of the synthetic tenant.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one worker process (what the demo starts in the background).
    Worker(dirsync_worker::WorkerConfig),
    /// Run the `dirsync` command line (the coordinator), e.g. `demo dirsync sync <tenant>`.
    Dirsync {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Some(Cmd::Worker(config)) => runtime.block_on(worker(config)),
        Some(Cmd::Dirsync { args }) => runtime.block_on(async {
            let telemetry = process::init_telemetry("dirsync-coordinator", "warn")?;
            let cli = dirsync_coordinator::cli::Cli::parse_from(
                std::iter::once("dirsync".to_string()).chain(args),
            );
            let result = dirsync_coordinator::cli::run(cli, process::cancel_on_signal()).await;
            telemetry.shutdown().await;
            if let Err(e) = result {
                // The same exit codes as the `dirsync` binary.
                eprintln!("error: {e:#}");
                std::process::exit(dirsync_coordinator::cli::exit_code(&e).into());
            }
            Ok(())
        }),
        None => runtime.block_on(demo(cli.users, cli.seed, cli.workers)),
    }
}

async fn worker(config: dirsync_worker::WorkerConfig) -> anyhow::Result<()> {
    let telemetry = process::init_telemetry("dirsync-worker", "warn")?;
    let shutdown = process::cancel_on_signal();
    let result =
        dirsync_worker::run_with_metrics(config, shutdown, dirsync_telemetry::scrape()).await;
    telemetry.shutdown().await;
    result.context("worker failed")
}

async fn demo(users: usize, seed: u64, workers: usize) -> anyhow::Result<()> {
    // The demo's coordinator runs in this process: its spans are the coordinator's.
    let telemetry = process::init_telemetry("dirsync-coordinator", "warn")?;
    let result = demo_cycles(users, seed, workers).await;
    telemetry.shutdown().await;
    result
}

async fn demo_cycles(users: usize, seed: u64, workers: usize) -> anyhow::Result<()> {
    eprintln!("dirsync demo: {users} synthetic users, {workers} worker processes");
    let stack = Stack::start(&StackOptions {
        seed,
        ..StackOptions::new("demo", users)
    })
    .await
    .context("starting the demo stack (are PostgreSQL, RabbitMQ and Redis running?)")?;
    let exe = std::env::current_exe()?;
    for _ in 0..workers {
        stack.spawn_worker(&exe)?;
    }
    let result = cycles(&stack).await;
    stack.shutdown().await?;
    let reports = result?;
    anyhow::ensure!(
        reports.iter().all(|r| r.converged),
        "the demo did not converge"
    );
    Ok(())
}

async fn cycles(stack: &Stack) -> anyhow::Result<Vec<CycleReport>> {
    let initial = cycle(stack, "initial").await?;
    let step = ChangeStep {
        updates: 500,
        soft_deletes: 100,
        hard_deletes: 20,
        new_users: 50,
        restores: 20,
        disables: 0,
    };
    let report = stack.change(&step)?;
    eprintln!(
        "change step applied: {} updates, {} soft deletes, {} hard deletes, {} new users, {} restores",
        report.updates, report.soft_deletes, report.hard_deletes, report.new_users, report.restores
    );
    let incremental = cycle(stack, "incremental").await?;
    Ok(vec![initial, incremental])
}

/// Runs one cycle with a progress bar fed by the coordinator and the Redis counters.
async fn cycle(stack: &Stack, name: &str) -> anyhow::Result<CycleReport> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} users  {msg}",
        )
        .expect("static template"),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    let (tx, mut rx) = watch::channel(RunProgress::default());
    let display = async {
        loop {
            if rx.changed().await.is_err() {
                break;
            }
            let p = rx.borrow_and_update().clone();
            bar.set_length(p.users_published);
            if let Some(run) = p.run_id
                && let Ok(c) = stack.redis_counts(run).await
            {
                bar.set_position(c.total());
                bar.set_message(format!(
                    "pages {} · batches {}/{}{} · synced {} skipped {} failed {}",
                    p.pages,
                    p.batches_recorded,
                    p.batches_published,
                    if p.enumeration_done { "" } else { "+" },
                    c.synced,
                    c.skipped,
                    c.failed
                ));
            }
        }
    };
    let report = tokio::select! {
        r = stack.cycle(name, Some(&tx)) => r?,
        _ = display => unreachable!("the display ends only when the cycle drops its sender"),
    };
    bar.set_position(report.users.total());
    bar.finish_with_message(format!("done in {} ms", report.wall_ms));
    if !bar.is_hidden() {
        // The finished bar stays on screen; the cycle's JSON line goes below it.
        eprintln!();
    }
    if !report.converged {
        eprintln!(
            "not converged: {} problems, first ones:",
            report.verdict.problem_count
        );
        for p in &report.verdict.problems {
            eprintln!("  {p}");
        }
    }
    let secs = (report.wall_ms as f64 / 1000.0).max(0.001);
    eprintln!(
        "{name} cycle: {} users seen ({} synced, {} skipped, {} failed) in {:.2} s, {:.0} users/s, {} SCIM requests, converged: {}",
        report.users.total(),
        report.users.synced,
        report.users.skipped,
        report.users.failed,
        secs,
        report.users.total() as f64 / secs,
        report.scim_requests,
        report.converged
    );
    println!("{}", report.line());
    Ok(report)
}
