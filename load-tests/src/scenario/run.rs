//! The harness runner: starts a [`Stack`] with the scenario's knobs and worker processes,
//! registers its tenants (each with its own Webex org), and runs its cycles. Before a cycle,
//! its change step is applied to the tenants it names; then every tenant syncs, the oracle
//! judges every org, and the cycle's [`CycleMeasure`] is handed to the caller as soon as it
//! is known. A tenant whose Webex token a chaos cycle revokes is left out of that cycle's
//! results and of every later cycle ([`super::chaos_cycle`]).
//!
//! Who syncs: by default the stack's coordinator, in this process, at most
//! `max_concurrent_runs` tenants at once as `dirsync serve` would; with `fleet.coordinators`
//! > 0, coordinator processes asked with "sync now" ([`super::coordinators`]).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::scope::Scope;
use dirsync_coordinator::{RunProgress, TenantStore};
use dirsync_proto::{Counts, GroupCounts};

use crate::fleet::{Pairing, Stack, StackOptions};
use crate::graph_sim::{GraphSimConfig, TenantSpec};
use crate::oracle::{Oracle, Verdict, expected_scope};
use crate::synthetic::{ChangeReport, GroupSpec, group_id};

use super::chaos_cycle::{changed_users, chaos_cycle, leave_out, live_users, revoked_tenants};
use super::coordinators::Coordinators;
use super::report::{
    ChangesDone, CycleMeasure, PeakMemory, ScenarioReport, ScimTraffic, peak_rss_mib,
};
use super::{Scenario, ScopeSpec, TenantEntry, latency};

/// Tenants synced at once in a cycle (`DIRSYNC_MAX_CONCURRENT_RUNS`' default).
const MAX_CONCURRENT_RUNS: usize = 8;
/// Oracle problems kept per tenant in a report.
const PROBLEMS_KEPT: usize = 5;

/// A running cycle, for a progress display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub cycle: String,
    /// Users the coordinator has published so far (grows while the walks go on).
    pub users_published: u64,
    /// Users the workers have finished (the Redis counters).
    pub users_done: u64,
    pub tenants_done: usize,
    pub tenants: usize,
}

/// What the caller sees while the scenario runs.
pub trait Observer: Sync {
    /// A stage of setting up (starting the stack, generating a tenant).
    fn stage(&self, _what: &str) {}
    /// About every 250 ms while a cycle runs.
    fn progress(&self, _progress: &Progress) {}
    /// A cycle is done.
    fn cycle_done(&self, _measure: &CycleMeasure) {}
}

/// An observer that shows nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// One registered tenant of the scenario.
#[derive(Debug, Clone)]
pub struct HarnessTenant {
    /// The scenario entry's name (copies: `name-N`).
    pub name: String,
    /// Index of its entry in [`Scenario::tenants`].
    pub entry: usize,
    /// Position in the runner's tenant list.
    pub index: usize,
    pub pairing: Pairing,
    pub allow_hard_delete: bool,
    /// The chosen users and groups (Entra ids) when the tenant syncs a scope.
    pub scope: Option<Scope>,
}

/// Runs `scenario` end to end and removes every resource it made. Workers are `worker_exe
/// worker` processes (the demo or the harness binary); coordinator processes, when the
/// scenario has them, `worker_exe coordinator` (the harness binary). `capacity_ops_per_s` is the
/// simulator's raw capacity ([`super::capacity`]), when measured, for the shares.
pub async fn run(
    scenario: &Scenario,
    worker_exe: &Path,
    capacity_ops_per_s: Option<f64>,
    observer: &dyn Observer,
) -> anyhow::Result<ScenarioReport> {
    run_with(scenario, worker_exe, capacity_ops_per_s, observer, false).await
}

/// [`run`], with `allow_service_restarts`: whether chaos may restart RabbitMQ and
/// PostgreSQL for the whole machine (else such a scenario is refused before anything starts,
/// unless [`super::chaos::ALLOW_SERVICE_RESTARTS_ENV`] allows it).
pub async fn run_with(
    scenario: &Scenario,
    worker_exe: &Path,
    capacity_ops_per_s: Option<f64>,
    observer: &dyn Observer,
    allow_service_restarts: bool,
) -> anyhow::Result<ScenarioReport> {
    super::chaos::check_service_restarts(scenario, allow_service_restarts)?;
    observer.stage("starting the stack");
    let stack = start_stack(scenario)
        .await
        .context("starting the stack (are PostgreSQL, RabbitMQ and Redis running?)")?;
    // The stack builds its SCIM simulator itself: the random faults go in afterwards, before
    // any request.
    stack
        .scim
        .set_faults(scenario.fleet.scim.faults(scenario.seed));
    let result = run_on(&stack, scenario, worker_exe, capacity_ops_per_s, observer).await;
    stack.shutdown().await?;
    result
}

async fn start_stack(scenario: &Scenario) -> anyhow::Result<Stack> {
    let fleet = &scenario.fleet;
    // The stack's own first tenant is left empty and never synced: the scenario's tenants
    // are all registered alike, with add_tenant_with.
    let opts = StackOptions {
        page_size: fleet.graph.page_size,
        scim_latency: Duration::from_millis(fleet.scim.latency_ms),
        scim_latency_jitter: Duration::from_millis(fleet.scim.latency_jitter_ms),
        graph_latency: Duration::from_millis(fleet.graph.latency_ms),
        graph: GraphSimConfig {
            throttling: fleet.graph.throttling,
            ru_budget_per_10s: fleet.graph.ru_budget_per_10s,
            fail_every: fleet.graph.fail_every,
            ..GraphSimConfig::default()
        },
        scim_rate: fleet.scim.rate_limit_per_org,
        scim_bulk: fleet.scim.bulk,
        scim_fail_every: fleet.scim.fail_every,
        ..StackOptions::new(&format!("harness {}", scenario.name), 0)
    };
    Stack::start(&opts).await
}

async fn run_on(
    stack: &Stack,
    scenario: &Scenario,
    exe: &Path,
    capacity: Option<f64>,
    observer: &dyn Observer,
) -> anyhow::Result<ScenarioReport> {
    let tenants = register(stack, scenario, observer).await?;
    for _ in 0..scenario.fleet.workers {
        stack.spawn_worker(exe)?;
    }
    let chaos = scenario.cycles.iter().any(|c| c.chaos.is_some());
    let mut coordinators = None;
    if scenario.fleet.coordinators > 0 {
        observer.stage("starting the coordinators");
        coordinators = Some(
            Coordinators::start(stack, exe, scenario.fleet.coordinators, &tenants, chaos)
                .await
                .context("starting the coordinator processes")?,
        );
    }
    let report = ScenarioReport {
        scenario: scenario.name.clone(),
        tenants: tenants.len(),
        workers: scenario.fleet.workers,
        coordinators: scenario.fleet.coordinators,
        scim_capacity_ops_per_s: capacity,
        cycles: Vec::new(),
    };
    let result = cycles(
        stack,
        scenario,
        &tenants,
        exe,
        coordinators.as_ref(),
        report,
        capacity,
        observer,
    )
    .await;
    // Before the stack goes: the processes hold connections to its database.
    if let Some(coordinators) = coordinators {
        coordinators.stop().await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn cycles(
    stack: &Stack,
    scenario: &Scenario,
    tenants: &[HarnessTenant],
    exe: &Path,
    coordinators: Option<&Coordinators>,
    mut report: ScenarioReport,
    capacity: Option<f64>,
    observer: &dyn Observer,
) -> anyhow::Result<ScenarioReport> {
    // Tenants whose Webex token a chaos cycle revoked: it stays revoked, so every later
    // cycle leaves them out (positions in `tenants`).
    let mut set_aside: Vec<usize> = Vec::new();
    for (i, spec) in scenario.cycles.iter().enumerate() {
        let mut changes = ChangesDone::default();
        // When each tenant's change happened; `None`: unchanged (the cycle's start counts).
        let mut changed_at = vec![None; tenants.len()];
        if let Some(step) = &spec.changes {
            let (users, groups) = step.split();
            for t in tenants {
                let named = |n: &String| *n == scenario.tenants[t.entry].name;
                if spec
                    .tenants
                    .as_ref()
                    .is_none_or(|names| names.iter().any(named))
                {
                    let done = stack
                        .graph
                        .apply_step(&t.pairing.entra_tenant, &users, &groups)?;
                    add_changes(&mut changes, &done);
                    changed_at[t.index] = Some(Utc::now());
                }
            }
        }
        let revoked = revoked_tenants(spec.chaos.as_ref(), scenario, tenants);
        let left_out: Vec<usize> = (set_aside.iter().copied())
            .chain(revoked.iter().map(|t| t.index))
            .collect();
        let (active, changed_at) = leave_out(tenants, &changed_at, &left_out);
        let run_cycle = cycle(
            stack,
            scenario,
            &active,
            coordinators,
            &changed_at,
            &spec.name,
            observer,
        );
        let mut measure = match &spec.chaos {
            None => run_cycle.await,
            Some(chaos) => {
                let expected = if i == 0 {
                    live_users(stack, &active)?
                } else {
                    changed_users(&changes)
                };
                chaos_cycle(
                    stack,
                    &active,
                    &revoked,
                    exe,
                    coordinators,
                    chaos,
                    expected,
                    run_cycle,
                )
                .await
            }
        }
        .with_context(|| format!("cycle {i} ({})", spec.name))?;
        set_aside.extend(revoked.iter().map(|t| t.index));
        measure.changes = changes;
        measure.capacity_share = capacity.filter(|c| *c > 0.0).map(|c| {
            let ops = measure.scim.create + measure.scim.patch + measure.scim.delete;
            ops as f64 / (measure.wall_ms.max(1) as f64 / 1000.0) / c
        });
        measure.peak_memory = PeakMemory {
            harness_mib: peak_rss_mib(std::process::id()).unwrap_or(0),
            workers_mib: stack
                .worker_pids()
                .iter()
                .map(|&p| peak_rss_mib(p))
                .collect(),
            coordinators_mib: match coordinators {
                Some(c) => c.pids().await.iter().map(|&p| peak_rss_mib(p)).collect(),
                None => Vec::new(),
            },
        };
        observer.cycle_done(&measure);
        report.cycles.push(measure);
    }
    Ok(report)
}

/// Registers every tenant of the scenario, copies included, each on its own domain.
pub async fn register(
    stack: &Stack,
    scenario: &Scenario,
    observer: &dyn Observer,
) -> anyhow::Result<Vec<HarnessTenant>> {
    let mut out = Vec::new();
    for (entry, t) in scenario.tenants.iter().enumerate() {
        for copy in 0..t.copies {
            let name = if t.copies == 1 {
                t.name.clone()
            } else {
                format!("{}-{}", t.name, copy + 1)
            };
            observer.stage(&format!("generating tenant {name}"));
            let pairing = register_one(stack, t, &name, out.len(), copy).await?;
            let scope = t.scope.as_ref().map(|s| chosen(t, s, copy));
            if let Some(scope) = &scope {
                TenantStore::new(stack.env.pool.clone())
                    .set_scope(pairing.tenant_id, scope.clone())
                    .await?;
            }
            out.push(HarnessTenant {
                name,
                entry,
                index: out.len(),
                pairing,
                allow_hard_delete: t.allow_hard_delete,
                scope,
            });
        }
    }
    Ok(out)
}

async fn register_one(
    stack: &Stack,
    t: &TenantEntry,
    name: &str,
    index: usize,
    copy: usize,
) -> anyhow::Result<Pairing> {
    if let Some(hand) = &t.hand_written {
        let (users, groups) = hand.build();
        return stack
            .add_tenant_with(name, &hand.domain, t.allow_hard_delete, |graph, spec| {
                graph.add_tenant_from(spec, users, groups)
            })
            .await;
    }
    let syn = t.synthetic.as_ref().context("a tenant without a source")?;
    // userNames are unique across Webex: every tenant gets a domain of its own.
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let domain = format!("t{index}-{slug}.example");
    let (seed, users) = (syn.seed + copy as u64, syn.users);
    let groups: GroupSpec = syn.groups.map(Into::into).unwrap_or_default();
    stack
        .add_tenant_with(name, &domain, t.allow_hard_delete, |graph, spec| {
            graph.add_tenant_with_groups(
                TenantSpec {
                    seed,
                    users,
                    ..spec
                },
                groups,
            )
        })
        .await
}

/// One sync of every tenant, measured and judged.
async fn cycle(
    stack: &Stack,
    scenario: &Scenario,
    tenants: &[HarnessTenant],
    coordinators: Option<&Coordinators>,
    changed_at: &[Option<DateTime<Utc>>],
    name: &str,
    observer: &dyn Observer,
) -> anyhow::Result<CycleMeasure> {
    let before: Vec<_> = tenants
        .iter()
        .map(|t| stack.scim.counters(&t.pairing.org_id))
        .collect();
    let started_at = Utc::now();
    let (users, groups, wall_ms, runs_by_coordinator) = match coordinators {
        Some(c) => {
            let runs = c.cycle(stack, tenants, name, observer).await?;
            let by = runs.runs_by_coordinator(c.pids().await.len());
            (runs.users, runs.groups, runs.wall_ms, by)
        }
        None => {
            let (users, groups, wall_ms) = in_process(stack, tenants, name, observer).await?;
            (users, groups, wall_ms, Vec::new())
        }
    };
    let secs = (wall_ms as f64 / 1000.0).max(0.001);
    let mut scim = ScimTraffic::default();
    let mut busiest = 0;
    let mut converged = true;
    let mut problems = Vec::new();
    for (t, before) in tenants.iter().zip(&before) {
        let traffic = ScimTraffic::between(before, &stack.scim.counters(&t.pairing.org_id));
        busiest = busiest.max(traffic.requests);
        scim.add(&traffic);
        let verdict = verdict(stack, t)?;
        converged &= verdict.converged;
        problems.extend(
            verdict
                .problems
                .iter()
                .take(PROBLEMS_KEPT)
                .map(|p| format!("{}: {p}", t.name)),
        );
    }
    let synced_objects = users.synced + groups.synced;
    let orgs: Vec<_> = tenants
        .iter()
        .zip(changed_at)
        .map(|(t, at)| (t.pairing.org_id.clone(), at.unwrap_or(started_at)))
        .collect();
    let change_to_write = latency::measure(&stack.scim, &orgs, started_at);
    Ok(CycleMeasure {
        cycle: name.to_string(),
        tenants: tenants.len(),
        changes: ChangesDone::default(),
        wall_ms,
        users,
        groups,
        users_per_s: users.total() as f64 / secs,
        requests_per_synced_object: (synced_objects > 0)
            .then(|| scim.requests as f64 / synced_objects as f64),
        share_429: if scim.requests == 0 {
            0.0
        } else {
            scim.throttled_429 as f64 / scim.requests as f64
        },
        rate_limit_share: scenario
            .fleet
            .scim
            .rate_limit_per_org
            .map(|limit| busiest as f64 / secs / f64::from(limit)),
        capacity_share: None,
        change_to_write,
        scim,
        peak_memory: PeakMemory::default(),
        runs_by_coordinator,
        converged,
        problems,
        chaos: None,
    })
}

/// Every tenant synced by the stack's coordinator in this process, at most
/// [`MAX_CONCURRENT_RUNS`] at once: (users, groups, wall time in ms).
async fn in_process(
    stack: &Stack,
    tenants: &[HarnessTenant],
    name: &str,
    observer: &dyn Observer,
) -> anyhow::Result<(Counts, GroupCounts, u64)> {
    let channels: Vec<_> = tenants
        .iter()
        .map(|_| watch::channel(RunProgress::default()))
        .collect();
    let done = AtomicUsize::new(0);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let syncs = futures_util::stream::iter(tenants.iter().zip(&channels))
        .map(|(t, (tx, _))| {
            let (done, cancel) = (&done, &cancel);
            async move {
                let outcome = stack
                    .runner
                    .sync_tenant(t.pairing.tenant_id, Some(tx), cancel)
                    .await
                    .with_context(|| format!("syncing tenant {}", t.name));
                done.fetch_add(1, Ordering::Relaxed);
                outcome
            }
        })
        .buffer_unordered(MAX_CONCURRENT_RUNS)
        .collect::<Vec<_>>();
    let monitor = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut p = Progress {
                cycle: name.to_string(),
                tenants: tenants.len(),
                tenants_done: done.load(Ordering::Relaxed),
                ..Progress::default()
            };
            for (_, rx) in &channels {
                let run = rx.borrow().clone();
                p.users_published += run.users_published;
                if let Some(id) = run.run_id {
                    p.users_done += stack.redis_counts(id).await.map_or(0, |c| c.total());
                }
            }
            observer.progress(&p);
        }
    };
    let outcomes = tokio::select! {
        outcomes = syncs => outcomes,
        _ = monitor => unreachable!("the monitor loops until the syncs end"),
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    let (mut users, mut groups) = (Counts::default(), GroupCounts::default());
    for outcome in outcomes {
        let outcome = outcome?;
        users.synced += outcome.counts.synced;
        users.skipped += outcome.counts.skipped;
        users.failed += outcome.counts.failed;
        groups.add(outcome.groups);
    }
    Ok((users, groups, wall_ms))
}

/// A scope spec resolved to Entra ids for copy `copy` of the entry `t`.
fn chosen(t: &TenantEntry, spec: &ScopeSpec, copy: usize) -> Scope {
    let (users, groups) = match (&t.hand_written, &t.synthetic) {
        (Some(hand), _) => (
            spec.users.iter().map(|k| hand.user_id(k)).collect(),
            spec.groups.iter().map(|k| hand.group_id(k)).collect(),
        ),
        (None, Some(syn)) => (
            Vec::new(),
            (0..spec.first_groups)
                .map(|i| group_id(syn.seed + copy as u64, i))
                .collect(),
        ),
        (None, None) => (Vec::new(), Vec::new()),
    };
    Scope {
        all: false,
        users,
        groups,
        nested: spec.nested,
        ..Scope::default()
    }
}

/// The oracle's verdict on one tenant's org, streamed over both simulators; for a tenant
/// with a scope, against the users the oracle's own traversal of the groups puts in it.
pub fn verdict(stack: &Stack, t: &HarnessTenant) -> anyhow::Result<Verdict> {
    let in_scope = match &t.scope {
        Some(scope) => Some(expected_scope(
            &stack.graph.groups(&t.pairing.entra_tenant)?,
            &scope.users,
            &scope.groups,
            scope.nested,
        )),
        None => None,
    };
    Ok(stack.graph.with_users(&t.pairing.entra_tenant, |users| {
        let mut oracle = Oracle::new(
            users.iter().map(|u| (&u.user, u.state)),
            t.allow_hard_delete,
        );
        if let Some(in_scope) = in_scope {
            oracle = oracle.with_scope(in_scope);
        }
        stack
            .scim
            .for_each_user(&t.pairing.org_id, |w| oracle.webex_user(&w));
        oracle.verdict()
    })?)
}

fn add_changes(c: &mut ChangesDone, r: &ChangeReport) {
    c.updates += r.updates;
    c.soft_deletes += r.soft_deletes;
    c.hard_deletes += r.hard_deletes;
    c.new_users += r.new_users;
    c.restores += r.restores;
    c.disables += r.disables;
    c.members_added += r.members_added;
    c.members_removed += r.members_removed;
    c.groups_created += r.groups_created;
    c.groups_deleted += r.groups_deleted;
}
