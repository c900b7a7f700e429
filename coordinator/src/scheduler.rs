//! Which tenant runs when: leases in PostgreSQL make any number of coordinators safe.
//!
//! A coordinator claims a due tenant with `FOR UPDATE SKIP LOCKED` and holds a lease that it
//! renews while the run lasts; a crashed coordinator's lease expires and another one resumes
//! the open run from its checkpoint. One coordinator runs several tenants at once, each in its
//! own task with its own lease; a tenant is never run by two coordinators at the same time.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;

use dirsync_proto::TenantId;

use crate::{CoordinatorError, RunOutcome, Runner};

/// How long a lease lasts without renewal, unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);
/// How long after a failed run the tenant is tried again.
const RETRY_FAILED_RUN: Duration = Duration::from_secs(60);
/// How long after a run held by the deletion guard its tenant is looked at again, unless an
/// operator's decision makes it due sooner.
const RECHECK_HELD_RUN: Duration = Duration::from_secs(600);
/// How long an idle scheduler sleeps before looking for due tenants again.
const IDLE: Duration = Duration::from_secs(2);

/// Leases on tenants.
#[derive(Debug, Clone)]
pub struct Leases {
    pool: PgPool,
    owner: String,
    lease: Duration,
}

impl Leases {
    pub fn new(pool: PgPool, owner: impl Into<String>) -> Self {
        Self {
            pool,
            owner: owner.into(),
            lease: DEFAULT_LEASE,
        }
    }

    /// How long a lease lasts without renewal: how soon another coordinator takes over the
    /// tenants of one that died. Renewals happen four times per lease.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(400));
        self
    }

    /// Claims the most overdue tenant with auto-sync on, if any.
    pub async fn claim_due(&self) -> Result<Option<TenantId>, CoordinatorError> {
        let id: Option<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE tenants SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2) \
             WHERE id = (SELECT id FROM tenants WHERE authorized AND (auto_sync OR sync_requested) \
                         AND next_run_at <= now() \
                         AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
                         ORDER BY next_run_at FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id",
        )
        .bind(&self.owner)
        .bind(self.lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(TenantId))
    }

    /// Claims one given tenant unless another live coordinator holds it.
    pub async fn claim(&self, tenant: TenantId) -> Result<bool, CoordinatorError> {
        let n = sqlx::query(
            "UPDATE tenants SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $3) \
             WHERE id = $2 AND (lease_expires_at IS NULL OR lease_expires_at < now() OR lease_owner = $1)",
        )
        .bind(&self.owner)
        .bind(tenant.0)
        .bind(self.lease.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Pushes a tenant's next run out, so a failing tenant does not spin.
    pub async fn postpone(&self, tenant: TenantId, by: Duration) -> Result<(), CoordinatorError> {
        sqlx::query(
            "UPDATE tenants SET next_run_at = now() + make_interval(secs => $2) WHERE id = $1",
        )
        .bind(tenant.0)
        .bind(by.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn release(&self, tenant: TenantId) -> Result<(), CoordinatorError> {
        sqlx::query("UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(tenant.0)
            .bind(&self.owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs `work` while renewing the lease on `tenant`; releases it afterwards.
    pub async fn hold<F, T>(&self, tenant: TenantId, work: F) -> Result<T, CoordinatorError>
    where
        F: Future<Output = Result<T, CoordinatorError>>,
    {
        // Renewal stops the work when another coordinator has taken the tenant over: two
        // coordinators must never publish batches of the same run.
        // Without a successful renewal for most of a lease, assume another coordinator may
        // take the tenant over at any moment, and stop first.
        let renew = async {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(self.lease / 4).await;
                match self.claim(tenant).await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => return CoordinatorError::LeaseLost(tenant.to_string()),
                    Err(e) => {
                        tracing::warn!(error = %e, "lease renewal failed");
                        if renewed.elapsed() >= self.lease * 3 / 4 {
                            return CoordinatorError::LeaseLost(tenant.to_string());
                        }
                    }
                }
            }
        };
        let result = tokio::select! {
            r = work => r,
            lost = renew => Err(lost),
        };
        self.release(tenant).await?;
        result
    }
}

/// What a [`serve`] loop did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Runs that completed.
    pub completed: u64,
    /// Runs that failed or were held by the deletion guard (their tenants were postponed).
    pub failed: u64,
    /// Runs stopped by cancellation; they resume from their checkpoints next time.
    pub interrupted: u64,
}

/// Claims due tenants and syncs up to `max_concurrent_runs` of them at once, each in its own
/// task holding its lease, until `cancel` fires. Then it claims nothing more, waits for the
/// running runs to stop (they observe the same token) and returns once every lease it took is
/// released. A database error other than a passing one stops it the same way, then returns.
pub async fn serve(
    runner: Runner,
    leases: Leases,
    max_concurrent_runs: usize,
    cancel: CancellationToken,
) -> Result<ServeReport, CoordinatorError> {
    let slots = max_concurrent_runs.max(1);
    // Runs stop on the caller's token, or on this loop's own fatal error.
    let stop_runs = cancel.child_token();
    let mut running: JoinSet<Result<RunOutcome, CoordinatorError>> = JoinSet::new();
    let mut tenants: HashMap<task::Id, TenantId> = HashMap::new();
    let mut report = ServeReport::default();
    let mut fatal = None;
    while !cancel.is_cancelled() {
        while running.len() < slots && !cancel.is_cancelled() {
            match leases.claim_due().await {
                Ok(Some(tenant)) => {
                    let (runner, leases, token) =
                        (runner.clone(), leases.clone(), stop_runs.clone());
                    let run = running.spawn(async move {
                        leases
                            .hold(tenant, runner.sync_tenant(tenant, None, &token))
                            .await
                    });
                    tenants.insert(run.id(), tenant);
                }
                Ok(None) => break,
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "claiming a due tenant failed, retrying");
                    break;
                }
                Err(e) => {
                    fatal = Some(e);
                    break;
                }
            }
        }
        if fatal.is_some() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(done) = running.join_next_with_id() => {
                finished(done, &mut tenants, &leases, &mut report).await;
            }
            // A free slot here means nothing was due: look again after a pause.
            _ = tokio::time::sleep(IDLE), if running.len() < slots => {}
        }
    }
    stop_runs.cancel();
    while let Some(done) = running.join_next_with_id().await {
        finished(done, &mut tenants, &leases, &mut report).await;
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Accounts for one finished run task; a failed run postpones its tenant so it does not spin.
async fn finished(
    done: Result<(task::Id, Result<RunOutcome, CoordinatorError>), task::JoinError>,
    tenants: &mut HashMap<task::Id, TenantId>,
    leases: &Leases,
    report: &mut ServeReport,
) {
    let (id, failure) = match done {
        Ok((id, Ok(outcome))) => {
            report.completed += 1;
            if let Some(tenant) = tenants.remove(&id) {
                tracing::info!(tenant_id = %tenant, run_id = %outcome.run_id, "scheduled run done");
            }
            return;
        }
        Ok((id, Err(CoordinatorError::Cancelled))) => {
            report.interrupted += 1;
            tenants.remove(&id);
            return;
        }
        Ok((id, Err(e @ CoordinatorError::AwaitingApproval { .. }))) => {
            // Not a failure: the run waits for an operator, whose decision makes the
            // tenant due again; until then look only now and then.
            report.failed += 1;
            if let Some(tenant) = tenants.remove(&id) {
                tracing::warn!(tenant_id = %tenant, reason = %e, "run held for approval");
                if let Err(e) = leases.postpone(tenant, RECHECK_HELD_RUN).await {
                    tracing::error!(tenant_id = %tenant, error = %e, "postponing the held tenant failed");
                }
            }
            return;
        }
        Ok((id, Err(e)))
            if matches!(e, CoordinatorError::Quarantined(_)) || e.is_credential_failure() =>
        {
            // The run quarantined its tenant and set its backoff: keep that.
            report.failed += 1;
            if let Some(tenant) = tenants.remove(&id) {
                tracing::warn!(tenant_id = %tenant, reason = %e, "tenant quarantined");
            }
            return;
        }
        Ok((id, Err(e))) => (id, e.to_string()),
        // A panicked run never released its lease; it expires on its own.
        Err(e) => (e.id(), format!("run task ended abnormally: {e}")),
    };
    report.failed += 1;
    let Some(tenant) = tenants.remove(&id) else {
        tracing::error!(error = %failure, "a run this scheduler did not start failed");
        return;
    };
    tracing::error!(tenant_id = %tenant, error = %failure, "scheduled run failed");
    if let Err(e) = leases.postpone(tenant, RETRY_FAILED_RUN).await {
        tracing::error!(tenant_id = %tenant, error = %e, "postponing the failed tenant failed");
    }
}
