//! The `runs` table and the run-level reads of `batch_results`.

use sqlx::{PgPool, Row};

use dirsync_proto::{Counts, GroupCounts, RunId, TenantId};

use crate::CoordinatorError;

/// Initial (full enumeration) or incremental (from a deltaLink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Initial,
    Incremental,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Initial => "initial",
            RunKind::Incremental => "incremental",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "incremental" {
            RunKind::Incremental
        } else {
            RunKind::Initial
        }
    }
}

/// A run that has not finished, as stored: what a (re)started coordinator resumes from.
#[derive(Debug, Clone)]
pub struct OpenRun {
    pub id: RunId,
    pub kind: RunKind,
    pub enumerating: bool,
    pub cursor_link: Option<String>,
    pub batches_published: u32,
    pub total_batches: Option<u32>,
    pub new_delta_link: Option<String>,
    /// Batches staged for publishing that may or may not have reached the broker, by
    /// sequence number.
    pub staged: Vec<(u32, Vec<u8>)>,
    /// The run's groups round is applied and its scope resolved.
    pub scope_done: bool,
}

/// Access to `runs` and `batch_results`.
#[derive(Debug, Clone)]
pub struct RunStore {
    pool: PgPool,
}

impl RunStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn open_run(&self, tenant: TenantId) -> Result<Option<OpenRun>, CoordinatorError> {
        let row = sqlx::query(
            "SELECT id, kind, state, cursor_link, batches_published, total_batches, new_delta_link, \
             scope_done \
             FROM runs WHERE tenant_id = $1 AND state IN ('enumerating', 'draining', 'awaiting_approval') \
             AND kind <> 'on_demand'",
        )
        .bind(tenant.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let id = RunId(r.try_get("id")?);
        let staged: Vec<(i32, Vec<u8>)> =
            sqlx::query_as("SELECT seq, batch FROM staged_batches WHERE run_id = $1 ORDER BY seq")
                .bind(id.0)
                .fetch_all(&self.pool)
                .await?;
        Ok(Some(OpenRun {
            id,
            kind: RunKind::parse(r.try_get("kind")?),
            enumerating: r.try_get::<&str, _>("state")? == "enumerating",
            cursor_link: r.try_get("cursor_link")?,
            batches_published: r.try_get::<i32, _>("batches_published")? as u32,
            total_batches: r
                .try_get::<Option<i32>, _>("total_batches")?
                .map(|n| n as u32),
            new_delta_link: r.try_get("new_delta_link")?,
            staged: staged
                .into_iter()
                .map(|(seq, batch)| (seq as u32, batch))
                .collect(),
            scope_done: r.try_get("scope_done")?,
        }))
    }

    pub async fn create(
        &self,
        tenant: TenantId,
        kind: RunKind,
        start_link: &str,
    ) -> Result<RunId, CoordinatorError> {
        let id = RunId::new();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO runs (id, tenant_id, kind, cursor_link) VALUES ($1, $2, $3, $4)")
            .bind(id.0)
            .bind(tenant.0)
            .bind(kind.as_str())
            .bind(start_link)
            .execute(&mut *tx)
            .await?;
        if kind == RunKind::Initial {
            // This run is the full walk that was asked for.
            sqlx::query("UPDATE tenants SET full_walk_requested = false WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Records where the walk continues and how many batches are out, after a page that
    /// published nothing; the staged batches below `confirmed_below` are the broker's now.
    pub async fn checkpoint(
        &self,
        run: RunId,
        kind: RunKind,
        cursor: &str,
        published: u32,
        confirmed_below: u32,
    ) -> Result<(), CoordinatorError> {
        sqlx::query(
            "WITH confirmed AS (DELETE FROM staged_batches WHERE run_id = $1 AND seq < $5) \
             UPDATE runs SET cursor_link = $2, batches_published = $3, kind = $4 WHERE id = $1",
        )
        .bind(run.0)
        .bind(cursor)
        .bind(published as i32)
        .bind(kind.as_str())
        .bind(confirmed_below as i32)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Before publishing a batch: keeps its exact bytes and the link after its page, in
    /// one write, and forgets the staged batches the broker confirmed. A coordinator resuming
    /// the run republishes every staged batch that is not recorded, so a sequence number
    /// never carries two different contents.
    pub async fn stage(&self, batch: &Staged<'_>) -> Result<(), CoordinatorError> {
        stage_query(batch).execute(&self.pool).await?;
        Ok(())
    }

    /// [`Self::stage`] for a batch of users entering the scope (`run_entering`): marks them
    /// as carried by the batch in the same transaction, so a resumed run reads only the
    /// others again.
    pub async fn stage_entering(
        &self,
        batch: &Staged<'_>,
        entering: &[String],
    ) -> Result<(), CoordinatorError> {
        let mut tx = self.pool.begin().await?;
        stage_query(batch).execute(&mut *tx).await?;
        mark_entering(&mut *tx, batch.run, entering, batch.seq as i32).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enumeration is over (every batch sent is confirmed): from now on the run only waits
    /// for its batches.
    pub async fn finish_enumeration(
        &self,
        run: RunId,
        total: u32,
        delta_link: &str,
    ) -> Result<(), CoordinatorError> {
        sqlx::query(
            "WITH confirmed AS (DELETE FROM staged_batches WHERE run_id = $1) \
             UPDATE runs SET state = 'draining', cursor_link = NULL, batches_published = $2, \
             total_batches = $2, new_delta_link = $3 WHERE id = $1",
        )
        .bind(run.0)
        .bind(total as i32)
        .bind(delta_link)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many batches of the run are recorded, and their summed counts.
    pub async fn recorded(&self, run: RunId) -> Result<(u32, Counts), CoordinatorError> {
        let r = sqlx::query(
            "SELECT count(*) AS n, coalesce(sum(synced), 0)::bigint AS synced, coalesce(sum(skipped), 0)::bigint AS skipped, \
             coalesce(sum(failed), 0)::bigint AS failed FROM batch_results WHERE run_id = $1",
        )
        .bind(run.0)
        .fetch_one(&self.pool)
        .await?;
        let counts = Counts {
            synced: r.try_get::<i64, _>("synced")? as u64,
            skipped: r.try_get::<i64, _>("skipped")? as u64,
            failed: r.try_get::<i64, _>("failed")? as u64,
        };
        Ok((r.try_get::<i64, _>("n")? as u32, counts))
    }

    /// The group outcomes recorded so far for the run.
    pub async fn recorded_groups(&self, run: RunId) -> Result<GroupCounts, CoordinatorError> {
        let (synced, pending, failed): (i64, i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(groups_synced), 0)::bigint, coalesce(sum(groups_pending), 0)::bigint, \
             coalesce(sum(groups_failed), 0)::bigint FROM batch_results WHERE run_id = $1",
        )
        .bind(run.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(GroupCounts {
            synced: synced as u64,
            pending: pending as u64,
            failed: failed as u64,
        })
    }

    /// Which of `seqs` are recorded.
    pub async fn recorded_seqs(
        &self,
        run: RunId,
        seqs: &[u32],
    ) -> Result<Vec<u32>, CoordinatorError> {
        let seqs: Vec<i32> = seqs.iter().map(|&s| s as i32).collect();
        let found: Vec<i32> =
            sqlx::query_scalar("SELECT seq FROM batch_results WHERE run_id = $1 AND seq = ANY($2)")
                .bind(run.0)
                .bind(&seqs)
                .fetch_all(&self.pool)
                .await?;
        Ok(found.into_iter().map(|s| s as u32).collect())
    }

    /// Every batch is recorded: commit the deltaLink and the summary together, so a crash
    /// leaves either the old deltaLink (the run is redone, idempotently) or the new one.
    /// An on-demand run (`provision.rs`) never touches the tenant: its deltaLink and status
    /// belong to the cycles.
    pub async fn complete(
        &self,
        run: RunId,
        tenant: TenantId,
        delta_link: &str,
        counts: Counts,
        groups: GroupCounts,
    ) -> Result<(), CoordinatorError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE runs SET state = 'completed', synced = $2, skipped = $3, failed = $4, \
             groups_synced = $5, groups_pending = $6, groups_failed = $7, finished_at = now() WHERE id = $1",
        )
        .bind(run.0)
        .bind(counts.synced as i64)
        .bind(counts.skipped as i64)
        .bind(counts.failed as i64)
        .bind(groups.synced as i64)
        .bind(groups.pending as i64)
        .bind(groups.failed as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tenants SET delta_link = $2, status = 'Active', updated_at = now(), sync_requested = false, \
             next_run_at = now() + make_interval(secs => sync_interval_s), \
             groups_delta_link = coalesce((SELECT new_groups_delta_link FROM runs WHERE id = $3), groups_delta_link), \
             quarantine_kind = NULL, quarantine_reason = NULL, quarantined_since = NULL, \
             quarantine_updated_at = NULL, quarantine_backoff_s = NULL \
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM runs WHERE id = $3 AND kind = 'on_demand')",
        )
        .bind(tenant.0)
        .bind(delta_link)
        .bind(run.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The run cannot go on; its recorded batches stay, the tenant's deltaLink does not move.
    pub async fn fail(&self, run: RunId, error: &str) -> Result<(), CoordinatorError> {
        sqlx::query(
            "UPDATE runs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
        )
        .bind(run.0)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the tenant's deltaLink so the next run enumerates everything.
    pub async fn discard_delta_link(&self, tenant: TenantId) -> Result<(), CoordinatorError> {
        sqlx::query("UPDATE tenants SET delta_link = NULL, updated_at = now() WHERE id = $1")
            .bind(tenant.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn stage_query<'q>(
    batch: &Staged<'q>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(
        "WITH staged AS (INSERT INTO staged_batches (run_id, seq, batch) VALUES ($1, $4, $5)), \
              confirmed AS (DELETE FROM staged_batches WHERE run_id = $1 AND seq < $6) \
         UPDATE runs SET cursor_link = $2, kind = $3, batches_published = $4 WHERE id = $1",
    )
    .bind(batch.run.0)
    .bind(batch.cursor_after)
    .bind(batch.kind.as_str())
    .bind(batch.seq as i32)
    .bind(batch.bytes)
    .bind(batch.confirmed_below as i32)
}

/// A batch about to be published, as [`RunStore::stage`] keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Staged<'a> {
    pub run: RunId,
    pub kind: RunKind,
    /// Where the walk continues after the batch's page.
    pub cursor_after: &'a str,
    pub seq: u32,
    /// The encoded [`dirsync_proto::BatchMessage`].
    pub bytes: &'a [u8],
    /// Every batch below this sequence number is confirmed by the broker.
    pub confirmed_below: u32,
}

/// Marks users entering the scope as handled by batch `seq` (-1: nothing to publish).
pub async fn mark_entering<'e>(
    db: impl sqlx::PgExecutor<'e>,
    run: RunId,
    ids: &[String],
    seq: i32,
) -> Result<(), CoordinatorError> {
    sqlx::query("UPDATE run_entering SET seq = $3 WHERE run_id = $1 AND entra_id = ANY($2)")
        .bind(run.0)
        .bind(ids)
        .bind(seq)
        .execute(db)
        .await?;
    Ok(())
}
