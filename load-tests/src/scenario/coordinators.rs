//! Coordinators as separate processes (`fleet.coordinators` > 0): `harness coordinator`
//! processes, each running the scheduler and admin API that `dirsync serve` runs, share the
//! scenario's tenants through the leases in PostgreSQL. The harness drives them as an
//! operator would: auto-sync off on every tenant, then each cycle one "sync now" per tenant
//! through the processes' admin API (`POST /tenants/{id}/sync-now`), and it waits for every tenant's run
//! of the cycle to complete by reading the `runs` table. Nothing bypasses the scheduler: the
//! runs are claimed, leased and run by the processes alone.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::process::{Child, Command};

use dirsync_coordinator::TenantStore;
use dirsync_proto::{Counts, GroupCounts, RunId, TenantId};

use crate::fleet::{Stack, spawn_process};

use super::run::{HarnessTenant, Observer, Progress};

/// How often a waiting cycle reads the runs table (and the leases: a run shorter than this
/// may go unattributed).
const POLL: Duration = Duration::from_millis(100);
/// How long a coordinator process has to answer `/healthz` after it starts.
const STARTUP: Duration = Duration::from_secs(60);

/// The running coordinator processes.
pub struct Coordinators {
    children: Vec<Child>,
    pids: Vec<u32>,
    /// Each process's admin API (`…/api/v1`).
    api_urls: Vec<String>,
}

impl Coordinators {
    /// Turns auto-sync off on every tenant of the stack (its own unused one included: runs
    /// happen only when a cycle asks for them), then starts `count` coordinator processes
    /// (`exe coordinator`) on the stack's resources and waits until each serves `/healthz`.
    pub async fn start(
        stack: &Stack,
        exe: &Path,
        count: usize,
        tenants: &[HarnessTenant],
    ) -> anyhow::Result<Coordinators> {
        let store = TenantStore::new(stack.env.pool.clone());
        store.set_auto_sync(stack.tenant_id, false).await?;
        for t in tenants {
            store.set_auto_sync(t.pairing.tenant_id, false).await?;
        }
        let mut coordinators = Coordinators {
            children: Vec::new(),
            pids: Vec::new(),
            api_urls: Vec::new(),
        };
        let mut health = Vec::new();
        for i in 0..count {
            // A free port of its own for the admin API and /healthz (the port is let go
            // before the process binds it; nothing else on this machine races for it).
            let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            let (child, pid) =
                spawn_process(exe, "coordinator", "DIRSYNC_COORDINATOR_LOG", |command| {
                    command
                        .envs(stack.env.process_env())
                        .env("DIRSYNC_HTTP_ADDR", addr.to_string())
                        // The lease owner is `$HOSTNAME:pid`: readable in the tenants table.
                        .env("HOSTNAME", format!("harness-coordinator-{i}"));
                })?;
            coordinators.pids.push(pid);
            coordinators.children.push(child);
            health.push(format!("http://{addr}/healthz"));
            coordinators
                .api_urls
                .push(format!("http://{addr}{}", dirsync_coordinator::api::BASE));
        }
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + STARTUP;
        for url in &health {
            loop {
                coordinators.check_alive()?;
                if client
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("coordinator at {url} did not come up within {STARTUP:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(coordinators)
    }

    /// Process ids, in start order.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// An error when a coordinator process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Some(status) = child.try_wait()? {
                bail!("coordinator process {i} exited ({status}); see its log on stderr");
            }
        }
        Ok(())
    }

    /// SIGTERM to every process (they finish their runs' bookkeeping and release their
    /// leases), then SIGKILL to any still running after a grace period.
    pub async fn stop(self) {
        for pid in &self.pids {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        for mut child in self.children {
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
        &mut self,
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
        for (t, api) in tenants.iter().zip(self.api_urls.iter().cycle()) {
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
        loop {
            self.check_alive()?;
            // Who holds each tenant now: the coordinator running its run of this cycle
            // (auto-sync is off, so nothing else makes a tenant due).
            let held: Vec<(uuid::Uuid, String)> = sqlx::query_as(
                "SELECT id, lease_owner FROM tenants WHERE id = ANY($1) AND lease_owner IS NOT NULL",
            )
            .bind(&ids)
            .fetch_all(pool)
            .await?;
            for (tenant, owner) in held {
                let pid = owner.rsplit(':').next().and_then(|p| p.parse::<u32>().ok());
                if let (Some(&i), Some(c)) = (
                    index.get(&TenantId(tenant)),
                    pid.and_then(|p| self.pids.iter().position(|&q| q == p)),
                ) {
                    ran_by[i] = Some(c);
                }
            }
            let rows: Vec<RunRow> = sqlx::query_as(
                "SELECT tenant_id, id, state, synced, skipped, failed, groups_synced, \
                 groups_pending, groups_failed, error, finished_at FROM runs \
                 WHERE tenant_id = ANY($1) AND started_at >= $2 AND kind <> 'on_demand'",
            )
            .bind(&ids)
            .bind(asked_at)
            .fetch_all(pool)
            .await?;
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
