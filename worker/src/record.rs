//! Records a processed batch in PostgreSQL, exactly once, in one transaction.
//!
//! The `batch_results` row is inserted first with `ON CONFLICT DO NOTHING`: if it already
//! exists another delivery of the same batch committed first, and this one rolls back and
//! reports the stored counts, so redelivery never counts a batch twice. Mirror upserts,
//! mirror deletions, the run stamp of every user seen, the deferred manager references
//! (see [`crate::deferrals`]) and failed objects are each one bulk statement over UNNEST-ed
//! arrays, sorted by entra id so that concurrent batches lock shared rows in the same order
//! within each statement. Across statements two batches can still wait on each other (two
//! users each in two pages at once); PostgreSQL then aborts one with 40P01, a retryable
//! error: that batch is redelivered, nothing is lost.
//!
//! The rows of users the batch created (no mirror row when planned: most of an initial
//! cycle) are written by a plain `INSERT`, in a savepoint: `ON CONFLICT` costs PostgreSQL a
//! speculative insertion per row, about 40 % more per row. Should another batch have
//! inserted one of them meanwhile (a user in two pages at once), the savepoint is rolled
//! back and they are upserted with the others.

use dirsync_proto::{Counts, RunId, TenantId};
use sqlx::PgPool;

use crate::error::WorkerError;
use crate::hash::to_db;
use crate::outcome::{MirrorChange, Status, UserResult, count};
use tracing::debug;

/// Identifies one batch of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchKey {
    pub tenant: TenantId,
    pub run: RunId,
    pub seq: u32,
}

/// The counts a batch is recorded with, and whether this call recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub counts: Counts,
    pub newly_recorded: bool,
}

fn to_i32(value: u64, what: &str) -> Result<i32, WorkerError> {
    i32::try_from(value).map_err(|_| WorkerError::CountOutOfRange(format!("{what} = {value}")))
}

fn to_u64(value: i32, what: &str) -> Result<u64, WorkerError> {
    u64::try_from(value).map_err(|_| WorkerError::CountOutOfRange(format!("{what} = {value}")))
}

fn seq_i32(seq: u32) -> Result<i32, WorkerError> {
    to_i32(u64::from(seq), "seq")
}

/// The counts of a batch already recorded, if it was.
pub async fn stored_counts(
    pool: &PgPool,
    run: RunId,
    seq: u32,
) -> Result<Option<Counts>, WorkerError> {
    let row: Option<(i32, i32, i32)> = sqlx::query_as(
        "SELECT synced, skipped, failed FROM batch_results WHERE run_id = $1 AND seq = $2",
    )
    .bind(run.0)
    .bind(seq_i32(seq)?)
    .fetch_optional(pool)
    .await?;
    row.map(|(synced, skipped, failed)| {
        Ok(Counts {
            synced: to_u64(synced, "synced")?,
            skipped: to_u64(skipped, "skipped")?,
            failed: to_u64(failed, "failed")?,
        })
    })
    .transpose()
}

/// One mirror row to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorUpsert<'a> {
    pub entra_id: &'a str,
    pub webex_id: &'a str,
    pub content_hash: u64,
    pub active: bool,
    /// The attributes as JSON text.
    pub attributes: &'a str,
    /// No mirror row when planned: inserted first, upserted only on a conflict.
    pub created: bool,
}

/// The rows a batch writes, each list sorted by entra id.
///
/// Two batches of a tenant can touch the same mirror rows at once (a user changed in two
/// pages). Each statement locks its rows in array order, so two transactions with the rows
/// in different orders could each hold a lock the other waits for (40P01); one order for
/// everybody rules that out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MirrorWrites<'a> {
    pub upserts: Vec<MirrorUpsert<'a>>,
    pub removed: Vec<&'a str>,
    /// (entra id, reason) of the failed users.
    pub failed: Vec<(&'a str, &'a str)>,
}

impl<'a> MirrorWrites<'a> {
    pub fn from_results(results: &'a [UserResult]) -> Self {
        let mut writes = MirrorWrites::default();
        for r in results {
            match &r.mirror {
                Some(MirrorChange::Upsert {
                    webex_id,
                    content_hash,
                    active,
                    attributes_json,
                    created,
                }) => writes.upserts.push(MirrorUpsert {
                    entra_id: &r.entra_id,
                    webex_id,
                    content_hash: *content_hash,
                    active: *active,
                    attributes: attributes_json,
                    created: *created,
                }),
                Some(MirrorChange::Remove) => writes.removed.push(&r.entra_id),
                None => {}
            }
            if let Status::Failed(reason) = &r.status {
                writes.failed.push((&r.entra_id, reason));
            }
        }
        writes.upserts.sort_by(|a, b| a.entra_id.cmp(b.entra_id));
        writes.removed.sort_unstable();
        writes.failed.sort_by(|a, b| a.0.cmp(b.0));
        writes
    }

    /// The distinct entra ids of the batch, sorted (the lock order), less the removed ones.
    pub fn seen(&self, results: &'a [UserResult]) -> Vec<&'a str> {
        let mut ids: Vec<&str> = results.iter().map(|r| r.entra_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| self.removed.binary_search(id).is_err());
        ids
    }

    /// [`Self::seen`] without the users this batch upserts (their upsert stamps them).
    pub fn seen_unwritten(&self, results: &'a [UserResult]) -> Vec<&'a str> {
        let mut ids = self.seen(results);
        ids.retain(|id| {
            self.upserts
                .binary_search_by(|u| u.entra_id.cmp(id))
                .is_err()
        });
        ids
    }
}

pub use crate::deferrals::RefChanges;

/// Records the batch: its result row, the mirror changes and the failed objects.
pub async fn record_batch(
    pool: &PgPool,
    key: BatchKey,
    results: &[UserResult],
) -> Result<Recorded, WorkerError> {
    record_batch_with(pool, key, results, &RefChanges::default()).await
}

/// [`record_batch`] with the batch's manager references, in the same transaction.
#[tracing::instrument(
    name = "record",
    skip_all,
    fields(tenant_id = %key.tenant, run_id = %key.run, seq = key.seq, users = results.len(), newly_recorded)
)]
pub async fn record_batch_with(
    pool: &PgPool,
    key: BatchKey,
    results: &[UserResult],
    refs: &RefChanges,
) -> Result<Recorded, WorkerError> {
    let counts = if refs.partial_pass {
        Counts {
            failed: count(results).failed,
            ..Counts::default()
        }
    } else {
        count(results)
    };
    let seq = seq_i32(key.seq)?;
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO batch_results (run_id, seq, tenant_id, synced, skipped, failed) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, seq) DO NOTHING",
    )
    .bind(key.run.0)
    .bind(seq)
    .bind(key.tenant.0)
    .bind(to_i32(counts.synced, "synced")?)
    .bind(to_i32(counts.skipped, "skipped")?)
    .bind(to_i32(counts.failed, "failed")?)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tracing::Span::current().record("newly_recorded", inserted != 0);
    if inserted == 0 {
        tx.rollback().await?;
        let stored = stored_counts(pool, key.run, key.seq)
            .await?
            .unwrap_or(counts);
        return Ok(Recorded {
            counts: stored,
            newly_recorded: false,
        });
    }

    let writes = MirrorWrites::from_results(results);
    let removed = &writes.removed;
    let failed_ids: Vec<&str> = writes.failed.iter().map(|f| f.0).collect();
    let (settled, waiting) = refs.effective(&failed_ids, removed);
    let failed_reasons: Vec<&str> = writes.failed.iter().map(|f| f.1).collect();

    // Every user of the batch was seen by this run, skipped and failed ones too: a full
    // enumeration's reconciliation deactivates only the active rows left unstamped.
    // A follow-up pass entry is not a sighting in Graph: stamping it would hide a user that
    // a full enumeration did not return.
    let sighting = (!refs.partial_pass).then_some(key.run.0);
    let rows = MirrorRows {
        tenant: key.tenant,
        sighting,
        seq,
    };
    let (created, mut existing): (Vec<&MirrorUpsert>, Vec<&MirrorUpsert>) =
        writes.upserts.iter().partition(|u| u.created);
    if !created.is_empty() {
        // A savepoint: a conflict rolls back these inserts, not the batch.
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
        match rows.write(&mut savepoint, INSERT_ROWS, &created).await {
            Ok(()) => savepoint.commit().await?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                debug!("a created user's mirror row exists already, upserting it");
                savepoint.rollback().await?;
                existing.extend(created);
                existing.sort_by(|a, b| a.entra_id.cmp(b.entra_id));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !existing.is_empty() {
        rows.write(&mut tx, UPSERT_ROWS, &existing).await?;
    }
    if !removed.is_empty() {
        // Joined from the keys, as in `crate::mirror`: one primary-key probe per user.
        sqlx::query(
            "DELETE FROM mirror_users m USING UNNEST($2::text[]) AS k(entra_id) \
             WHERE m.tenant_id = $1 AND m.entra_id = k.entra_id",
        )
        .bind(key.tenant.0)
        .bind(removed)
        .execute(&mut *tx)
        .await?;
    }
    // The users seen without a mirror write (unchanged, skipped, failed) are stamped alone;
    // a follow-up pass stamps nothing.
    let unwritten = match sighting {
        Some(_) => writes.seen_unwritten(results),
        None => Vec::new(),
    };
    if !unwritten.is_empty() {
        sqlx::query(
            "UPDATE mirror_users m SET \
                 last_seen_seq = CASE WHEN m.last_seen_run = $2 THEN GREATEST(m.last_seen_seq, $3) \
                     ELSE $3 END, \
                 last_seen_run = $2 \
             FROM UNNEST($4::text[]) AS s(entra_id) \
             WHERE m.tenant_id = $1 AND m.entra_id = s.entra_id",
        )
        .bind(key.tenant.0)
        .bind(sighting)
        .bind(seq)
        .bind(&unwritten)
        .execute(&mut *tx)
        .await?;
    }
    // Escrow: failed users wait for a later retry (one attempt per run); users this batch
    // handled without failing are released.
    if !failed_ids.is_empty() {
        sqlx::query(
            "INSERT INTO escrow (tenant_id, entra_id, reason, last_run_id) \
             SELECT $1, f.entra_id, f.reason, $2 FROM UNNEST($3::text[], $4::text[]) AS f(entra_id, reason) \
             ON CONFLICT (tenant_id, entra_id) DO UPDATE SET reason = EXCLUDED.reason, \
                 attempts = escrow.attempts + CASE WHEN escrow.last_run_id = EXCLUDED.last_run_id THEN 0 ELSE 1 END, \
                 last_failed_at = now(), last_run_id = EXCLUDED.last_run_id",
        )
        .bind(key.tenant.0)
        .bind(key.run.0)
        .bind(&failed_ids)
        .bind(&failed_reasons)
        .execute(&mut *tx)
        .await?;
    }
    let mut released: Vec<&str> = results
        .iter()
        .filter(|r| !matches!(r.status, Status::Failed(_)))
        .map(|r| r.entra_id.as_str())
        .filter(|id| failed_ids.binary_search(id).is_err())
        .collect();
    released.sort_unstable();
    released.dedup();
    if !released.is_empty() {
        sqlx::query("DELETE FROM escrow WHERE tenant_id = $1 AND entra_id = ANY($2)")
            .bind(key.tenant.0)
            .bind(&released)
            .execute(&mut *tx)
            .await?;
    }
    if !failed_ids.is_empty() {
        sqlx::query(
            "INSERT INTO failed_objects (run_id, seq, entra_id, reason) \
             SELECT $1, $2, f.entra_id, f.reason FROM UNNEST($3::text[], $4::text[]) AS f(entra_id, reason) \
             ON CONFLICT (run_id, seq, entra_id) DO NOTHING",
        )
        .bind(key.run.0)
        .bind(seq)
        .bind(&failed_ids)
        .bind(&failed_reasons)
        .execute(&mut *tx)
        .await?;
    }
    if !settled.is_empty() || !waiting.is_empty() {
        sqlx::query(PROBES_ONLY).execute(&mut *tx).await?;
    }
    if !settled.is_empty() {
        let (ids, managers): (Vec<&str>, Vec<&str>) = settled.into_iter().unzip();
        sqlx::query(
            "DELETE FROM deferred_refs d USING UNNEST($2::text[], $3::text[]) AS k(entra_id, manager_id) \
             WHERE d.tenant_id = $1 AND d.entra_id = k.entra_id AND d.manager_id = k.manager_id",
        )
        .bind(key.tenant.0)
        .bind(&ids)
        .bind(&managers)
        .execute(&mut *tx)
        .await?;
    }
    if !waiting.is_empty() {
        let (ids, managers): (Vec<&str>, Vec<&str>) = waiting.into_iter().unzip();
        sqlx::query(
            "INSERT INTO deferred_refs (tenant_id, entra_id, manager_id, run_id) \
             SELECT $1, w.entra_id, w.manager_id, $2 \
             FROM UNNEST($3::text[], $4::text[]) AS w(entra_id, manager_id) \
             ON CONFLICT (tenant_id, entra_id) DO UPDATE \
                 SET manager_id = EXCLUDED.manager_id, run_id = EXCLUDED.run_id",
        )
        .bind(key.tenant.0)
        .bind(key.run.0)
        .bind(&ids)
        .bind(&managers)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Recorded {
        counts,
        newly_recorded: true,
    })
}

/// Plans the rest of the transaction with index scans and nested loops only (`SET LOCAL`).
/// The deferral statements come last and are key probes into `deferred_refs`, a narrow
/// table PostgreSQL sees as cheap to scan, often without statistics (an initial cycle fills
/// it within seconds): it hashed the tenant's whole range instead, 57 ms to delete 450 keys
/// among 140,000 against 2 ms probing them (BENCHMARKS.md, item 1).
const PROBES_ONLY: &str = "SELECT set_config('enable_hashjoin', 'off', true), \
     set_config('enable_mergejoin', 'off', true), set_config('enable_bitmapscan', 'off', true), \
     set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true)";

/// The mirror rows' columns, bound as arrays; `ON CONFLICT` is added for an upsert.
macro_rules! insert_rows {
    () => {
        "INSERT INTO mirror_users (tenant_id, entra_id, webex_id, content_hash, active, attributes, updated_at, \
             last_seen_run, last_seen_seq) \
         SELECT $1, u.entra_id, u.webex_id, u.content_hash, u.active, u.attributes::json, now(), $7, \
             CASE WHEN $7::uuid IS NULL THEN NULL ELSE $8::int4 END \
         FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::bool[], $6::text[]) \
              AS u(entra_id, webex_id, content_hash, active, attributes)"
    };
}

/// New rows (users created by the batch).
const INSERT_ROWS: &str = insert_rows!();

/// Rows that may exist. The upsert stamps the sighting too (one write per row, not two);
/// the stamp only moves forward within a run, whatever order batches land in.
const UPSERT_ROWS: &str = concat!(
    insert_rows!(),
    " ON CONFLICT (tenant_id, entra_id) DO UPDATE SET \
         webex_id = EXCLUDED.webex_id, content_hash = EXCLUDED.content_hash, \
         active = EXCLUDED.active, attributes = EXCLUDED.attributes, updated_at = now(), \
         last_seen_seq = CASE WHEN $7::uuid IS NULL THEN mirror_users.last_seen_seq \
             WHEN mirror_users.last_seen_run = $7 THEN GREATEST(mirror_users.last_seen_seq, $8) \
             ELSE $8 END, \
         last_seen_run = COALESCE($7, mirror_users.last_seen_run)"
);

/// What every mirror row of a batch is written with besides its own values.
struct MirrorRows {
    tenant: TenantId,
    sighting: Option<uuid::Uuid>,
    seq: i32,
}

impl MirrorRows {
    /// Writes `rows` (sorted by entra id) with `sql`, [`INSERT_ROWS`] or [`UPSERT_ROWS`].
    async fn write(
        &self,
        conn: &mut sqlx::PgConnection,
        sql: &'static str,
        rows: &[&MirrorUpsert<'_>],
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<&str> = rows.iter().map(|u| u.entra_id).collect();
        let webex: Vec<&str> = rows.iter().map(|u| u.webex_id).collect();
        let hashes: Vec<i64> = rows.iter().map(|u| to_db(u.content_hash)).collect();
        let active: Vec<bool> = rows.iter().map(|u| u.active).collect();
        // Sent as text for the `json` column: a `jsonb` parameter would be parsed into jsonb
        // and printed back (migration 22). The text is the plan's, written once.
        let attrs: Vec<&str> = rows.iter().map(|u| u.attributes).collect();
        sqlx::query(sql)
            .bind(self.tenant.0)
            .bind(&ids)
            .bind(&webex)
            .bind(&hashes)
            .bind(&active)
            .bind(&attrs)
            .bind(self.sighting)
            .bind(self.seq)
            .execute(conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(id: &str) -> UserResult {
        UserResult {
            entra_id: id.into(),
            status: Status::Synced,
            mirror: Some(MirrorChange::Upsert {
                webex_id: format!("w-{id}"),
                content_hash: 7,
                active: true,
                attributes_json: "{}".into(),
                created: false,
            }),
        }
    }

    fn removed(id: &str) -> UserResult {
        UserResult {
            entra_id: id.into(),
            status: Status::Synced,
            mirror: Some(MirrorChange::Remove),
        }
    }

    /// (results, upserted ids, removed ids, failed ids)
    type SortCase = (
        Vec<UserResult>,
        Vec<&'static str>,
        Vec<&'static str>,
        Vec<&'static str>,
    );

    #[test]
    fn writes_are_sorted_by_entra_id() {
        let cases: Vec<SortCase> = vec![
            (vec![], vec![], vec![], vec![]),
            (
                vec![upsert("c"), upsert("a"), upsert("b")],
                vec!["a", "b", "c"],
                vec![],
                vec![],
            ),
            (
                vec![
                    removed("z"),
                    UserResult::failed("f2", "x"),
                    upsert("m"),
                    UserResult::skipped("s"),
                    removed("b"),
                    upsert("d"),
                    UserResult::failed("f1", "y"),
                ],
                vec!["d", "m"],
                vec!["b", "z"],
                vec!["f1", "f2"],
            ),
        ];
        for (i, (results, upserted, gone, failed)) in cases.iter().enumerate() {
            let writes = MirrorWrites::from_results(results);
            let ids: Vec<&str> = writes.upserts.iter().map(|u| u.entra_id).collect();
            assert_eq!(&ids, upserted, "case {i}");
            assert_eq!(&writes.removed, gone, "case {i}");
            let failed_ids: Vec<&str> = writes.failed.iter().map(|f| f.0).collect();
            assert_eq!(&failed_ids, failed, "case {i}");
        }
    }

    #[test]
    fn every_user_of_the_batch_is_seen_except_the_removed() {
        // (results, seen, seen and not stamped by their upsert)
        let cases: Vec<(Vec<UserResult>, Vec<&str>, Vec<&str>)> = vec![
            (vec![], vec![], vec![]),
            (
                vec![
                    upsert("c"),
                    UserResult::skipped("a"),
                    UserResult::failed("b", "x"),
                    UserResult::skipped("a"),
                ],
                vec!["a", "b", "c"],
                vec!["a", "b"],
            ),
            (
                vec![removed("r"), upsert("u"), removed("a")],
                vec!["u"],
                vec![],
            ),
            (
                vec![upsert("b"), UserResult::skipped("c"), upsert("a")],
                vec!["a", "b", "c"],
                vec!["c"],
            ),
        ];
        for (i, (results, seen, unwritten)) in cases.iter().enumerate() {
            let writes = MirrorWrites::from_results(results);
            assert_eq!(&writes.seen(results), seen, "case {i}");
            assert_eq!(&writes.seen_unwritten(results), unwritten, "case {i}");
        }
    }

    #[test]
    fn parallel_arrays_stay_aligned() {
        let results = vec![upsert("b"), UserResult::failed("y", "why"), upsert("a")];
        let writes = MirrorWrites::from_results(&results);
        for u in &writes.upserts {
            assert_eq!(u.webex_id, format!("w-{}", u.entra_id));
        }
        assert_eq!(writes.failed, vec![("y", "why")]);
    }
}
