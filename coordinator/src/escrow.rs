//! The escrow, as operators see it: the users whose push failed for a reason of their own,
//! why, how often, and when the next run retries them (workers fill and release the
//! `escrow` table; runs read due users by id, see `scope_store.rs`).

use sqlx::PgPool;

use dirsync_proto::TenantId;

use crate::CoordinatorError;

/// One user in escrow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct EscrowEntry {
    pub entra_id: String,
    pub reason: String,
    pub attempts: i32,
    pub first_failed_at: String,
    pub last_failed_at: String,
    /// The first run from this time on retries the user.
    pub next_retry_at: String,
}

/// A retry schedule in seconds as the SQL reads it (`int4[]`; longer steps are capped).
pub fn schedule(secs: &[u32]) -> Vec<i32> {
    secs.iter()
        .map(|s| i32::try_from(*s).unwrap_or(i32::MAX))
        .collect()
}

/// A tenant's users in escrow, the soonest retry first; `schedule` as the runner's.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    schedule: &[i32],
) -> Result<Vec<EscrowEntry>, CoordinatorError> {
    Ok(sqlx::query_as(
        "SELECT entra_id, reason, attempts, first_failed_at::text AS first_failed_at, \
         last_failed_at::text AS last_failed_at, \
         (last_failed_at + make_interval(secs => \
             ($2::int4[])[LEAST(attempts, array_length($2::int4[], 1))]))::text AS next_retry_at \
         FROM escrow WHERE tenant_id = $1 ORDER BY next_retry_at, entra_id",
    )
    .bind(tenant.0)
    .bind(schedule)
    .fetch_all(pool)
    .await?)
}
