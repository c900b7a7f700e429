//! A run's deactivations in PostgreSQL: the entries diverted from its pages, the
//! reconciliation of a full enumeration, the guard's hold and the operator's decision.
//!
//! Everything is stored in `run_deactivations` and the `runs` row, never only in memory, so
//! a restarted coordinator resumes a held or half-pushed run where it was. The set is fixed
//! once decided (`runs.deactivations` is set), so its batches are rebuilt identically.

use std::collections::HashSet;

use sqlx::{PgPool, Row};

use dirsync_proto::{BatchMessage, RunId, SourceUser, TenantId, WIRE_VERSION};

use crate::CoordinatorError;
use crate::graph::DeltaPage;
use crate::guard::{self, Thresholds};
use crate::runs::RunKind;

/// `run_deactivations.page` of the reconciliation's rows (users gone from Entra or from the
/// scope).
const RECONCILE_PAGE: &str = "reconcile";

/// An operator's decision on a held run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }
}

/// A run's deactivations as stored, for operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldRun {
    pub run_id: RunId,
    pub tenant_id: TenantId,
    pub state: String,
    /// Users the run deactivates or deletes (that Webex has active), once decided.
    pub deactivations: Option<i32>,
    pub held: bool,
    pub hold_reason: Option<String>,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Entra ids of the users with a diverted or reconciled entry.
    pub users: Vec<String>,
}

/// The batches that push a run's decided deactivations, numbered from the enumeration's
/// last batch on. Each user's entries go in one batch, in order; users come in the order of
/// their first entry, [`guard::USERS_PER_BATCH`] to a batch. Only the users are held in
/// memory: a batch's entries are read when it is built, so the same batch is rebuilt
/// identically after a restart.
#[derive(Debug)]
pub struct DeactivationBatches {
    pool: PgPool,
    run: RunId,
    tenant: TenantId,
    first_seq: u32,
    users: Vec<String>,
    rejected: bool,
}

impl DeactivationBatches {
    /// The batches' sequence numbers.
    pub fn seqs(&self) -> std::ops::Range<u32> {
        let count = self.users.len().div_ceil(guard::USERS_PER_BATCH) as u32;
        self.first_seq..self.first_seq + count
    }

    /// Builds batch `seq` (one of [`Self::seqs`]).
    pub async fn batch(&self, seq: u32) -> Result<BatchMessage, CoordinatorError> {
        let i = seq.saturating_sub(self.first_seq) as usize * guard::USERS_PER_BATCH;
        let users = self.users.get(i..).unwrap_or_default();
        let users = &users[..users.len().min(guard::USERS_PER_BATCH)];
        let entries: Vec<sqlx::types::Json<SourceUser>> = sqlx::query_scalar(
            "SELECT entry FROM run_deactivations WHERE run_id = $1 AND entra_id = ANY($2) \
             ORDER BY ord",
        )
        .bind(self.run.0)
        .bind(users)
        .fetch_all(&self.pool)
        .await?;
        // A rejected run keeps its users active, but their other changes still apply.
        let entries = entries
            .into_iter()
            .filter_map(|e| {
                if self.rejected {
                    guard::without_deactivation(e.0)
                } else {
                    Some(e.0)
                }
            })
            .collect();
        Ok(BatchMessage {
            version: WIRE_VERSION,
            tenant_id: self.tenant,
            run_id: self.run,
            seq,
            users: guard::chunk_by_user(entries, guard::USERS_PER_BATCH)
                .into_iter()
                .next()
                .unwrap_or_default(),
            groups: Vec::new(),
            dry_run: false,
        })
    }
}

/// Access to `run_deactivations` and the guard columns of `runs`.
#[derive(Debug, Clone)]
pub struct Deactivations {
    pool: PgPool,
}

impl Deactivations {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The users with an entry diverted so far in the run (for a resumed enumeration).
    pub async fn diverted_users(&self, run: RunId) -> Result<HashSet<String>, CoordinatorError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT entra_id FROM run_deactivations WHERE run_id = $1")
                .bind(run.0)
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().collect())
    }

    /// Stores the page's deactivating entries (and later entries of diverted users) and
    /// returns the page without them. `walk` (where the current walk began) and `url` (where
    /// the page was read from) name the page: reading it again after a restart stores
    /// nothing twice.
    pub async fn divert_page(
        &self,
        run: RunId,
        walk: i32,
        url: &str,
        mut page: DeltaPage,
        diverted: &mut HashSet<String>,
    ) -> Result<DeltaPage, CoordinatorError> {
        let (kept, out) = guard::divert(std::mem::take(&mut page.users), diverted);
        page.users = kept;
        if out.is_empty() {
            return Ok(page);
        }
        let idx: Vec<i32> = out.iter().map(|(i, _)| *i as i32).collect();
        let ids: Vec<&str> = out.iter().map(|(_, u)| u.id.as_str()).collect();
        let entries: Vec<sqlx::types::Json<&SourceUser>> =
            out.iter().map(|(_, u)| sqlx::types::Json(u)).collect();
        sqlx::query(
            "INSERT INTO run_deactivations (run_id, page, idx, entra_id, entry, walk) \
             SELECT $1, md5($6::int4::text || ':' || $2), d.idx, d.entra_id, d.entry, $6 \
             FROM UNNEST($3::int4[], $4::text[], $5::jsonb[]) WITH ORDINALITY AS d(idx, entra_id, entry, n) \
             ORDER BY d.n ON CONFLICT (run_id, page, idx) DO NOTHING",
        )
        .bind(run.0)
        .bind(url)
        .bind(&idx)
        .bind(&ids)
        .bind(&entries)
        .bind(walk)
        .execute(&self.pool)
        .await?;
        Ok(page)
    }

    /// A full enumeration starts at batch `seq` of the run (a resync in the middle of it).
    pub async fn full_enumeration_starts(
        &self,
        run: RunId,
        seq: u32,
    ) -> Result<(), CoordinatorError> {
        sqlx::query("UPDATE runs SET full_from_seq = $2, kind = 'initial' WHERE id = $1")
            .bind(run.0)
            .bind(seq as i32)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Once every batch of the enumeration (`0..total`) is recorded: decides the run's
    /// deactivations (reconciling a full enumeration, judging them by the tenant's guard)
    /// if not done yet, and returns the batches to push them with, numbered from `total`.
    /// Without batches when there are none; only the users' other changes when the operator
    /// rejected them. A held run without a
    /// decision is [`CoordinatorError::AwaitingApproval`]; an empty full read of a tenant
    /// with active users fails the run.
    pub async fn batches(
        &self,
        run: RunId,
        tenant: TenantId,
        kind: RunKind,
        total: u32,
    ) -> Result<DeactivationBatches, CoordinatorError> {
        let row = sqlx::query("SELECT deactivations, held, decision FROM runs WHERE id = $1")
            .bind(run.0)
            .fetch_one(&self.pool)
            .await?;
        let decided: Option<i32> = row.try_get("deactivations")?;
        let (count, held, decision) = match decided {
            Some(n) => (
                n as u64,
                row.try_get::<bool, _>("held")?,
                row.try_get::<Option<String>, _>("decision")?,
            ),
            None => {
                let (n, held) = self.decide_deactivations(run, tenant, kind, total).await?;
                (n, held, None)
            }
        };
        if held && decision.is_none() {
            let reason: String =
                sqlx::query_scalar("SELECT coalesce(hold_reason, '') FROM runs WHERE id = $1")
                    .bind(run.0)
                    .fetch_one(&self.pool)
                    .await?;
            return Err(CoordinatorError::AwaitingApproval {
                run: run.to_string(),
                count,
                reason,
            });
        }
        let rejected = held && decision.as_deref() == Some("rejected");
        // Only the users, not their entries: a large set (a mass deactivation, a 1M-user
        // tenant's disabled users) is read a batch at a time by `DeactivationBatches::batch`.
        // A rejected run has nothing to push for a user whose entries are all tombstones.
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT entra_id FROM run_deactivations \
             WHERE run_id = $1 AND (NOT $2 OR NOT entry ? 'removed') \
             GROUP BY entra_id ORDER BY min(ord)",
        )
        .bind(run.0)
        .bind(rejected)
        .fetch_all(&self.pool)
        .await?;
        Ok(DeactivationBatches {
            pool: self.pool.clone(),
            run,
            tenant,
            first_seq: total,
            users,
            rejected,
        })
    }

    /// Fixes the run's deactivations in one transaction: the reconciliation's gone users
    /// for a full enumeration, the count Webex would feel, and the guard's verdict.
    /// Returns (count, held).
    async fn decide_deactivations(
        &self,
        run: RunId,
        tenant: TenantId,
        kind: RunKind,
        total: u32,
    ) -> Result<(u64, bool), CoordinatorError> {
        let mut tx = self.pool.begin().await?;
        let t = sqlx::query(
            "SELECT guard_max_count, guard_max_percent, scope_all FROM tenants WHERE id = $1 FOR UPDATE",
        )
        .bind(tenant.0)
        .fetch_one(&mut *tx)
        .await?;
        let thresholds = Thresholds {
            max_count: t.try_get::<i32, _>("guard_max_count")?.max(0) as u32,
            max_percent: t.try_get::<i32, _>("guard_max_percent")?.max(0) as u32,
        };
        // The tenant's active users, counted only when a decision needs them: the count
        // reads every row of the tenant (half a second at 300,000 users), which an
        // incremental run without deactivations would pay for nothing.
        let count_active = async |tx: &mut sqlx::PgConnection| -> Result<u64, sqlx::Error> {
            let active: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM mirror_users WHERE tenant_id = $1 AND active",
            )
            .bind(tenant.0)
            .fetch_one(tx)
            .await?;
            Ok(active.max(0) as u64)
        };
        // Where the run's full enumeration began, for a run that has one.
        let mut full_from = None;
        if kind == RunKind::Initial {
            let full_from_seq = walk_start(&mut *tx, run).await?;
            let seen: i64 = sqlx::query_scalar(
                "SELECT (SELECT coalesce(sum(synced + skipped + failed), 0) FROM batch_results \
                         WHERE run_id = $1 AND seq >= $2 AND seq < $3)::bigint \
                      + (SELECT count(*) FROM run_deactivations WHERE run_id = $1 AND walk = $2)",
            )
            .bind(run.0)
            .bind(full_from_seq)
            .bind(total as i32)
            .fetch_one(&mut *tx)
            .await?;
            // Only a run that saw nobody can be an empty read.
            let active = match seen {
                0 => count_active(&mut tx).await?,
                _ => 0,
            };
            if guard::empty_read(seen.max(0) as u64, active) {
                tx.rollback().await?;
                let why = format!(
                    "graph returned no users for a tenant with {active} active users; \
                     an empty read is not taken as deletions, nothing was deactivated"
                );
                sqlx::query(
                    "UPDATE runs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
                )
                .bind(run.0)
                .bind(&why)
                .execute(&self.pool)
                .await?;
                return Err(CoordinatorError::RunFailed(run.to_string(), why));
            }
            full_from = Some(full_from_seq);
        }
        // Active rows that no diverted entry covers and that are either unseen by the run's
        // full enumeration (users Entra no longer has; a user provisioned on demand since the
        // run started was read from Entra then, and counts as seen) or outside the scope the
        // run resolved (users who left it): deactivate, never delete (a soft-deleted user may
        // come back, and a user out of scope still exists).
        let filtered = !t.try_get::<bool, _>("scope_all")?;
        if full_from.is_some() || filtered {
            sqlx::query(
                "INSERT INTO run_deactivations (run_id, page, idx, entra_id, entry) \
                 SELECT $1, $3, (row_number() OVER (ORDER BY m.entra_id))::int4, m.entra_id, \
                        jsonb_build_object('id', m.entra_id, 'removed', 'changed') \
                 FROM mirror_users m WHERE m.tenant_id = $2 AND m.active \
                   AND ( \
                     ($4::int4 IS NOT NULL \
                      AND NOT coalesce(m.last_seen_run = $1 AND m.last_seen_seq >= $4, false) \
                      AND NOT EXISTS (SELECT 1 FROM runs o WHERE o.id = m.last_seen_run \
                                      AND o.kind = 'on_demand' AND o.tenant_id = $2 \
                                      AND o.started_at >= (SELECT started_at FROM runs WHERE id = $1))) \
                     OR ($5 AND NOT EXISTS (SELECT 1 FROM scope_members s \
                                            WHERE s.tenant_id = $2 AND s.entra_id = m.entra_id))) \
                   AND NOT EXISTS (SELECT 1 FROM run_deactivations d \
                                   WHERE d.run_id = $1 AND d.entra_id = m.entra_id) \
                 ORDER BY m.entra_id ON CONFLICT (run_id, page, idx) DO NOTHING",
            )
            .bind(run.0)
            .bind(tenant.0)
            .bind(RECONCILE_PAGE)
            .bind(full_from)
            .bind(filtered)
            .execute(&mut *tx)
            .await?;
        }
        // What Webex would feel: users it has active. A disable of a user Webex never got
        // changes nothing there.
        let count: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT d.entra_id) FROM run_deactivations d \
             JOIN mirror_users m ON m.tenant_id = $2 AND m.entra_id = d.entra_id AND m.active \
             WHERE d.run_id = $1",
        )
        .bind(run.0)
        .bind(tenant.0)
        .fetch_one(&mut *tx)
        .await?;
        let active = if count > 0 {
            count_active(&mut tx).await?
        } else {
            0
        };
        let verdict = guard::judge(thresholds, count as u64, active);
        let held = verdict.holds();
        let reason = held.then(|| {
            format!(
                "would deactivate or delete {count} of {active} active users: {}",
                verdict.reason(thresholds)
            )
        });
        sqlx::query(
            "UPDATE runs SET deactivations = $2, held = $3, hold_reason = $4, \
             state = CASE WHEN $3 THEN 'awaiting_approval' ELSE state END WHERE id = $1",
        )
        .bind(run.0)
        .bind(count as i32)
        .bind(held)
        .bind(&reason)
        .execute(&mut *tx)
        .await?;
        if held {
            sqlx::query(
                "UPDATE tenants SET status = 'Quarantine', updated_at = now() WHERE id = $1",
            )
            .bind(tenant.0)
            .execute(&mut *tx)
            .await?;
            tracing::warn!(
                deactivations = count,
                active,
                "accidental-deletion guard: run held for approval"
            );
        }
        tx.commit().await?;
        Ok((count as u64, held))
    }

    /// Records an operator's decision on a run held by the guard, and makes its tenant due
    /// so the next sync (or the scheduler) finishes the run.
    pub async fn decide(
        &self,
        run: RunId,
        decision: Decision,
        by: &str,
    ) -> Result<TenantId, CoordinatorError> {
        let mut tx = self.pool.begin().await?;
        let tenant: Option<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE runs SET decision = $2, decided_by = $3, decided_at = now() \
             WHERE id = $1 AND state = 'awaiting_approval' AND decision IS NULL RETURNING tenant_id",
        )
        .bind(run.0)
        .bind(decision.as_str())
        .bind(by)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tenant) = tenant else {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1)")
                    .bind(run.0)
                    .fetch_one(&mut *tx)
                    .await?;
            return Err(if exists {
                CoordinatorError::Conflict(format!("run {run} is not waiting for a decision"))
            } else {
                CoordinatorError::RunNotFound(run.to_string())
            });
        };
        // Due now, and even with auto-sync off: the held run must be finished.
        sqlx::query("UPDATE tenants SET next_run_at = now(), sync_requested = true WHERE id = $1")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(TenantId(tenant))
    }

    /// A run's guard state and the users of its deactivations.
    pub async fn show(&self, run: RunId) -> Result<HeldRun, CoordinatorError> {
        let r = sqlx::query(
            "SELECT tenant_id, state, deactivations, held, hold_reason, decision, decided_by, \
             decided_at::text AS decided_at FROM runs WHERE id = $1",
        )
        .bind(run.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CoordinatorError::RunNotFound(run.to_string()))?;
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT entra_id FROM run_deactivations WHERE run_id = $1 \
             GROUP BY entra_id ORDER BY min(ord)",
        )
        .bind(run.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(HeldRun {
            run_id: run,
            tenant_id: TenantId(r.try_get("tenant_id")?),
            state: r.try_get("state")?,
            deactivations: r.try_get("deactivations")?,
            held: r.try_get("held")?,
            hold_reason: r.try_get("hold_reason")?,
            decision: r.try_get("decision")?,
            decided_by: r.try_get("decided_by")?,
            decided_at: r.try_get("decided_at")?,
            users,
        })
    }
}

/// The sequence number where the run's current full enumeration began (0 without a resync):
/// batches from there on are what that enumeration saw.
pub async fn walk_start<'e>(
    db: impl sqlx::PgExecutor<'e>,
    run: RunId,
) -> Result<i32, CoordinatorError> {
    Ok(
        sqlx::query_scalar("SELECT coalesce(full_from_seq, 0) FROM runs WHERE id = $1")
            .bind(run.0)
            .fetch_one(db)
            .await?,
    )
}
