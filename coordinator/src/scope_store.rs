//! The resolved scope in PostgreSQL: `scope_members`, the users entering it in a run
//! (`run_entering`) and the per-page lookups that filter a walk by it.
//!
//! A run resolves the scope right after applying its `groups/delta` round, in the same
//! transaction, so memberships, scope and the run's progress never disagree after a crash.
//! Users who leave the scope are not handled here: they are active mirror rows outside
//! `scope_members`, deactivated with the run's other deactivations (`reconcile.rs`).

use std::collections::HashSet;

use sqlx::PgPool;

use dirsync_proto::{RunId, TenantId};

use crate::CoordinatorError;
use crate::graph::groups::GroupsDelta;
use crate::memberships::{scope_users_sql, write_round};
use crate::scope::Scope;

/// A run's `groups/delta` round, ready to be applied.
#[derive(Debug)]
pub struct GroupsRound {
    pub delta: GroupsDelta,
    /// The round enumerated every group (initial, or a resync): what it did not list is gone.
    pub full: bool,
    /// The deltaLink that ends the round; the tenant keeps it once the run completes.
    pub delta_link: String,
}

/// Access to `scope_members` and `run_entering`.
#[derive(Debug, Clone)]
pub struct ScopeStore {
    pool: PgPool,
}

impl ScopeStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the run's groups round (if it walked one) and resolves the scope, all in one
    /// transaction, then marks the run's scope done. With `find_entering`, the users the
    /// scope gains who are not in Webex from dirsync are listed in `run_entering`: an
    /// incremental users walk would not see them (a full one sees everyone).
    pub async fn resolve(
        &self,
        run: RunId,
        tenant: TenantId,
        scope: &Scope,
        round: Option<&GroupsRound>,
        find_entering: bool,
        escrow_retry: &[i32],
    ) -> Result<(), CoordinatorError> {
        let mut tx = self.pool.begin().await?;
        if let Some(round) = round {
            write_round(&mut tx, tenant, &round.delta, round.full).await?;
        }
        if scope.is_filtered() {
            sqlx::query("CREATE TEMP TABLE scope_now (entra_id text PRIMARY KEY) ON COMMIT DROP")
                .execute(&mut *tx)
                .await?;
            sqlx::query(concat!(
                "INSERT INTO scope_now (entra_id) ",
                scope_users_sql!()
            ))
            .bind(tenant.0)
            .bind(&scope.groups)
            .bind(scope.nested)
            .bind(&scope.users)
            .execute(&mut *tx)
            .await?;
            if find_entering {
                // Not in the scope before and not active in Webex from dirsync: a user who
                // was in scope but disabled is not read again for nothing every run.
                sqlx::query(
                    "INSERT INTO run_entering (run_id, entra_id) \
                     SELECT $1, s.entra_id FROM scope_now s \
                     WHERE NOT EXISTS (SELECT 1 FROM scope_members m \
                                       WHERE m.tenant_id = $2 AND m.entra_id = s.entra_id) \
                       AND NOT EXISTS (SELECT 1 FROM mirror_users u \
                                       WHERE u.tenant_id = $2 AND u.entra_id = s.entra_id AND u.active) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(run.0)
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "DELETE FROM scope_members m WHERE m.tenant_id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM scope_now s WHERE s.entra_id = m.entra_id)",
            )
            .bind(tenant.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO scope_members (tenant_id, entra_id) \
                 SELECT $1, entra_id FROM scope_now ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM scope_members WHERE tenant_id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
        }
        if find_entering && !escrow_retry.is_empty() {
            // Users in escrow whose retry is due are read by id like entering ones: the n-th
            // retry waits `escrow_retry[n - 1]` seconds after the last failure (the last step
            // repeats), and only users still in scope come back.
            sqlx::query(
                "INSERT INTO run_entering (run_id, entra_id) \
                 SELECT $1, e.entra_id FROM escrow e WHERE e.tenant_id = $2 \
                   AND e.last_failed_at + make_interval(secs => \
                       ($3::int4[])[LEAST(e.attempts, array_length($3::int4[], 1))]) <= now() \
                   AND (NOT $4 OR EXISTS (SELECT 1 FROM scope_members s \
                                          WHERE s.tenant_id = $2 AND s.entra_id = e.entra_id)) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(run.0)
            .bind(tenant.0)
            .bind(escrow_retry)
            .bind(scope.is_filtered())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE runs SET scope_done = true, \
             new_groups_delta_link = coalesce($2, new_groups_delta_link) WHERE id = $1",
        )
        .bind(run.0)
        .bind(round.map(|r| r.delta_link.as_str()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Of `ids` (one page's users): those in the tenant's scope, and those active in Webex
    /// from dirsync. One round trip per page.
    pub async fn lookup(
        &self,
        tenant: TenantId,
        ids: &[&str],
    ) -> Result<(HashSet<String>, HashSet<String>), CoordinatorError> {
        let rows: Vec<(String, bool, bool)> = sqlx::query_as(
            "SELECT p.id, \
               EXISTS (SELECT 1 FROM scope_members s WHERE s.tenant_id = $1 AND s.entra_id = p.id), \
               EXISTS (SELECT 1 FROM mirror_users m WHERE m.tenant_id = $1 AND m.entra_id = p.id AND m.active) \
             FROM unnest($2::text[]) AS p(id)",
        )
        .bind(tenant.0)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let (mut in_scope, mut mirrored) = (HashSet::new(), HashSet::new());
        for (id, scoped, active) in rows {
            if active {
                mirrored.insert(id.clone());
            }
            if scoped {
                in_scope.insert(id);
            }
        }
        Ok((in_scope, mirrored))
    }

    /// The users entering the scope in `run` not yet published, by id.
    pub async fn pending_entering(&self, run: RunId) -> Result<Vec<String>, CoordinatorError> {
        Ok(sqlx::query_scalar(
            "SELECT entra_id FROM run_entering WHERE run_id = $1 AND seq IS NULL ORDER BY entra_id",
        )
        .bind(run.0)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every user entering the scope in `run`, for operators and tests.
    pub async fn entering(&self, run: RunId) -> Result<Vec<String>, CoordinatorError> {
        Ok(sqlx::query_scalar(
            "SELECT entra_id FROM run_entering WHERE run_id = $1 ORDER BY entra_id",
        )
        .bind(run.0)
        .fetch_all(&self.pool)
        .await?)
    }
}
