//! `scim-sim`: runs the Webex SCIM simulator standalone until Ctrl-C.
//!
//! ```text
//! scim-sim serve --port 8082 --org <orgId> --token <token> [--org <orgId2> --token <token2>]
//!                [--rate-per-org 200 --burst-per-org 20] [--fail-every 7]
//!                [--error-rate 0.05 --throttle-rate 0.01 --retry-after-s 1
//!                 --throttle-burst-ms 500 --seed 1]
//! ```
//! The n-th `--token` belongs to the n-th `--org`. More orgs can be added at run time with
//! `POST /_sim/orgs {"org_id": "…", "token": "…"}`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use dirsync_load_tests::scim_sim::{Faults, RateLimit, ScimSim, ScimSimConfig};
use dirsync_load_tests::serve;

/// mimalloc instead of glibc's malloc: the simulator allocates many small JSON values across
/// threads, where glibc's malloc took half of its CPU (BENCHMARKS.md item 1). It stands in for
/// a service that runs elsewhere, so its cost on the benchmark machine is overhead to cut. The
/// worker uses it too (see its `main.rs`); the coordinator keeps the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "scim-sim", about = "Webex Identity SCIM 2.0 simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the simulator until Ctrl-C.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    #[arg(long, default_value_t = 8082)]
    port: u16,
    /// An org id (UUID); repeat for several orgs, each followed by its --token.
    #[arg(long = "org")]
    orgs: Vec<String>,
    /// The bearer token of the org given at the same position.
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// Cap on `count` in list requests.
    #[arg(long, default_value_t = ScimSimConfig::default().max_count)]
    max_count: usize,
    /// `count` when a list request gives none.
    #[arg(long, default_value_t = ScimSimConfig::default().default_count)]
    default_count: usize,
    /// Requests a second each org may make (a token bucket answering 429 when empty); none
    /// by default.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    rate_per_org: Option<u32>,
    /// Requests an org may make at once after a quiet spell (with --rate-per-org).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    burst_per_org: u32,
    /// Serve no `/Bulk` endpoint (404), like SCIM servers without Bulk.
    #[arg(long)]
    no_bulk: bool,
    /// Every Nth request answers 503.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    fail_every: Option<u64>,
    /// Probability (0 to 1) that a request answers 503.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    error_rate: f64,
    /// Probability (0 to 1) that a request answers 429 with Retry-After --retry-after-s.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    throttle_rate: f64,
    /// The Retry-After of a random 429, seconds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    retry_after_s: u64,
    /// After a random 429, every request to that org answers 429 for this long.
    #[arg(long, default_value_t = 0)]
    throttle_burst_ms: u64,
    /// Seeds the random faults (each org's generator).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// A probability: a number from 0 to 1.
fn rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("must be between 0 and 1, not {r}"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dirsync_load_tests::process::init_tracing("info");
    let Command::Serve(args) = Cli::parse().command;
    if args.orgs.len() != args.tokens.len() {
        bail!(
            "give one --token per --org ({} orgs, {} tokens)",
            args.orgs.len(),
            args.tokens.len()
        );
    }
    let sim = ScimSim::new(ScimSimConfig {
        max_count: args.max_count,
        default_count: args.default_count,
        rate_limit: args.rate_per_org.map(|per_second| RateLimit {
            per_second,
            burst: args.burst_per_org,
        }),
        bulk: !args.no_bulk,
        fail_every: args.fail_every,
        faults: Faults {
            error_rate: args.error_rate,
            throttle_rate: args.throttle_rate,
            retry_after_secs: args.retry_after_s,
            throttle_burst: Duration::from_millis(args.throttle_burst_ms),
            seed: args.seed,
        },
    });
    for (org, token) in args.orgs.iter().zip(&args.tokens) {
        sim.add_org(org, token);
    }
    let shutdown = dirsync_load_tests::process::cancel_on_signal();
    let served = serve::spawn(
        sim.router(),
        SocketAddr::new(args.bind, args.port),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
    let base = served.base_url();
    tracing::info!(%base, orgs = ?args.orgs, "scim-sim listening");
    for org in &args.orgs {
        tracing::info!("SCIM base URL: {base}/identity/scim/{org}/v2");
    }
    served
        .task
        .await
        .context("server task")?
        .context("server")?;
    Ok(())
}
