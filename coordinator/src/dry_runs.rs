//! Dry runs as operators see them: requested through the API, claimed by a coordinator
//! ([`serve`]), done or failed; their progress and summary, and their report as CSV.
//!
//! The walk itself is [`crate::Runner::dry_run`]. A dry run lives in PostgreSQL (`dry_runs`,
//! `dry_run_rows`), so any coordinator may do it and the report is read back as a stream,
//! however large the tenant: nothing holds it in memory. A coordinator that dies during a
//! dry run stops touching its heartbeat; the dry run then shows as failed ("abandoned") and
//! the operator asks for another. Only the last [`KEPT_PER_TENANT`] dry runs of a tenant
//! are kept.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

use dirsync_proto::{RunId, TenantId};

use crate::guard;
use crate::{CoordinatorError, Runner};

/// A running dry run whose heartbeat is older than this was abandoned.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(120);
/// Dry runs kept per tenant (with their reports); older ones are removed.
pub const KEPT_PER_TENANT: i64 = 5;
/// How often an idle coordinator looks for requested dry runs.
const POLL: Duration = Duration::from_millis(500);

/// The report's header: the seed's columns, in its order.
pub const CSV_HEADER: [&str; 6] = [
    "Object Type",
    "Action Type",
    "Azure ID",
    "Azure Name",
    "Webex Name",
    "Reason",
];

/// A dry run, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DryRunView {
    #[schema(value_type = String, format = Uuid)]
    pub id: RunId,
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// `requested`, `running`, `completed` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    pub requested_by: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Graph pages read, users read, batches sent to the workers and reported back.
    pub pages: u32,
    pub users_read: u64,
    pub batches_published: u32,
    pub batches_reported: u32,
    pub enumeration_done: bool,
    /// Once completed: rows of the report by action.
    pub summary: Option<DryRunSummary>,
}

/// What the report says, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DryRunSummary {
    pub matched: u64,
    pub add: u64,
    pub update: u64,
    pub deactivate: u64,
    /// Rows whose action would fail (included in the counts above).
    pub failing: u64,
    /// Entries that need no action and have no Webex object (disabled users never created).
    pub skipped: u64,
    /// The accidental-deletion guard's verdict on the deactivations: a sync would wait for
    /// an operator's approval when this is set.
    pub guard_hold: Option<String>,
}

/// Access to `dry_runs` and their reports.
#[derive(Debug, Clone)]
pub struct DryRunStore {
    pool: PgPool,
}

impl DryRunStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Asks for a dry run of `tenant`; a coordinator takes it up within a second. Refused
    /// while one of the tenant's dry runs is still waiting or running.
    pub async fn request(&self, tenant: TenantId, by: &str) -> Result<RunId, CoordinatorError> {
        let id = RunId::new();
        let mut tx = self.pool.begin().await?;
        // Serialises requests for one tenant, so two callers cannot both start one.
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| CoordinatorError::TenantNotFound(tenant.to_string()))?;
        let busy: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM dry_runs WHERE tenant_id = $1 AND (status = 'requested' \
             OR (status = 'running' AND heartbeat_at > now() - make_interval(secs => $2)))",
        )
        .bind(tenant.0)
        .bind(HEARTBEAT_STALE.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(busy) = busy {
            return Err(CoordinatorError::Conflict(format!(
                "dry run {busy} of this instance is not finished yet"
            )));
        }
        sqlx::query("INSERT INTO dry_runs (id, tenant_id, requested_by) VALUES ($1, $2, $3)")
            .bind(id.0)
            .bind(tenant.0)
            .bind(by)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM dry_runs WHERE tenant_id = $1 AND id NOT IN \
             (SELECT id FROM dry_runs WHERE tenant_id = $1 ORDER BY requested_at DESC LIMIT $2)",
        )
        .bind(tenant.0)
        .bind(KEPT_PER_TENANT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Takes the oldest requested dry run for `owner`. An abandoned one (stale heartbeat)
    /// needs no marking: the views show it failed and a new request is not held up by it.
    pub async fn claim(&self, owner: &str) -> Result<Option<(RunId, TenantId)>, CoordinatorError> {
        let row: Option<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
            "UPDATE dry_runs SET status = 'running', owner = $1, started_at = now(), \
             heartbeat_at = now() \
             WHERE id = (SELECT id FROM dry_runs WHERE status = 'requested' \
                         ORDER BY requested_at FOR UPDATE SKIP LOCKED LIMIT 1) \
             RETURNING id, tenant_id",
        )
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, tenant)| (RunId(id), TenantId(tenant))))
    }

    /// Records progress and touches the heartbeat.
    pub async fn progress(
        &self,
        id: RunId,
        pages: u32,
        users_read: u64,
        batches_published: u32,
        enumeration_done: bool,
    ) -> Result<(), CoordinatorError> {
        sqlx::query(
            "UPDATE dry_runs SET pages = $2, users_read = $3, batches_published = $4, \
             enumeration_done = $5, heartbeat_at = now() WHERE id = $1",
        )
        .bind(id.0)
        .bind(pages as i32)
        .bind(users_read as i64)
        .bind(batches_published as i32)
        .bind(enumeration_done)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Batches the workers reported.
    pub async fn reported(&self, id: RunId) -> Result<u32, CoordinatorError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM dry_run_batches WHERE dry_run_id = $1")
                .bind(id.0)
                .fetch_one(&self.pool)
                .await?;
        Ok(n as u32)
    }

    pub async fn finish(
        &self,
        id: RunId,
        outcome: &Result<(), CoordinatorError>,
    ) -> Result<(), CoordinatorError> {
        let (status, error) = match outcome {
            Ok(()) => ("completed", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        sqlx::query(
            "UPDATE dry_runs SET status = $2, error = $3, finished_at = now(), heartbeat_at = now() \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(status)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One of the tenant's dry runs.
    pub async fn get(
        &self,
        tenant: TenantId,
        id: RunId,
    ) -> Result<Option<DryRunView>, CoordinatorError> {
        Ok(self.list_where(tenant, Some(id)).await?.pop())
    }

    /// The tenant's dry runs kept, newest first.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<DryRunView>, CoordinatorError> {
        self.list_where(tenant, None).await
    }

    async fn list_where(
        &self,
        tenant: TenantId,
        id: Option<RunId>,
    ) -> Result<Vec<DryRunView>, CoordinatorError> {
        let rows = sqlx::query(
            "SELECT d.*, (SELECT count(*) FROM dry_run_batches b WHERE b.dry_run_id = d.id) AS reported, \
                    (SELECT coalesce(sum(b.skipped), 0) FROM dry_run_batches b WHERE b.dry_run_id = d.id) AS skipped, \
                    (d.status = 'running' AND d.heartbeat_at < now() - make_interval(secs => $3)) AS stale \
             FROM dry_runs d WHERE d.tenant_id = $1 AND ($2::uuid IS NULL OR d.id = $2) \
             ORDER BY d.requested_at DESC",
        )
        .bind(tenant.0)
        .bind(id.map(|i| i.0))
        .bind(HEARTBEAT_STALE.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let id = RunId(row.try_get("id")?);
            let mut status: String = row.try_get("status")?;
            let mut error: Option<String> = row.try_get("error")?;
            if row.try_get::<bool, _>("stale")? {
                status = "failed".into();
                error = Some(
                    "abandoned: the coordinator doing it stopped; ask for another dry run".into(),
                );
            }
            let summary = if status == "completed" {
                let skipped: i64 = row.try_get("skipped")?;
                Some(self.summary(tenant, id, skipped.max(0) as u64).await?)
            } else {
                None
            };
            views.push(DryRunView {
                id,
                tenant_id: tenant,
                status,
                error,
                requested_by: row.try_get("requested_by")?,
                requested_at: row.try_get("requested_at")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
                pages: row.try_get::<i32, _>("pages")?.max(0) as u32,
                users_read: row.try_get::<i64, _>("users_read")?.max(0) as u64,
                batches_published: row.try_get::<i32, _>("batches_published")?.max(0) as u32,
                batches_reported: row.try_get::<i64, _>("reported")?.max(0) as u32,
                enumeration_done: row.try_get("enumeration_done")?,
                summary,
            });
        }
        Ok(views)
    }

    /// The report in numbers, and what the deletion guard would say of its deactivations.
    async fn summary(
        &self,
        tenant: TenantId,
        id: RunId,
        skipped: u64,
    ) -> Result<DryRunSummary, CoordinatorError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT action, count(*), count(*) FILTER (WHERE fails) FROM dry_run_rows \
             WHERE dry_run_id = $1 AND object_type = 'user' GROUP BY action",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        let mut s = DryRunSummary {
            skipped,
            ..Default::default()
        };
        for (action, n, failing) in rows {
            let n = n.max(0) as u64;
            s.failing += failing.max(0) as u64;
            match action.as_str() {
                "Matched" => s.matched = n,
                "Add" => s.add = n,
                "Update" => s.update = n,
                _ => s.deactivate = n,
            }
        }
        let (max_count, max_percent, active): (i32, i32, i64) = sqlx::query_as(
            "SELECT guard_max_count, guard_max_percent, \
                    (SELECT count(*) FROM mirror_users WHERE tenant_id = $1 AND active) \
             FROM tenants WHERE id = $1",
        )
        .bind(tenant.0)
        .fetch_one(&self.pool)
        .await?;
        let thresholds = guard::Thresholds {
            max_count: max_count.max(0) as u32,
            max_percent: max_percent.max(0) as u32,
        };
        s.guard_hold = match guard::judge(thresholds, s.deactivate, active.max(0) as u64) {
            guard::Verdict::Allow => None,
            _ => Some(format!(
                "{} deactivations of {active} active users exceed the guard ({} users or {} %): \
                 a sync would wait for approval",
                s.deactivate, thresholds.max_count, thresholds.max_percent
            )),
        };
        Ok(s)
    }
}

/// Does requested dry runs, one at a time, until `cancel` fires. A database error is logged
/// and the loop goes on: dry runs are not worth stopping a coordinator for.
pub async fn serve(runner: Runner, owner: String, cancel: CancellationToken) {
    let store = DryRunStore::new(runner.pool().clone());
    while !cancel.is_cancelled() {
        match store.claim(&owner).await {
            Ok(Some((id, tenant))) => {
                let outcome = runner.dry_run(tenant, id, &store, &cancel).await;
                match &outcome {
                    Ok(()) => tracing::info!(tenant_id = %tenant, dry_run_id = %id, "dry run done"),
                    Err(e) => {
                        tracing::warn!(tenant_id = %tenant, dry_run_id = %id, error = %e, "dry run failed")
                    }
                }
                if let Err(e) = store.finish(id, &outcome).await {
                    tracing::error!(dry_run_id = %id, error = %e, "cannot record the end of a dry run");
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look for requested dry runs"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
