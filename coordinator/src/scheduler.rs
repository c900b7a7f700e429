//! Which tenant runs when: leases in PostgreSQL make any number of coordinators safe.
//!
//! A coordinator claims a due tenant with `FOR UPDATE SKIP LOCKED` and holds a lease that it
//! renews while the run lasts; a crashed coordinator's lease expires and another one resumes
//! the open run from its checkpoint.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use dirsync_proto::TenantId;

use crate::{CoordinatorError, Runner};

/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(120);
/// How often a held lease is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(30);
/// How long after a failed run the tenant is tried again.
const RETRY_FAILED_RUN: Duration = Duration::from_secs(60);
/// How long an idle scheduler sleeps before looking for due tenants again.
const IDLE: Duration = Duration::from_secs(2);

/// Leases on tenants.
#[derive(Debug, Clone)]
pub struct Leases {
    pool: PgPool,
    owner: String,
}

impl Leases {
    pub fn new(pool: PgPool, owner: impl Into<String>) -> Self {
        Self {
            pool,
            owner: owner.into(),
        }
    }

    /// Claims the most overdue tenant with auto-sync on, if any.
    pub async fn claim_due(&self) -> Result<Option<TenantId>, CoordinatorError> {
        let id: Option<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE tenants SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2) \
             WHERE id = (SELECT id FROM tenants WHERE auto_sync AND next_run_at <= now() \
                         AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
                         ORDER BY next_run_at FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id",
        )
        .bind(&self.owner)
        .bind(LEASE.as_secs_f64())
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
        .bind(LEASE.as_secs_f64())
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
        let renew = async {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match self.claim(tenant).await {
                    Ok(true) => {}
                    Ok(false) => return CoordinatorError::LeaseLost(tenant.to_string()),
                    Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
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

/// Claims due tenants and runs them, one at a time, until cancelled.
pub async fn serve(
    runner: Runner,
    leases: Leases,
    cancel: CancellationToken,
) -> Result<(), CoordinatorError> {
    while !cancel.is_cancelled() {
        match leases.claim_due().await? {
            Some(tenant) => {
                let result = leases
                    .hold(tenant, runner.sync_tenant(tenant, None, &cancel))
                    .await;
                match result {
                    Ok(outcome) => {
                        tracing::info!(tenant_id = %tenant, run_id = %outcome.run_id, "scheduled run done")
                    }
                    Err(CoordinatorError::Cancelled) => break,
                    Err(e) => {
                        tracing::error!(tenant_id = %tenant, error = %e, "scheduled run failed");
                        leases.postpone(tenant, RETRY_FAILED_RUN).await?;
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(IDLE) => {}
                }
            }
        }
    }
    Ok(())
}
