//! The chaos injector: runs beside a cycle and injects the faults of its `chaos` section
//! ([`super::chaos`]) at their points of progress, read from PostgreSQL's `batch_results`
//! (not Redis: a flush would move it backwards). It also watches the workers: one that exits
//! without the harness having killed it is started again and counted, so a crash loop fails
//! the verdict instead of hiding behind a restart. What it did goes to
//! [`super::chaos_verdict`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::fleet::Stack;

use super::chaos::{ChaosSpec, FaultKind};
use super::coordinators::Coordinators;

/// How often the injector looks at the cycle's progress.
const TICK: Duration = Duration::from_millis(100);
/// The machine's RabbitMQ restart: the node stays up, the broker application restarts, every
/// connection drops.
const RESTART_RABBITMQ: &str = "rabbitmqctl stop_app && rabbitmqctl start_app";
/// The machine's PostgreSQL restart (Debian's cluster wrapper, without systemd).
const RESTART_POSTGRESQL: &str = "pg_ctlcluster --skip-systemctl-redirect 15 main restart";

/// One fault of the cycle and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultOutcome {
    pub fault: FaultKind,
    /// Whether it fired at all (a fault the cycle ended before did not).
    pub injected: bool,
    /// Whether what it must leave true held (the SIGTERM'd worker exited in time and
    /// cleanly, the service command succeeded, the coordinator was killed mid-walk).
    pub ok: bool,
    /// Users recorded in `batch_results` for the cycle when it fired.
    pub at_users_done: Option<u64>,
    pub detail: String,
}

/// The coordinator kill: which run was enumerating in the killed process.
#[derive(Debug, Clone, Serialize)]
pub struct KilledRun {
    pub tenant_id: uuid::Uuid,
    pub run_id: uuid::Uuid,
    /// Batches it had published when its coordinator died.
    pub batches_published: i32,
}

/// What the injector did during one cycle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChaosLog {
    pub faults: Vec<FaultOutcome>,
    pub killed_run: Option<KilledRun>,
    /// Workers that exited without the harness killing them (started again).
    pub uncaused_worker_restarts: usize,
}

/// What the injector works on.
pub struct Injector<'a> {
    pub stack: &'a Stack,
    pub coordinators: Option<&'a Coordinators>,
    /// The binary the workers run.
    pub exe: &'a Path,
    pub spec: &'a ChaosSpec,
    /// The scenario's tenants (dirsync ids).
    pub tenant_ids: Vec<uuid::Uuid>,
    /// The cycle's start by the database's clock: its runs started at or after it.
    pub since: DateTime<Utc>,
    /// Users the cycle is expected to see; faults fire at fractions of it.
    pub expected: u64,
}

impl Injector<'_> {
    /// Injects until `done` is cancelled (the cycle is over), then reports. An error only
    /// when a fault could not be carried out at all (a process that cannot be started).
    pub async fn run(self, done: CancellationToken) -> anyhow::Result<ChaosLog> {
        let planned = self.spec.progress_faults();
        let mut log = ChaosLog::default();
        let mut next = 0;
        let mut coordinator_pending = self.spec.kill_coordinator;
        let users_done = AtomicU64::new(0);
        loop {
            log.uncaused_worker_restarts += self.stack.respawn_exited_workers(self.exe)?;
            // Unreadable while PostgreSQL restarts: the last value holds.
            if let Ok(n) = self.users_done().await {
                users_done.fetch_max(n, Ordering::Relaxed);
            }
            let now_done = users_done.load(Ordering::Relaxed);
            if coordinator_pending && let Some(outcome) = self.kill_coordinator(&mut log).await? {
                coordinator_pending = false;
                log.faults.push(FaultOutcome {
                    at_users_done: Some(now_done),
                    ..outcome
                });
            }
            while next < planned.len()
                && now_done * (planned.len() as u64 + 1) >= self.expected * (next as u64 + 1)
            {
                let mut outcome = self.inject(planned[next]).await?;
                outcome.at_users_done = Some(now_done);
                log.faults.push(outcome);
                next += 1;
            }
            tokio::select! {
                () = done.cancelled() => break,
                () = tokio::time::sleep(TICK) => {}
            }
        }
        log.uncaused_worker_restarts += self.stack.respawn_exited_workers(self.exe)?;
        let missed = planned[next..]
            .iter()
            .copied()
            .chain(coordinator_pending.then_some(FaultKind::KillCoordinator));
        for fault in missed {
            log.faults.push(FaultOutcome {
                fault,
                injected: false,
                ok: false,
                at_users_done: None,
                detail: "the cycle ended before it fired".into(),
            });
        }
        Ok(log)
    }

    /// Users recorded for the cycle's runs so far.
    async fn users_done(&self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(b.synced + b.skipped + b.failed), 0)::bigint \
             FROM batch_results b JOIN runs r ON r.id = b.run_id \
             WHERE r.tenant_id = ANY($1) AND r.started_at >= $2 AND r.kind <> 'on_demand'",
        )
        .bind(&self.tenant_ids)
        .bind(self.since)
        .fetch_one(&self.stack.env.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    /// Kills the coordinator process running a run that is still enumerating (and has
    /// published at least two batches: mid-walk), if there is one now.
    async fn kill_coordinator(&self, log: &mut ChaosLog) -> anyhow::Result<Option<FaultOutcome>> {
        let Some(coordinators) = self.coordinators else {
            return Ok(None);
        };
        let found: Option<(uuid::Uuid, uuid::Uuid, i32, String)> = match sqlx::query_as(
            "SELECT r.tenant_id, r.id, r.batches_published, t.lease_owner FROM runs r \
             JOIN tenants t ON t.id = r.tenant_id \
             WHERE r.tenant_id = ANY($1) AND r.started_at >= $2 AND r.kind <> 'on_demand' \
             AND r.state = 'enumerating' AND r.batches_published >= 2 \
             AND t.lease_owner IS NOT NULL LIMIT 1",
        )
        .bind(&self.tenant_ids)
        .bind(self.since)
        .fetch_optional(&self.stack.env.pool)
        .await
        {
            Ok(found) => found,
            Err(_) => return Ok(None),
        };
        let Some((tenant_id, run_id, batches_published, owner)) = found else {
            return Ok(None);
        };
        let pid = owner.rsplit(':').next().and_then(|p| p.parse::<u32>().ok());
        let pids = coordinators.pids().await;
        let Some(index) = pid.and_then(|p| pids.iter().position(|&q| q == p)) else {
            return Ok(None);
        };
        let new_pid = coordinators
            .kill_and_restart(index)
            .await
            .context("restarting a killed coordinator")?;
        log.killed_run = Some(KilledRun {
            tenant_id,
            run_id,
            batches_published,
        });
        Ok(Some(FaultOutcome {
            fault: FaultKind::KillCoordinator,
            injected: true,
            ok: true,
            at_users_done: None,
            detail: format!(
                "SIGKILL to coordinator {index} (pid {}) while run {run_id} was enumerating \
                 ({batches_published} batches published); restarted as pid {new_pid}",
                pids[index]
            ),
        }))
    }

    async fn inject(&self, fault: FaultKind) -> anyhow::Result<FaultOutcome> {
        let outcome = |ok: bool, detail: String| FaultOutcome {
            fault,
            injected: true,
            ok,
            at_users_done: None,
            detail,
        };
        let workers = self.stack.worker_count();
        Ok(match fault {
            FaultKind::KillWorker => {
                let i = fastrand::usize(..workers);
                let old = self.stack.worker_pids()[i];
                let new = self.stack.restart_worker(i, self.exe).await?;
                outcome(
                    true,
                    format!("SIGKILL to worker {i} (pid {old}); restarted as pid {new}"),
                )
            }
            FaultKind::SigtermWorker => {
                let i = fastrand::usize(..workers);
                let old = self.stack.worker_pids()[i];
                let bound = Duration::from_secs(self.spec.sigterm_bound_s);
                let (status, took) = self.stack.terminate_worker(i, bound).await?;
                let new = self.stack.spawn_worker_at(i, self.exe)?;
                let ok = status.is_some_and(|s| s.success());
                let how = match status {
                    Some(s) => format!("exited ({s}) after {} ms", took.as_millis()),
                    None => format!("still running after {bound:?}: killed"),
                };
                outcome(
                    ok,
                    format!("SIGTERM to worker {i} (pid {old}): {how}; restarted as pid {new}"),
                )
            }
            FaultKind::FlushRedis => {
                let deleted = self.flush_redis().await?;
                outcome(
                    true,
                    format!(
                        "deleted {deleted} keys under prefix {}",
                        self.stack.env.topology().prefix()
                    ),
                )
            }
            FaultKind::RestartRabbitmq => shell(RESTART_RABBITMQ).await.map_or_else(
                |e| outcome(false, format!("{RESTART_RABBITMQ}: {e}")),
                |d| outcome(true, d),
            ),
            FaultKind::RestartPostgresql => shell(RESTART_POSTGRESQL).await.map_or_else(
                |e| outcome(false, format!("{RESTART_POSTGRESQL}: {e}")),
                |d| outcome(true, d),
            ),
            FaultKind::KillCoordinator => unreachable!("fired on its own trigger"),
        })
    }

    /// Deletes every key under the scenario's own prefix (and only those): how many.
    async fn flush_redis(&self) -> anyhow::Result<usize> {
        let client = redis::Client::open(self.stack.env.redis_url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        // The prefix is the isolated resource's own; the `:` keeps a longer prefix that
        // merely starts alike out of the match.
        let pattern = format!("{}:*", self.stack.env.topology().prefix());
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for chunk in keys.chunks(500) {
            let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await?;
        }
        Ok(keys.len())
    }
}

/// Runs `command` with `sh -c`: how long it took, or its failure with its stderr.
async fn shell(command: &str) -> anyhow::Result<String> {
    let started = std::time::Instant::now();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .await?;
    if !out.status.success() {
        anyhow::bail!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(format!(
        "{command}: done in {} ms",
        started.elapsed().as_millis()
    ))
}
