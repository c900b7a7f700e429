//! The dirsync load harness: sizes a deployment by running a scenario against the simulators.
//!
//! `harness run <scenario.json>` runs a scenario file (format: `docs/scenarios.md`);
//! `harness run --users 300000 --small-tenants 20 …` builds one from flags; `harness
//! capacity` measures the SCIM simulator alone; `harness validate <file>` only checks a file.
//! A progress bar on stderr while cycles run, then a table per cycle on stdout (or the JSON
//! report with `--json`). The exit code is 1 when a cycle did not converge or its chaos
//! verdict failed (chaos that restarts RabbitMQ or PostgreSQL needs
//! `--allow-service-restarts`). This binary is
//! also the worker processes it starts (`harness worker`) and, with `fleet.coordinators` >
//! 0, the coordinator processes (`harness coordinator`: what `dirsync serve` runs).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use dirsync_load_tests::process;
use dirsync_load_tests::scenario::capacity::{self, CapacityOptions};
use dirsync_load_tests::scenario::report::CycleMeasure;
use dirsync_load_tests::scenario::run::{self, Observer, Progress};
use dirsync_load_tests::scenario::{
    CycleSpec, FleetSpec, GraphKnobs, GroupsSpec, Scenario, ScimKnobs, StepSpec, SyntheticSpec,
    TenantEntry,
};

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    about = "Sizes a dirsync deployment: runs load scenarios against the simulators"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a scenario file, or one built from the flags when no file is given.
    Run(RunArgs),
    /// Measure the SCIM simulator's raw capacity (no fleet).
    Capacity {
        #[command(flatten)]
        capacity: CapacityArgs,
        /// Print the measurement as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a scenario file and say what it would run.
    Validate { file: PathBuf },
    /// Run one worker process (what `run` starts in the background).
    Worker(dirsync_worker::WorkerConfig),
    /// Run one coordinator process: the scheduler and admin API of `dirsync serve`, the same
    /// library code (what `run` starts with --coordinators).
    Coordinator(dirsync_coordinator::CoordinatorConfig),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A scenario file (docs/scenarios.md); without one, the flags below build the scenario.
    file: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Measure the SCIM simulator's raw capacity first, and report throughput as a share.
    #[arg(long)]
    capacity: bool,
    /// Let a scenario's chaos restart RabbitMQ and PostgreSQL (machine-wide: every other
    /// process using them breaks). Also DIRSYNC_HARNESS_ALLOW_SERVICE_RESTARTS=1.
    #[arg(long)]
    allow_service_restarts: bool,
    #[command(flatten)]
    capacity_args: CapacityArgs,
    #[command(flatten)]
    flags: FlagScenario,
}

#[derive(Debug, Args)]
struct CapacityArgs {
    /// Users created then patched by the capacity measurement.
    #[arg(long, default_value_t = 20_000)]
    capacity_users: usize,
    /// Concurrent clients of the capacity measurement.
    #[arg(long, default_value_t = 16)]
    capacity_clients: usize,
    /// Latency added to every request of the capacity measurement, ms (`run`: the scenario's).
    #[arg(long, default_value_t = 0)]
    capacity_latency_ms: u64,
    /// Up to this much more per request, uniformly at random (`run`: the scenario's).
    #[arg(long, default_value_t = 0)]
    capacity_latency_jitter_ms: u64,
    /// Measure without Bulk (single requests).
    #[arg(long)]
    capacity_no_bulk: bool,
}

/// A scenario from the command line: big tenants, small tenants, the fleet, N change cycles.
#[derive(Debug, Args)]
struct FlagScenario {
    /// Users of each large tenant.
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// Large tenants.
    #[arg(long, default_value_t = 1)]
    tenants: usize,
    /// Small tenants beside them.
    #[arg(long, default_value_t = 0)]
    small_tenants: usize,
    /// Users of each small tenant.
    #[arg(long, default_value_t = 1_000)]
    small_users: usize,
    /// Groups generated in every tenant.
    #[arg(long, default_value_t = 0)]
    groups: usize,
    /// Levels of group nesting.
    #[arg(long, default_value_t = 0)]
    nesting: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Coordinator processes asked with "sync now"; 0: the coordinator runs in the harness.
    #[arg(long, default_value_t = 0)]
    coordinators: usize,
    /// SCIM requests per second per org (simulator and workers); none: unlimited.
    #[arg(long)]
    scim_rate: Option<u32>,
    #[arg(long, default_value_t = 0)]
    scim_latency_ms: u64,
    /// Up to this much more SCIM latency per request, uniformly at random.
    #[arg(long, default_value_t = 0)]
    scim_latency_jitter_ms: u64,
    /// The SCIM simulator has no `/Bulk`: every user is its own request.
    #[arg(long)]
    scim_no_bulk: bool,
    /// Every Nth SCIM request answers 503.
    #[arg(long)]
    scim_fail_every: Option<u64>,
    /// Probability (0 to 1) that a SCIM request answers 503 (drawn from --seed).
    #[arg(long, default_value_t = 0.0)]
    scim_error_rate: f64,
    /// Probability (0 to 1) that a SCIM request answers 429 with --scim-retry-after-s.
    #[arg(long, default_value_t = 0.0)]
    scim_throttle_rate: f64,
    /// Retry-After of those 429s, seconds.
    #[arg(long, default_value_t = 1)]
    scim_retry_after_s: u64,
    /// After a drawn 429, every request to that org answers 429 for this long.
    #[arg(long, default_value_t = 0)]
    scim_throttle_burst_ms: u64,
    #[arg(long, default_value_t = 0)]
    graph_latency_ms: u64,
    /// Graph's documented RU throttling.
    #[arg(long)]
    graph_throttling: bool,
    /// Every Nth Graph delta request fails with 503/504.
    #[arg(long)]
    graph_fail_every: Option<usize>,
    /// Incremental cycles after the initial one, each after a change step.
    #[arg(long, default_value_t = 1)]
    cycles: usize,
    #[arg(long, default_value_t = 500)]
    updates: usize,
    #[arg(long, default_value_t = 100)]
    soft_deletes: usize,
    #[arg(long, default_value_t = 20)]
    hard_deletes: usize,
    #[arg(long, default_value_t = 50)]
    new_users: usize,
    #[arg(long, default_value_t = 20)]
    restores: usize,
    #[arg(long, default_value_t = 0)]
    members_added: usize,
    #[arg(long, default_value_t = 0)]
    members_removed: usize,
}

impl FlagScenario {
    fn scenario(&self) -> anyhow::Result<Scenario> {
        let groups = (self.groups > 0).then_some(GroupsSpec {
            count: self.groups,
            max_members: 2_000,
            nesting_depth: self.nesting,
        });
        let synthetic = |users: usize, seed: u64| SyntheticSpec {
            users,
            seed,
            groups,
        };
        let tenant = |name: &str, copies: usize, spec: SyntheticSpec| TenantEntry {
            name: name.into(),
            copies,
            allow_hard_delete: true,
            synthetic: Some(spec),
            hand_written: None,
            scope: None,
        };
        let mut tenants = vec![tenant(
            "large",
            self.tenants,
            synthetic(self.users, self.seed),
        )];
        if self.small_tenants > 0 {
            tenants.push(tenant(
                "small",
                self.small_tenants,
                synthetic(self.small_users, self.seed + 1_000),
            ));
        }
        let step = StepSpec {
            updates: self.updates,
            soft_deletes: self.soft_deletes,
            hard_deletes: self.hard_deletes,
            new_users: self.new_users,
            restores: self.restores,
            members_added: self.members_added,
            members_removed: self.members_removed,
            ..StepSpec::default()
        };
        let mut cycles = vec![CycleSpec {
            name: "initial".into(),
            changes: None,
            tenants: None,
            chaos: None,
        }];
        cycles.extend((1..=self.cycles).map(|n| CycleSpec {
            name: format!("incremental {n}"),
            changes: Some(step),
            tenants: None,
            chaos: None,
        }));
        let scenario = Scenario {
            name: "command line".into(),
            seed: self.seed,
            fleet: FleetSpec {
                workers: self.workers,
                coordinators: self.coordinators,
                scim: ScimKnobs {
                    rate_limit_per_org: self.scim_rate,
                    latency_ms: self.scim_latency_ms,
                    latency_jitter_ms: self.scim_latency_jitter_ms,
                    bulk: !self.scim_no_bulk,
                    fail_every: self.scim_fail_every,
                    error_rate: self.scim_error_rate,
                    throttle_rate: self.scim_throttle_rate,
                    retry_after_s: self.scim_retry_after_s,
                    throttle_burst_ms: self.scim_throttle_burst_ms,
                },
                graph: GraphKnobs {
                    latency_ms: self.graph_latency_ms,
                    throttling: self.graph_throttling,
                    fail_every: self.graph_fail_every,
                    ..GraphKnobs::default()
                },
            },
            tenants,
            cycles,
        };
        // The same checks as a file gets.
        Ok(Scenario::parse(&serde_json::to_string(&scenario)?)?)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Cmd::Worker(config) => runtime.block_on(async {
            let telemetry = process::init_telemetry("dirsync-worker", "warn")?;
            let result = dirsync_worker::run_with_metrics(
                config,
                process::cancel_on_signal(),
                dirsync_telemetry::scrape(),
            )
            .await;
            telemetry.shutdown().await;
            result.context("worker failed")
        }),
        Cmd::Coordinator(config) => runtime.block_on(async {
            let telemetry = process::init_telemetry("dirsync-coordinator", "warn")?;
            // Exactly `dirsync serve`: the command line's own code path, from the library.
            let cli = dirsync_coordinator::cli::Cli {
                config,
                api: dirsync_coordinator::cli::ApiArgs {
                    api_url: String::new(),
                    api_token: None,
                    json: false,
                },
                command: dirsync_coordinator::cli::Command::Serve,
            };
            let result = dirsync_coordinator::cli::run(cli, process::cancel_on_signal()).await;
            telemetry.shutdown().await;
            result.context("coordinator failed")
        }),
        Cmd::Validate { file } => {
            let scenario = Scenario::load(&file)?;
            let chaos = scenario.cycles.iter().filter(|c| c.chaos.is_some()).count();
            let coordinators = match scenario.fleet.coordinators {
                0 => "the coordinator in the harness process".to_string(),
                n => format!("{n} coordinator processes"),
            };
            println!(
                "{}: {} tenant entries, {} users at start, {} cycles ({chaos} with chaos), {} workers, {coordinators}",
                scenario.name,
                scenario.tenants.len(),
                scenario.initial_users(),
                scenario.cycles.len(),
                scenario.fleet.workers
            );
            Ok(())
        }
        Cmd::Capacity { capacity, json } => runtime.block_on(async {
            process::init_tracing("warn");
            let measured = capacity::measure(capacity_options(&capacity, None)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&measured)?);
            } else {
                println!(
                    "SCIM simulator, {} users, {} clients, {} ms latency, bulk {}: creates {:.0}/s, patches {:.0}/s, together {:.0} ops/s in {} requests",
                    measured.users,
                    measured.clients,
                    measured.latency_ms,
                    measured.bulk,
                    measured.create_ops_per_s,
                    measured.patch_ops_per_s,
                    measured.ops_per_s,
                    measured.requests
                );
            }
            Ok(())
        }),
        Cmd::Run(args) => runtime.block_on(run_scenario(args)),
    }
}

fn capacity_options(args: &CapacityArgs, scenario: Option<&Scenario>) -> CapacityOptions {
    CapacityOptions {
        users: args.capacity_users,
        clients: args.capacity_clients,
        latency_ms: scenario.map_or(args.capacity_latency_ms, |s| s.fleet.scim.latency_ms),
        latency_jitter_ms: scenario.map_or(args.capacity_latency_jitter_ms, |s| {
            s.fleet.scim.latency_jitter_ms
        }),
        bulk: scenario.map_or(!args.capacity_no_bulk, |s| s.fleet.scim.bulk),
    }
}

async fn run_scenario(args: RunArgs) -> anyhow::Result<()> {
    let scenario = match &args.file {
        Some(file) => Scenario::load(file)?,
        None => args.flags.scenario()?,
    };
    // The coordinator runs in this process (unless it has coordinator processes): its spans
    // are the coordinator's.
    let telemetry = process::init_telemetry("dirsync-coordinator", "warn")?;
    let result = async {
        let capacity = if args.capacity {
            eprintln!("measuring the SCIM simulator's raw capacity…");
            let c =
                capacity::measure(capacity_options(&args.capacity_args, Some(&scenario))).await?;
            eprintln!("capacity: {:.0} ops/s", c.ops_per_s);
            Some(c.ops_per_s)
        } else {
            None
        };
        let exe = std::env::current_exe()?;
        let display = Display::new();
        run::run_with(
            &scenario,
            &exe,
            capacity,
            &display,
            args.allow_service_restarts,
        )
        .await
    }
    .await;
    telemetry.shutdown().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "scenario {}: {} tenants, {} workers, {}",
            report.scenario,
            report.tenants,
            report.workers,
            match report.coordinators {
                0 => "coordinator in the harness".to_string(),
                n => format!("{n} coordinator processes"),
            }
        );
        println!("{}", report.table());
    }
    for c in report.cycles.iter().filter(|c| !c.converged) {
        eprintln!("cycle {} did not converge; first problems:", c.cycle);
        for p in &c.problems {
            eprintln!("  {p}");
        }
    }
    for c in &report.cycles {
        if let Some(chaos) = &c.chaos {
            eprintln!(
                "cycle {} chaos: {} ({} faults fired, counts exact: {}, duplicates: {}, uncaused restarts: {})",
                c.cycle,
                if chaos.passed { "passed" } else { "FAILED" },
                chaos.faults.iter().filter(|f| f.injected).count(),
                chaos.counts_exact,
                chaos.webex_duplicates,
                chaos.uncaused_restarts
            );
            for f in &chaos.faults {
                eprintln!(
                    "  {:?}: injected {}, held {}: {}",
                    f.fault, f.injected, f.ok, f.detail
                );
            }
            for p in &chaos.problems {
                eprintln!("  problem: {p}");
            }
        }
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}

/// The progress bar (stderr; hidden when stderr is not a terminal).
struct Display {
    bar: ProgressBar,
}

impl Display {
    fn new() -> Display {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14} [{elapsed_precise}] {wide_bar} {pos}/{len} users  {msg}",
            )
            .expect("static template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Display { bar }
    }
}

impl Observer for Display {
    fn stage(&self, what: &str) {
        self.bar.set_prefix("setting up");
        self.bar.set_message(what.to_string());
    }

    fn progress(&self, p: &Progress) {
        if self.bar.prefix() != p.cycle {
            self.bar.reset();
            self.bar.set_prefix(p.cycle.clone());
        }
        self.bar.set_length(p.users_published.max(p.users_done));
        self.bar.set_position(p.users_done);
        self.bar
            .set_message(format!("tenants done {}/{}", p.tenants_done, p.tenants));
    }

    fn cycle_done(&self, m: &CycleMeasure) {
        self.bar.println(format!(
            "{}: {} users seen in {:.2} s ({:.0}/s), {} SCIM requests, converged: {}",
            m.cycle,
            m.users.total(),
            m.wall_ms as f64 / 1000.0,
            m.users_per_s,
            m.scim.requests,
            m.converged
        ));
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
