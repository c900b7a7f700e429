//! The chaos injector: runs beside a cycle and injects the faults of its `chaos` section
//! ([`super::chaos`]) at their points of progress, read from PostgreSQL's `batch_results`
//! (not Redis: a flush would move it backwards). It also watches the workers: one that exits
//! without the harness having killed it is started again and counted, so a crash loop fails
//! the verdict instead of hiding behind a restart. What it did goes to
//! [`super::chaos_verdict`].
//!
//! A coordinator's SIGTERM holds the cycle's wait loop still ([`Hold`]) from the signal to
//! the process's replacement: that loop restarts any coordinator it finds exited, as a
//! crash. Meanwhile the injector reads the exit from `/proc` (the process stays a zombie
//! until it is reaped) and the leases from PostgreSQL before another process can take them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::fleet::Stack;

use super::chaos::{ChaosSpec, FaultKind};
use super::chaos_cycle::Hold;
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

/// The coordinator stopped with SIGTERM, and what it left behind.
#[derive(Debug, Clone, Serialize)]
pub struct SigtermedCoordinator {
    /// Its slot among the coordinator processes.
    pub index: usize,
    pub pid: u32,
    /// Its lease owner name, `{HOSTNAME}:{pid}` (as `tenants.lease_owner` shows it).
    pub owner: String,
    /// The run it was walking, as `kill_coordinator`'s.
    pub run: KilledRun,
    /// Tenants whose lease it held just before the SIGTERM (at least 1: the run's).
    pub leases_before: i64,
    /// Its exit in `waitpid` form (`/proc/<pid>/stat`); `None`: still running at the bound.
    pub wait_status: Option<i32>,
    /// From the SIGTERM to its exit (or to the bound).
    pub exit_ms: u64,
    /// Tenants whose lease still named it once it had exited (must be 0).
    pub leases_after: Option<i64>,
    /// From its exit to another process holding the run's tenant's lease; `None`: not seen
    /// within [`RESUME_WATCH`] (or the run was over).
    pub resumed_after_ms: Option<u64>,
    /// From its exit to when its lease on the run's tenant would have expired: a resumption
    /// sooner than that needed the lease released.
    pub lease_left_ms: i64,
    /// The process started in its slot.
    pub new_pid: u32,
}

/// What the injector did during one cycle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChaosLog {
    pub faults: Vec<FaultOutcome>,
    pub killed_run: Option<KilledRun>,
    pub sigtermed_coordinator: Option<SigtermedCoordinator>,
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
    /// Holds the cycle's wait loop still around a coordinator's SIGTERM.
    pub(super) hold: &'a Hold,
}

impl Injector<'_> {
    /// Injects until `done` is cancelled (the cycle is over), then reports. An error only
    /// when a fault could not be carried out at all (a process that cannot be started).
    pub async fn run(self, done: CancellationToken) -> anyhow::Result<ChaosLog> {
        let planned = self.spec.progress_faults();
        let mut log = ChaosLog::default();
        let mut next = 0;
        let mut coordinator_pending = self.spec.kill_coordinator;
        let mut sigterm_pending = self.spec.sigterm_coordinator;
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
            } else if sigterm_pending
                && let Some(outcome) = self.sigterm_coordinator(&mut log).await?
            {
                // Not in the kill's tick: each looks for a run walking on its own.
                sigterm_pending = false;
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
            .chain(coordinator_pending.then_some(FaultKind::KillCoordinator))
            .chain(sigterm_pending.then_some(FaultKind::SigtermCoordinator));
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

    /// A run of the cycle that is still enumerating and has published at least two batches
    /// (mid-walk), with the coordinator process holding its lease; one other than `avoid`
    /// when there is. `None` when there is none now (or the database does not answer).
    async fn run_mid_walk(&self, avoid: Option<uuid::Uuid>) -> Option<MidWalk> {
        let (tenant_id, run_id, batches_published, owner): (uuid::Uuid, uuid::Uuid, i32, String) =
            sqlx::query_as(
                "SELECT r.tenant_id, r.id, r.batches_published, t.lease_owner FROM runs r \
                 JOIN tenants t ON t.id = r.tenant_id \
                 WHERE r.tenant_id = ANY($1) AND r.started_at >= $2 AND r.kind <> 'on_demand' \
                 AND r.state = 'enumerating' AND r.batches_published >= 2 \
                 AND t.lease_owner IS NOT NULL \
                 ORDER BY r.id IS NOT DISTINCT FROM $3 LIMIT 1",
            )
            .bind(&self.tenant_ids)
            .bind(self.since)
            .bind(avoid)
            .fetch_optional(&self.stack.env.pool)
            .await
            .ok()??;
        // The lease owner is `{host}:{pid}` (`dirsync_coordinator::cli::owner_name`).
        let pid = owner.rsplit(':').next()?.parse().ok()?;
        Some(MidWalk {
            tenant_id,
            run_id,
            batches_published,
            owner,
            pid,
        })
    }

    /// Kills the coordinator process running a run that is still enumerating (and has
    /// published at least two batches: mid-walk), if there is one now.
    async fn kill_coordinator(&self, log: &mut ChaosLog) -> anyhow::Result<Option<FaultOutcome>> {
        let Some(coordinators) = self.coordinators else {
            return Ok(None);
        };
        let Some(target) = self.run_mid_walk(None).await else {
            return Ok(None);
        };
        let MidWalk {
            tenant_id,
            run_id,
            batches_published,
            pid,
            ..
        } = target;
        let pids = coordinators.pids().await;
        let Some(index) = pids.iter().position(|&q| q == pid) else {
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

    /// Stops the coordinator process running a run that is still enumerating (at least two
    /// batches published; another than the killed one when there is) with SIGTERM, if there
    /// is one now; then starts another in its slot.
    async fn sigterm_coordinator(
        &self,
        log: &mut ChaosLog,
    ) -> anyhow::Result<Option<FaultOutcome>> {
        let Some(coordinators) = self.coordinators else {
            return Ok(None);
        };
        let killed = log.killed_run.as_ref().map(|k| k.run_id);
        let Some(MidWalk {
            tenant_id,
            run_id,
            batches_published,
            owner,
            pid,
        }) = self.run_mid_walk(killed).await
        else {
            return Ok(None);
        };
        // From here until the process is replaced, the cycle's wait loop stands still. It
        // may hold the process list's lock itself (it restarts a crashed process under it):
        // then it must run on, and the SIGTERM waits for a later tick.
        let held = self.hold.engage();
        let Ok(pids) = tokio::time::timeout(Duration::from_secs(1), coordinators.pids()).await
        else {
            return Ok(None);
        };
        let Some(index) = pids.iter().position(|&q| q == pid) else {
            return Ok(None);
        };
        let pool = &self.stack.env.pool;
        // The process's leases, and when its lease on the run's tenant runs out.
        let Ok((leases_before, expires_in_ms)) = sqlx::query_as::<_, (i64, Option<f64>)>(
            "SELECT count(*), \
             max(extract(epoch FROM lease_expires_at - now()) * 1000) FILTER (WHERE id = $2)::float8 \
             FROM tenants WHERE lease_owner = $1",
        )
        .bind(&owner)
        .bind(tenant_id)
        .fetch_one(pool)
        .await
        else {
            return Ok(None);
        };
        let Some(expires_in_ms) = expires_in_ms else {
            // The run ended or moved on since the look-up: try again next tick.
            return Ok(None);
        };
        let bound = Duration::from_secs(self.spec.sigterm_bound_s);
        let started = std::time::Instant::now();
        tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await?;
        let wait_status = exited(pid, bound).await;
        let exit_ms = started.elapsed().as_millis() as u64;
        let leases_after = match wait_status {
            Some(_) => Some(
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tenants WHERE lease_owner = $1")
                    .bind(&owner)
                    .fetch_one(pool)
                    .await?,
            ),
            None => None,
        };
        let lease_left_ms = expires_in_ms as i64 - exit_ms as i64;
        // The replacement (a SIGKILL first, which a process still running at the bound
        // needs), and meanwhile who takes the run's tenant over.
        let (new_pid, resumed_after_ms) = tokio::join!(
            async {
                let new_pid = coordinators.kill_and_restart(index).await;
                drop(held);
                new_pid
            },
            resumed(pool, tenant_id, run_id, &owner)
        );
        let new_pid = new_pid.context("restarting a SIGTERM'd coordinator")?;
        let clean = wait_status == Some(0);
        let ok = clean && leases_after == Some(0);
        let how = match wait_status {
            Some(status) => format!("{} after {exit_ms} ms", describe_wait_status(status)),
            None => format!("still running after {bound:?}: killed"),
        };
        let resumption = match resumed_after_ms {
            Some(ms) => format!(
                "another process took the tenant {ms} ms after the exit, {} ms before the lease would have expired",
                lease_left_ms - ms as i64
            ),
            None => format!("no other process took the tenant within {RESUME_WATCH:?}"),
        };
        let detail = format!(
            "SIGTERM to coordinator {index} (pid {pid}, owner {owner}) while run {run_id} was \
             enumerating ({batches_published} batches published): {how}; leases held {leases_before} \
             before, {} after its exit; {resumption}; restarted as pid {new_pid}",
            leases_after.map_or("not read".to_string(), |n| n.to_string()),
        );
        log.sigtermed_coordinator = Some(SigtermedCoordinator {
            index,
            pid,
            owner,
            run: KilledRun {
                tenant_id,
                run_id,
                batches_published,
            },
            leases_before,
            wait_status,
            exit_ms,
            leases_after,
            resumed_after_ms,
            lease_left_ms,
            new_pid,
        });
        Ok(Some(FaultOutcome {
            fault: FaultKind::SigtermCoordinator,
            injected: true,
            ok,
            at_users_done: None,
            detail,
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
            FaultKind::KillCoordinator
            | FaultKind::SigtermCoordinator
            | FaultKind::RevokeScimToken => unreachable!("fired on its own trigger"),
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

/// How long the injector watches for another process to take a SIGTERM'd coordinator's
/// tenant over.
const RESUME_WATCH: Duration = Duration::from_secs(15);

/// Waits up to `bound` for child `pid` to exit, reading `/proc/<pid>/stat`: the process
/// stays a zombie (state `Z`) with its exit code until it is reaped, and nothing reaps it
/// while the cycle is held. Its status in `waitpid` form; `None` if it still runs.
async fn exited(pid: u32, bound: Duration) -> Option<i32> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            // After the command name, which may hold anything: state is the first field,
            // exit_code (field 52) the last.
            && let Some((_, rest)) = stat.rsplit_once(')')
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.first() == Some(&"Z") && fields.len() >= 50 {
                return fields.last().and_then(|c| c.parse().ok());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A `waitpid` status as words.
fn describe_wait_status(status: i32) -> String {
    match status & 0x7f {
        0 => format!("exited with code {}", (status >> 8) & 0xff),
        signal => format!("killed by signal {signal}"),
    }
}

/// Milliseconds until a process other than `owner` holds `tenant`'s lease, at most
/// [`RESUME_WATCH`]; `None` also once `run` is no longer open (nothing left to resume).
async fn resumed(
    pool: &sqlx::PgPool,
    tenant: uuid::Uuid,
    run: uuid::Uuid,
    owner: &str,
) -> Option<u64> {
    let started = std::time::Instant::now();
    while started.elapsed() < RESUME_WATCH {
        let row: Result<(Option<String>, String), _> = sqlx::query_as(
            "SELECT t.lease_owner, r.state FROM tenants t JOIN runs r ON r.tenant_id = t.id \
             WHERE t.id = $1 AND r.id = $2",
        )
        .bind(tenant)
        .bind(run)
        .fetch_one(pool)
        .await;
        match row {
            Ok((Some(holder), _)) if holder != owner => {
                return Some(started.elapsed().as_millis() as u64);
            }
            Ok((_, state)) if !matches!(state.as_str(), "enumerating" | "draining") => {
                return None;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
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

/// A run mid-walk and the coordinator process holding its lease ([`Injector::run_mid_walk`]).
struct MidWalk {
    tenant_id: uuid::Uuid,
    run_id: uuid::Uuid,
    batches_published: i32,
    /// The lease owner name of the process.
    owner: String,
    pid: u32,
}
