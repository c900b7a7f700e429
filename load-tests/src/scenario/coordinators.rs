//! Coordinators as separate processes (`fleet.coordinators` > 0): `harness coordinator`
//! processes, each running the scheduler and admin API that `dirsync serve` runs, share the
//! scenario's tenants through the leases in PostgreSQL. The harness drives them as an
//! operator would: auto-sync off on every tenant, then each cycle one "sync now" per tenant
//! through the processes' admin API (`POST /tenants/{id}/sync-now`), and it waits for every tenant's run
//! of the cycle to complete by reading the `runs` table. Nothing bypasses the scheduler: the
//! runs are claimed, leased and run by the processes alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use dirsync_coordinator::TenantStore;
use dirsync_proto::{Counts, GroupCounts, RunId, TenantId};

use crate::fleet::{Stack, spawn_process};

use super::run::{HarnessTenant, Observer, Progress};

/// How often a waiting cycle reads the runs table (and the leases: a run shorter than this
/// may go unattributed).
const POLL: Duration = Duration::from_millis(100);
/// How long a coordinator process has to answer `/healthz` after it starts.
const STARTUP: Duration = Duration::from_secs(60);
/// With chaos, how long the runs table may stay unreadable (PostgreSQL restarting) before
/// the cycle gives up.
const DB_OUTAGE: Duration = Duration::from_secs(120);

/// The running coordinator processes. Their list is behind a lock so the chaos injector can
/// kill and replace one while a cycle waits on them.
pub struct Coordinators {
    procs: Mutex<Procs>,
    exe: PathBuf,
    env: Vec<(&'static str, String)>,
    /// With chaos: a process that exits on its own is started again and counted (instead of
    /// ending the cycle), and the cycle rides out database outages.
    chaos: bool,
    /// Processes that exited on their own and were started again, since the last
    /// [`Coordinators::take_uncaused_restarts`].
    uncaused: AtomicUsize,
}

#[derive(Default)]
struct Procs {
    children: Vec<Child>,
    pids: Vec<u32>,
    /// Each process's admin API (`…/api/v1`).
    api_urls: Vec<String>,
    /// Each process's `/healthz`.
    health: Vec<String>,
}

impl Coordinators {
    /// Turns auto-sync off on every tenant of the stack (its own unused one included: runs
    /// happen only when a cycle asks for them), then starts `count` coordinator processes
    /// (`exe coordinator`) on the stack's resources and waits until each serves `/healthz`.
    /// `chaos`: the scenario injects faults; the processes then hold leases of 3 s (a killed
    /// one's tenants are taken over in seconds, not the default 2 minutes).
    pub async fn start(
        stack: &Stack,
        exe: &Path,
        count: usize,
        tenants: &[HarnessTenant],
        chaos: bool,
    ) -> anyhow::Result<Coordinators> {
        let store = TenantStore::new(stack.env.pool.clone());
        store.set_auto_sync(stack.tenant_id, false).await?;
        for t in tenants {
            store.set_auto_sync(t.pairing.tenant_id, false).await?;
        }
        let mut env = stack.env.process_env();
        if chaos {
            env.push(("DIRSYNC_LEASE_SECS", "3".to_string()));
        }
        let coordinators = Coordinators {
            procs: Mutex::new(Procs::default()),
            exe: exe.to_path_buf(),
            env,
            chaos,
            uncaused: AtomicUsize::new(0),
        };
        {
            let mut procs = coordinators.procs.lock().await;
            for i in 0..count {
                let (child, pid, api, health) = coordinators.spawn(i)?;
                procs.children.push(child);
                procs.pids.push(pid);
                procs.api_urls.push(api);
                procs.health.push(health);
            }
            for i in 0..count {
                coordinators.wait_healthy(&mut procs, i).await?;
            }
        }
        Ok(coordinators)
    }

    /// Starts process number `i`: the child, its pid, admin API and `/healthz` URLs.
    fn spawn(&self, i: usize) -> anyhow::Result<(Child, u32, String, String)> {
        // A free port of its own for the admin API and /healthz (the port is let go
        // before the process binds it; nothing else on this machine races for it).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let (child, pid) = spawn_process(
            &self.exe,
            "coordinator",
            "DIRSYNC_COORDINATOR_LOG",
            |command| {
                command
                    .envs(self.env.clone())
                    .env("DIRSYNC_HTTP_ADDR", addr.to_string())
                    // The lease owner is `$HOSTNAME:pid`: readable in the tenants table.
                    .env("HOSTNAME", format!("harness-coordinator-{i}"));
            },
        )?;
        Ok((
            child,
            pid,
            format!("http://{addr}{}", dirsync_coordinator::api::BASE),
            format!("http://{addr}/healthz"),
        ))
    }

    async fn wait_healthy(&self, procs: &mut Procs, i: usize) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + STARTUP;
        let url = procs.health[i].clone();
        loop {
            if let Some(status) = procs.children[i].try_wait()? {
                bail!("coordinator process {i} exited ({status}); see its log on stderr");
            }
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("coordinator at {url} did not come up within {STARTUP:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Process ids, in start order (a replaced process's slot has the new pid).
    pub async fn pids(&self) -> Vec<u32> {
        self.procs.lock().await.pids.clone()
    }

    /// Kills process `i` with SIGKILL, as a crash would, and starts another in its slot; the
    /// new process's pid once it serves `/healthz`.
    pub async fn kill_and_restart(&self, i: usize) -> anyhow::Result<u32> {
        let mut procs = self.procs.lock().await;
        procs.children[i].start_kill()?;
        procs.children[i].wait().await?;
        self.replace(&mut procs, i).await
    }

    async fn replace(&self, procs: &mut Procs, i: usize) -> anyhow::Result<u32> {
        let (child, pid, api, health) = self.spawn(i)?;
        procs.children[i] = child;
        procs.pids[i] = pid;
        procs.api_urls[i] = api;
        procs.health[i] = health;
        self.wait_healthy(procs, i).await?;
        Ok(pid)
    }

    /// Restarts of processes that exited on their own since the last call.
    pub fn take_uncaused_restarts(&self) -> usize {
        self.uncaused.swap(0, Ordering::Relaxed)
    }

    /// An error when a coordinator process has exited; with chaos, the process is started
    /// again and counted instead.
    async fn check_alive(&self) -> anyhow::Result<()> {
        let mut procs = self.procs.lock().await;
        for i in 0..procs.children.len() {
            if let Some(status) = procs.children[i].try_wait()? {
                if !self.chaos {
                    bail!("coordinator process {i} exited ({status}); see its log on stderr");
                }
                tracing::warn!(process = i, %status, "coordinator exited on its own; restarting it");
                self.uncaused.fetch_add(1, Ordering::Relaxed);
                self.replace(&mut procs, i).await?;
            }
        }
        Ok(())
    }

    /// SIGTERM to every process (they finish their runs' bookkeeping and release their
    /// leases), then SIGKILL to any still running after a grace period.
    pub async fn stop(self) {
        let procs = self.procs.into_inner();
        for pid in &procs.pids {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        for mut child in procs.children {
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    /// Asks for one run of every tenant ("sync now" through the admin API) and waits until
    /// each has completed, reading the runs table. A run that fails or waits for approval
    /// ends the cycle with an error, as an in-process run's error does.
    pub async fn cycle(
        &self,
        stack: &Stack,
        tenants: &[HarnessTenant],
        name: &str,
        observer: &dyn Observer,
    ) -> anyhow::Result<CycleRuns> {
        let pool = &stack.env.pool;
        let ids: Vec<uuid::Uuid> = tenants.iter().map(|t| t.pairing.tenant_id.0).collect();
        // The database's clock, like the runs' own timestamps.
        let asked_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(pool).await?;
        // Admin tokens live in the database: the stack's is good on every coordinator. The
        // requests go round the processes, as operators behind a load balancer would send them.
        let client = reqwest::Client::new();
        let api_urls = self.procs.lock().await.api_urls.clone();
        for (t, api) in tenants.iter().zip(api_urls.iter().cycle()) {
            let response = client
                .post(format!("{api}/tenants/{}/sync-now", t.pairing.tenant_id))
                .bearer_auth(stack.api_token.expose_secret())
                .send()
                .await
                .with_context(|| format!("sync-now of tenant {} at {api}", t.name))?;
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                bail!("sync-now of tenant {} answered {status}: {body}", t.name);
            }
        }
        let index: HashMap<TenantId, usize> = tenants
            .iter()
            .map(|t| (t.pairing.tenant_id, t.index))
            .collect();
        let mut ran_by: Vec<Option<usize>> = vec![None; tenants.len()];
        let mut outage_since: Option<tokio::time::Instant> = None;
        loop {
            self.check_alive().await?;
            let pids = self.pids().await;
            let (held, rows) = match read_runs(pool, &ids, asked_at).await {
                Ok(read) => {
                    outage_since = None;
                    read
                }
                // PostgreSQL restarting under chaos: wait it out, within a bound.
                Err(e) if self.chaos && outage_since.is_none_or(|t| t.elapsed() < DB_OUTAGE) => {
                    outage_since.get_or_insert_with(tokio::time::Instant::now);
                    tracing::debug!(error = %e, "runs table unreadable; retrying");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Err(e) => return Err(e).context("reading the runs of the cycle"),
            };
            for (tenant, owner) in held {
                let pid = owner.rsplit(':').next().and_then(|p| p.parse::<u32>().ok());
                if let (Some(&i), Some(c)) = (
                    index.get(&TenantId(tenant)),
                    pid.and_then(|p| pids.iter().position(|&q| q == p)),
                ) {
                    ran_by[i] = Some(c);
                }
            }
            let mut done = CycleRuns {
                ran_by: ran_by.clone(),
                ..CycleRuns::default()
            };
            let mut progress = Progress {
                cycle: name.to_string(),
                tenants: tenants.len(),
                ..Progress::default()
            };
            let mut last_end = asked_at;
            for row in &rows {
                let tenant = index.get(&TenantId(row.tenant_id)).map(|&i| &tenants[i]);
                let tenant_name = tenant.map_or("?", |t| t.name.as_str());
                match row.state.as_str() {
                    "completed" => {
                        let counts = row.counts();
                        progress.users_done += counts.total();
                        done.users.synced += counts.synced;
                        done.users.skipped += counts.skipped;
                        done.users.failed += counts.failed;
                        done.groups.add(row.groups());
                        done.completed += 1;
                        last_end = last_end.max(row.finished_at.unwrap_or(last_end));
                    }
                    "failed" => bail!(
                        "run {} of tenant {tenant_name} failed: {}",
                        row.id,
                        row.error.as_deref().unwrap_or("no error recorded")
                    ),
                    "awaiting_approval" => bail!(
                        "run {} of tenant {tenant_name} is held by the deletion guard",
                        row.id
                    ),
                    _ => {
                        progress.users_done += stack
                            .redis_counts(RunId(row.id))
                            .await
                            .map_or(0, |c| c.total());
                    }
                }
            }
            progress.tenants_done = done.completed;
            // The coordinator's published count is not in the database: the bar shows done.
            progress.users_published = progress.users_done;
            observer.progress(&progress);
            if done.completed == tenants.len() {
                done.wall_ms = (last_end - asked_at).num_milliseconds().max(0) as u64;
                return Ok(done);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Who holds each tenant's lease now (the coordinator running its run of this cycle:
/// auto-sync is off, so nothing else makes a tenant due), and the cycle's runs.
async fn read_runs(
    pool: &sqlx::PgPool,
    ids: &[uuid::Uuid],
    asked_at: DateTime<Utc>,
) -> Result<(Vec<(uuid::Uuid, String)>, Vec<RunRow>), sqlx::Error> {
    let held = sqlx::query_as(
        "SELECT id, lease_owner FROM tenants WHERE id = ANY($1) AND lease_owner IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let rows = sqlx::query_as(
        "SELECT tenant_id, id, state, synced, skipped, failed, groups_synced, \
         groups_pending, groups_failed, error, finished_at FROM runs \
         WHERE tenant_id = ANY($1) AND started_at >= $2 AND kind <> 'on_demand'",
    )
    .bind(ids)
    .bind(asked_at)
    .fetch_all(pool)
    .await?;
    Ok((held, rows))
}

/// One cycle's runs, as the runs table has them.
#[derive(Debug, Clone, Default)]
pub struct CycleRuns {
    pub users: Counts,
    pub groups: GroupCounts,
    /// From the sync-now requests to the end of the last run (the database's clock).
    pub wall_ms: u64,
    pub completed: usize,
    /// Per tenant (in the runner's order), the coordinator process seen holding its lease
    /// during the cycle; `None` when the run was too short to be seen.
    pub ran_by: Vec<Option<usize>>,
}

impl CycleRuns {
    /// How many tenants' runs each of `coordinators` processes was seen running.
    pub fn runs_by_coordinator(&self, coordinators: usize) -> Vec<usize> {
        let mut by = vec![0; coordinators];
        for c in self.ran_by.iter().flatten() {
            if let Some(n) = by.get_mut(*c) {
                *n += 1;
            }
        }
        by
    }
}

#[derive(sqlx::FromRow)]
struct RunRow {
    tenant_id: uuid::Uuid,
    id: uuid::Uuid,
    state: String,
    synced: Option<i64>,
    skipped: Option<i64>,
    failed: Option<i64>,
    groups_synced: Option<i64>,
    groups_pending: Option<i64>,
    groups_failed: Option<i64>,
    error: Option<String>,
    finished_at: Option<DateTime<Utc>>,
}

impl RunRow {
    fn counts(&self) -> Counts {
        Counts {
            synced: count(self.synced),
            skipped: count(self.skipped),
            failed: count(self.failed),
        }
    }

    fn groups(&self) -> GroupCounts {
        GroupCounts {
            synced: count(self.groups_synced),
            pending: count(self.groups_pending),
            failed: count(self.groups_failed),
        }
    }
}

/// A count column of `runs`: unset (a run still going) and negative ones are 0.
fn count(v: Option<i64>) -> u64 {
    v.unwrap_or(0).max(0) as u64
}
