//! The `dead_letters` table, and the failed result row a dead letter stands for.
//!
//! Taking a dead letter is one transaction: the letter is kept (once per batch: the broker
//! may hand it over twice) and its batch gets a `batch_results` row with every object
//! failed, a `failed_objects` row per user saying why, and the users in escrow for the
//! next run's retry, unless the batch is recorded already. A re-drive undoes exactly that row in one transaction before the batch is
//! republished, so the worker that takes it records it like any batch.

use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Row, Transaction};

use dirsync_proto::{BatchMessage, RunId};

use super::letter::DeadLetter;
use crate::CoordinatorError;

/// What taking a dead letter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub id: uuid::Uuid,
    /// False: the broker handed the same dead letter over again.
    pub newly: bool,
    /// The run batch whose failed row the letter stands for, with its failed users: what
    /// the run's live counters must hold for it (added once, like a worker's).
    pub counted: Option<(RunId, u32, u64)>,
}

/// The reason shown for each user of a dead-lettered batch.
pub fn failed_reason(reason: &str) -> String {
    format!("batch dead-lettered ({reason}); see `dirsync dead-letter list`")
}

/// Keeps `letter` and records its batch as failed (see the module doc).
pub async fn take(pool: &PgPool, letter: &DeadLetter) -> Result<Taken, CoordinatorError> {
    let seq = letter.seq.map(|s| s as i32);
    let mut tx = pool.begin().await?;
    let inserted: Option<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO dead_letters (id, tenant_id, run_id, seq, queue, reason, delivery_count, \
             decode_error, users, groups, headers, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (run_id, seq) WHERE state = 'held' AND run_id IS NOT NULL AND seq IS NOT NULL \
         DO NOTHING RETURNING id",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(letter.tenant.map(|t| t.0))
    .bind(letter.run.map(|r| r.0))
    .bind(seq)
    .bind(&letter.queue)
    .bind(&letter.reason)
    .bind(letter.delivery_count.map(|n| n as i32))
    .bind(&letter.decode_error)
    .bind(letter.users as i32)
    .bind(letter.groups as i32)
    .bind(&letter.headers)
    .bind(&letter.body)
    .fetch_optional(&mut *tx)
    .await?;
    let (Some(run), Some(seq)) = (letter.run, letter.seq) else {
        let id = inserted.expect("a letter without a batch never conflicts");
        tx.commit().await?;
        return Ok(Taken {
            id,
            newly: true,
            counted: None,
        });
    };
    let Some(id) = inserted else {
        // Handed over again: the first copy did the work; its counts may still be missing
        // from Redis if that step failed, and adding them is idempotent.
        tx.rollback().await?;
        let (id, recorded): (uuid::Uuid, bool) = sqlx::query_as(
            "SELECT id, recorded_failed FROM dead_letters \
             WHERE run_id = $1 AND seq = $2 AND state = 'held'",
        )
        .bind(run.0)
        .bind(seq as i32)
        .fetch_one(pool)
        .await?;
        return Ok(Taken {
            id,
            newly: false,
            counted: recorded.then_some((run, seq, u64::from(letter.users))),
        });
    };
    let recorded = record_failed(&mut tx, letter, run, seq).await?;
    sqlx::query("UPDATE dead_letters SET recorded_failed = $2 WHERE id = $1")
        .bind(id)
        .bind(recorded == Recorded::Run)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Taken {
        id,
        newly: true,
        counted: (recorded == Recorded::Run).then_some((run, seq, u64::from(letter.users))),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// A `batch_results` row (and the failed users) for a sync run's batch.
    Run,
    /// A `dry_run_batches` row for a dry run's batch.
    DryRun,
    /// Nothing: the batch is recorded already, or its run is gone.
    Nothing,
}

/// Records the letter's batch as failed unless it is recorded already.
async fn record_failed(
    tx: &mut Transaction<'_, Postgres>,
    letter: &DeadLetter,
    run: RunId,
    seq: u32,
) -> Result<Recorded, CoordinatorError> {
    let inserted = sqlx::query(
        "INSERT INTO batch_results (run_id, seq, tenant_id, synced, skipped, failed, groups_failed) \
         SELECT r.id, $2, r.tenant_id, 0, 0, $3, $4 FROM runs r WHERE r.id = $1 \
         ON CONFLICT (run_id, seq) DO NOTHING",
    )
    .bind(run.0)
    .bind(seq as i32)
    .bind(letter.users as i32)
    .bind(letter.groups as i32)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        if !letter.user_ids.is_empty() {
            sqlx::query(
                "INSERT INTO failed_objects (run_id, seq, entra_id, reason) \
                 SELECT $1, $2, u, $4 FROM UNNEST($3::text[]) AS u \
                 ON CONFLICT (run_id, seq, entra_id) DO NOTHING",
            )
            .bind(run.0)
            .bind(seq as i32)
            .bind(&letter.user_ids)
            .bind(failed_reason(&letter.reason))
            .execute(&mut **tx)
            .await?;
            // Nothing lost: the users wait in escrow for the next run's retry, as a worker
            // escrows the users it failed (one attempt per run). A re-drive the worker then
            // records releases the ones it handled, the normal way.
            sqlx::query(
                "INSERT INTO escrow (tenant_id, entra_id, reason, last_run_id) \
                 SELECT r.tenant_id, u, $3, r.id FROM runs r, UNNEST($2::text[]) AS u \
                 WHERE r.id = $1 \
                 ON CONFLICT (tenant_id, entra_id) DO UPDATE SET reason = EXCLUDED.reason, \
                     attempts = escrow.attempts + CASE WHEN escrow.last_run_id = EXCLUDED.last_run_id THEN 0 ELSE 1 END, \
                     last_failed_at = now(), last_run_id = EXCLUDED.last_run_id",
            )
            .bind(run.0)
            .bind(&letter.user_ids)
            .bind(failed_reason(&letter.reason))
            .execute(&mut **tx)
            .await?;
        }
        return Ok(Recorded::Run);
    }
    // A dry run's batch: its dry run waits for a `dry_run_batches` row the same way.
    let dry = sqlx::query(
        "INSERT INTO dry_run_batches (dry_run_id, seq, reported, skipped, failed) \
         SELECT d.id, $2, 0, 0, $3 FROM dry_runs d WHERE d.id = $1 \
         ON CONFLICT (dry_run_id, seq) DO NOTHING",
    )
    .bind(run.0)
    .bind(seq as i32)
    .bind((letter.users + letter.groups) as i32)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(if dry == 1 {
        Recorded::DryRun
    } else {
        Recorded::Nothing
    })
}

/// A dead letter as operators list it (its body and headers only in [`DeadLetterDetail`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    pub id: uuid::Uuid,
    pub tenant_id: Option<uuid::Uuid>,
    pub run_id: Option<uuid::Uuid>,
    pub seq: Option<i32>,
    /// The queue it died in.
    pub queue: String,
    /// `rejected` (undecodable, or a failure that can never succeed), `delivery_limit`
    /// (failed, panicked or lost its worker too many times), ...
    pub reason: String,
    pub delivery_count: Option<i32>,
    /// Why its body cannot be decoded; such a letter cannot be re-driven.
    pub decode_error: Option<String>,
    /// Users and groups counted failed for it.
    pub users: i32,
    pub groups: i32,
    /// Whether its batch's failed result row was written for it.
    pub recorded_failed: bool,
    /// `held`, `redriving`, `redriven` or `resolved` (the re-driven batch was recorded).
    pub state: String,
    pub dead_lettered_at: chrono::DateTime<chrono::Utc>,
    pub redriven_at: Option<chrono::DateTime<chrono::Utc>>,
    pub redriven_by: Option<String>,
    pub body_bytes: i32,
}

/// One dead letter with its headers and (as text, at most [`BODY_SHOWN`] bytes) its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub letter: DeadLetterView,
    #[schema(value_type = Object)]
    pub headers: serde_json::Value,
    pub body: String,
}

/// Most bytes of a body shown.
pub const BODY_SHOWN: usize = 16 * 1024;

const VIEW_COLUMNS: &str = "id, tenant_id, run_id, seq, queue, reason, delivery_count, decode_error, \
     users, groups, recorded_failed, state, dead_lettered_at, redriven_at, redriven_by, \
     length(body) AS body_bytes";

fn view(r: &sqlx::postgres::PgRow) -> Result<DeadLetterView, sqlx::Error> {
    Ok(DeadLetterView {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        run_id: r.try_get("run_id")?,
        seq: r.try_get("seq")?,
        queue: r.try_get("queue")?,
        reason: r.try_get("reason")?,
        delivery_count: r.try_get("delivery_count")?,
        decode_error: r.try_get("decode_error")?,
        users: r.try_get("users")?,
        groups: r.try_get("groups")?,
        recorded_failed: r.try_get("recorded_failed")?,
        state: r.try_get("state")?,
        dead_lettered_at: r.try_get("dead_lettered_at")?,
        redriven_at: r.try_get("redriven_at")?,
        redriven_by: r.try_get("redriven_by")?,
        body_bytes: r.try_get("body_bytes")?,
    })
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct Filter {
    /// Only this instance's.
    pub tenant: Option<uuid::Uuid>,
    /// Only this run's.
    pub run: Option<uuid::Uuid>,
    /// Also the ones re-driven already (default: the held ones only).
    #[serde(default)]
    pub all: bool,
    /// Most letters, newest first (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// The dead letters `filter` selects, newest first.
pub async fn list(pool: &PgPool, filter: &Filter) -> Result<Vec<DeadLetterView>, CoordinatorError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VIEW_COLUMNS} FROM dead_letters \
         WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::uuid IS NULL OR run_id = $2) \
           AND ($3 OR state IN ('held', 'redriving')) \
         ORDER BY dead_lettered_at DESC, id LIMIT $4"
    )))
    .bind(filter.tenant)
    .bind(filter.run)
    .bind(filter.all)
    .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(view).collect::<Result<_, _>>()?)
}

/// One dead letter, with its headers and body.
pub async fn get(
    pool: &PgPool,
    id: uuid::Uuid,
) -> Result<Option<DeadLetterDetail>, CoordinatorError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VIEW_COLUMNS}, headers, body FROM dead_letters WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let body: Vec<u8> = r.try_get("body")?;
    let shown = &body[..body.len().min(BODY_SHOWN)];
    Ok(Some(DeadLetterDetail {
        letter: view(&r)?,
        headers: r.try_get("headers")?,
        body: String::from_utf8_lossy(shown).into_owned(),
    }))
}

/// A dead letter whose failed row is removed and which is to be republished.
#[derive(Debug, Clone)]
pub struct Redrive {
    pub id: uuid::Uuid,
    pub batch: BatchMessage,
    pub body: Vec<u8>,
    /// Its failed row was removed: the run's live counters must forget it too.
    pub uncounted: Option<(RunId, u32, u64)>,
}

/// Starts re-driving dead letter `id` for `by`: refuses what cannot be re-driven (see
/// [`super::redrive`]), then in one transaction removes the failed row written for it and
/// marks it `redriving`. `None`: no such dead letter.
pub async fn begin_redrive(
    pool: &PgPool,
    id: uuid::Uuid,
    by: &str,
) -> Result<Option<Redrive>, CoordinatorError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT state, body, recorded_failed, users, redriven_at FROM dead_letters WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.try_get("state")?;
    if state == "redriven" || state == "resolved" {
        let at: Option<chrono::DateTime<chrono::Utc>> = row.try_get("redriven_at")?;
        return Err(CoordinatorError::Conflict(format!(
            "dead letter {id} was re-driven already ({})",
            at.map_or_else(|| "-".into(), |t| t.to_rfc3339())
        )));
    }
    let body: Vec<u8> = row.try_get("body")?;
    let batch = BatchMessage::decode(&body).map_err(|e| {
        CoordinatorError::Conflict(format!(
            "dead letter {id} cannot be re-driven: its body is not a batch this coordinator can \
             decode ({e}); it stays listed as the record of its failed batch"
        ))
    })?;
    if batch.dry_run {
        return Err(CoordinatorError::Conflict(format!(
            "dead letter {id} is a dry run's batch: start a new dry run instead"
        )));
    }
    let run: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> =
        sqlx::query_as("SELECT started_at, tenant_id FROM runs WHERE id = $1")
            .bind(batch.run_id.0)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((started, tenant)) = run else {
        return Err(CoordinatorError::Conflict(format!(
            "dead letter {id} cannot be re-driven: its run {} no longer exists",
            batch.run_id
        )));
    };
    // A later cycle may have pushed newer values of the same users: the old batch would
    // put older ones back, and nothing would correct them until the users change again.
    let later: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE tenant_id = $1 AND id <> $2 \
         AND kind <> 'on_demand' AND started_at > $3)",
    )
    .bind(tenant)
    .bind(batch.run_id.0)
    .bind(started)
    .fetch_one(&mut *tx)
    .await?;
    if later {
        return Err(CoordinatorError::Conflict(format!(
            "dead letter {id} cannot be re-driven: a later sync of its instance has started \
             since, and this older batch could overwrite newer values; its users stay failed \
             in run {} (a full resync, or their next change in Entra, syncs them)",
            batch.run_id
        )));
    }
    let recorded: bool = row.try_get("recorded_failed")?;
    let users: i32 = row.try_get("users")?;
    if recorded {
        let seq = batch.seq as i32;
        sqlx::query("DELETE FROM batch_results WHERE run_id = $1 AND seq = $2")
            .bind(batch.run_id.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM failed_objects WHERE run_id = $1 AND seq = $2")
            .bind(batch.run_id.0)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE dead_letters SET state = 'redriving', recorded_failed = false, redriven_at = now(), \
         redriven_by = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Redrive {
        id,
        uncounted: recorded.then_some((batch.run_id, batch.seq, users.max(0) as u64)),
        batch,
        body,
    }))
}

/// The re-driven batch is the broker's again.
pub async fn finish_redrive(pool: &PgPool, id: uuid::Uuid) -> Result<(), CoordinatorError> {
    sqlx::query("UPDATE dead_letters SET state = 'redriven' WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The republish failed: the letter is held again, with its failed row back (unless a
/// worker recorded the batch meanwhile). Returns what the live counters must hold again.
pub async fn abort_redrive(
    pool: &PgPool,
    redrive: &Redrive,
) -> Result<Option<(RunId, u32, u64)>, CoordinatorError> {
    let mut tx = pool.begin().await?;
    let mut letter = DeadLetter::read(None, &redrive.body);
    letter.reason = sqlx::query_scalar("SELECT reason FROM dead_letters WHERE id = $1")
        .bind(redrive.id)
        .fetch_one(&mut *tx)
        .await?;
    let (run, seq) = (redrive.batch.run_id, redrive.batch.seq);
    let recorded = record_failed(&mut tx, &letter, run, seq).await? == Recorded::Run;
    sqlx::query(
        "UPDATE dead_letters SET state = 'held', recorded_failed = $2, redriven_at = NULL, \
         redriven_by = NULL WHERE id = $1",
    )
    .bind(redrive.id)
    .bind(recorded)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(recorded.then_some((run, seq, u64::from(letter.users))))
}

/// Marks `redriven` letters whose batch a worker has recorded since as `resolved`, and
/// brings the summary of their runs that completed meanwhile up to date with
/// `batch_results` (the source of truth). Returns how many letters were resolved.
pub async fn resolve_recorded(pool: &PgPool) -> Result<u64, CoordinatorError> {
    let mut tx = pool.begin().await?;
    let runs: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE dead_letters d SET state = 'resolved' FROM batch_results b \
         WHERE d.state = 'redriven' AND b.run_id = d.run_id AND b.seq = d.seq \
           AND b.recorded_at >= d.redriven_at \
         RETURNING d.run_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let resolved = runs.len() as u64;
    let mut runs = runs;
    runs.sort_unstable();
    runs.dedup();
    if !runs.is_empty() {
        sqlx::query(
            "UPDATE runs r SET synced = s.synced, skipped = s.skipped, failed = s.failed, \
                 groups_synced = s.groups_synced, groups_pending = s.groups_pending, \
                 groups_failed = s.groups_failed \
             FROM (SELECT run_id, sum(synced)::bigint AS synced, sum(skipped)::bigint AS skipped, \
                       sum(failed)::bigint AS failed, sum(groups_synced)::bigint AS groups_synced, \
                       sum(groups_pending)::bigint AS groups_pending, \
                       sum(groups_failed)::bigint AS groups_failed \
                   FROM batch_results WHERE run_id = ANY($1) GROUP BY run_id) s \
             WHERE r.id = s.run_id AND r.state = 'completed'",
        )
        .bind(&runs)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(resolved)
}
