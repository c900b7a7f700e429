//! `graph-sim`: runs the Microsoft Graph simulator standalone, or applies a change step to a
//! running one through its admin endpoint.
//!
//! ```text
//! graph-sim serve --port 8081 [--tenant-id T --domain contoso.example --client-id C \
//!     --client-secret S --seed 1 --users 1000] [--page-size 200] [--token-lifetime-secs 3599]
//! graph-sim change --url http://127.0.0.1:8081 --tenant T --updates 500 --soft-deletes 100
//! ```
//! More tenants can be added at run time with `POST /_sim/tenants` (a `TenantSpec` as JSON).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use dirsync_load_tests::graph_sim::{GraphSim, GraphSimConfig, TenantSpec};
use dirsync_load_tests::serve;
use dirsync_load_tests::synthetic::{ChangeReport, ChangeStep, GroupChangeStep, GroupSpec};

/// mimalloc instead of glibc's malloc: the simulator allocates many small JSON values across
/// threads, where glibc's malloc took half of its CPU (BENCHMARKS.md item 1). It stands in for
/// a service that runs elsewhere, so its cost on the benchmark machine is overhead to cut. The
/// worker uses it too (see its `main.rs`); the coordinator keeps the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "graph-sim", about = "Microsoft Graph (users/delta) simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the simulator until Ctrl-C.
    Serve(ServeArgs),
    /// Apply a change step to a tenant of a running simulator and print the report.
    Change(ChangeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, default_value_t = 8081)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Tenant to create at start (more via `POST /_sim/tenants`).
    #[arg(long)]
    tenant_id: Option<String>,
    #[arg(long, default_value = "contoso.example")]
    domain: String,
    #[arg(long, default_value = "graph-sim-client")]
    client_id: String,
    #[arg(
        long,
        env = "GRAPH_SIM_CLIENT_SECRET",
        default_value = "graph-sim-secret",
        hide_env_values = true
    )]
    client_secret: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 200)]
    page_size: usize,
    #[arg(long, default_value_t = 3599)]
    token_lifetime_secs: u64,
    /// Lifetime of deltaLinks before they answer `syncStateNotFound`.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    delta_token_lifetime_secs: u64,
    /// List deleted users as `@removed` in initial rounds too.
    #[arg(long)]
    initial_round_tombstones: bool,
    /// Groups generated with the tenant (served by `groups/delta`).
    #[arg(long, default_value_t = 0)]
    groups: usize,
    /// Most members one generated group has.
    #[arg(long, default_value_t = 1_200)]
    max_members: usize,
    /// Levels of nested groups below a top-level group.
    #[arg(long, default_value_t = 0)]
    nesting_depth: usize,
}

#[derive(clap::Args)]
struct ChangeArgs {
    /// Base URL of the running simulator.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    url: String,
    #[arg(long)]
    tenant: String,
    #[command(flatten)]
    step: ChangeStep,
    #[command(flatten)]
    groups: GroupChangeStep,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    dirsync_load_tests::process::init_tracing("info");
    match Cli::parse().command {
        Command::Serve(args) => serve_sim(args).await,
        Command::Change(args) => change(args).await,
    }
}

async fn serve_sim(args: ServeArgs) -> anyhow::Result<()> {
    let sim = GraphSim::new(GraphSimConfig {
        page_size: args.page_size,
        token_lifetime: Duration::from_secs(args.token_lifetime_secs),
        delta_token_lifetime: Duration::from_secs(args.delta_token_lifetime_secs),
        initial_round_tombstones: args.initial_round_tombstones,
        ..GraphSimConfig::default()
    });
    if let Some(tenant_id) = args.tenant_id {
        let spec = TenantSpec {
            tenant_id: tenant_id.clone(),
            domain: args.domain.clone(),
            client_id: args.client_id.clone(),
            client_secret: args.client_secret,
            seed: args.seed,
            users: args.users,
        };
        let groups = GroupSpec {
            count: args.groups,
            max_members: args.max_members,
            nesting_depth: args.nesting_depth,
        };
        let adder = sim.clone();
        tokio::task::spawn_blocking(move || adder.add_tenant_with_groups(spec, groups))
            .await
            .context("generating the tenant")??;
        println!(
            "tenant {tenant_id} ({}, {} users, seed {}), client id {}",
            args.domain, args.users, args.seed, args.client_id
        );
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
    println!("graph-sim listening on {base}");
    println!("  token:  POST {base}/{{tenant}}/oauth2/v2.0/token");
    println!("  graph:  GET  {base}/v1.0/users/delta | GET {base}/v1.0/groups/delta");
    println!("  admin:  POST {base}/_sim/tenants | POST {base}/_sim/tenants/{{tenant}}/changes");
    served
        .task
        .await
        .context("server task")?
        .context("serving")?;
    Ok(())
}

/// The admin endpoint takes the user and the group changes in one JSON object.
fn change_body(users: &ChangeStep, groups: &GroupChangeStep) -> anyhow::Result<serde_json::Value> {
    let mut body = serde_json::to_value(users)?;
    if let (Some(body), serde_json::Value::Object(g)) =
        (body.as_object_mut(), serde_json::to_value(groups)?)
    {
        body.extend(g);
    }
    Ok(body)
}

async fn change(args: ChangeArgs) -> anyhow::Result<()> {
    let url = format!(
        "{}/_sim/tenants/{}/changes",
        args.url.trim_end_matches('/'),
        args.tenant
    );
    let response = reqwest::Client::new()
        .post(&url)
        .json(&change_body(&args.step, &args.groups)?)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("POST {url}: {status}: {body}");
    }
    let report: ChangeReport = response.json().await.context("reading the change report")?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
