//! `GET /tenants/{id}/progress`: the live progress of an instance's sync, read from the
//! Redis counters the workers add each batch to (exactly once, `worker/src/counters.rs`),
//! which cost one round trip however large the run; PostgreSQL's `batch_results` answer
//! when Redis is unreachable or the run's keys are gone (flushed, or expired after a week).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use dirsync_proto::{Counts, RunId, TenantId, Topology};

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::views;
use crate::CoordinatorError;
use crate::runs::RunStore;

/// How long a Redis read may take before PostgreSQL answers instead: a connection manager
/// reconnecting to a Redis that is down would otherwise hold the request.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the counts of a [`Progress`] come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CountsSource {
    Redis,
    Postgres,
}

/// The progress of the instance's running sync, or of its last completed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub run_id: uuid::Uuid,
    /// `enumerating`, `draining`, `awaiting_approval` or `completed`.
    pub state: String,
    /// Batches published so far. Batches sent after the walk (deactivations, group
    /// objects) count once recorded.
    pub batches_published: u32,
    /// Every batch of the run, once its walk is over.
    pub total_batches: Option<u32>,
    /// Batches whose counts are added.
    pub batches_recorded: u64,
    pub users_synced: u64,
    pub users_skipped: u64,
    pub users_failed: u64,
    /// `redis`, or `postgres` when Redis is unreachable or no longer holds the run.
    pub from: CountsSource,
}

/// The run whose progress is shown, as stored.
#[derive(Debug, Clone)]
struct RunRow {
    id: RunId,
    state: String,
    batches_published: u32,
    total_batches: Option<u32>,
}

/// The fields of a run's counts hash: synced, skipped, failed.
type CountFields = (Option<u64>, Option<u64>, Option<u64>);

/// The Redis counters of a run as read: the counts hash's fields and the size of the set
/// of batches added. `None` when the hash is gone: the workers create it with the first
/// batch and it expires a week after the last.
fn redis_counts((synced, skipped, failed): CountFields, counted: u64) -> Option<(u64, Counts)> {
    if synced.is_none() && skipped.is_none() && failed.is_none() {
        return None;
    }
    Some((
        counted,
        Counts {
            synced: synced.unwrap_or_default(),
            skipped: skipped.unwrap_or_default(),
            failed: failed.unwrap_or_default(),
        },
    ))
}

fn progress(run: RunRow, recorded: u64, counts: Counts, from: CountsSource) -> Progress {
    Progress {
        run_id: run.id.0,
        state: run.state,
        batches_published: run
            .batches_published
            .max(u32::try_from(recorded).unwrap_or(u32::MAX)),
        total_batches: run.total_batches,
        batches_recorded: recorded,
        users_synced: counts.synced,
        users_skipped: counts.skipped,
        users_failed: counts.failed,
        from,
    }
}

/// The tenant's running run, else its last completed one.
async fn current_run(pool: &sqlx::PgPool, id: TenantId) -> Result<RunRow, CoordinatorError> {
    let row = sqlx::query(
        "SELECT id, state, batches_published, total_batches FROM runs \
         WHERE tenant_id = $1 AND state <> 'failed' AND kind <> 'on_demand' \
         ORDER BY (state <> 'completed') DESC, coalesce(finished_at, started_at) DESC LIMIT 1",
    )
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoordinatorError::RunNotFound(format!("of instance {id} (none yet)")))?;
    Ok(RunRow {
        id: RunId(row.try_get("id")?),
        state: row.try_get("state")?,
        batches_published: u32::try_from(row.try_get::<i32, _>("batches_published")?).unwrap_or(0),
        total_batches: row
            .try_get::<Option<i32>, _>("total_batches")?
            .and_then(|n| u32::try_from(n).ok()),
    })
}

/// Reads the run's counters in one round trip; `None` when they are gone.
async fn read_redis(
    conn: &mut redis::aio::ConnectionManager,
    topology: &Topology,
    run: RunId,
) -> redis::RedisResult<Option<(u64, Counts)>> {
    let (fields, counted): (CountFields, u64) = redis::pipe()
        .cmd("HMGET")
        .arg(topology.run_counts_key(run))
        .arg(&["synced", "skipped", "failed"])
        .cmd("SCARD")
        .arg(topology.run_counted_key(run))
        .query_async(conn)
        .await?;
    Ok(redis_counts(fields, counted))
}

/// The progress of the running sync (or of the last completed one): batches published and
/// recorded, users synced, skipped and failed so far, from the Redis counters, or from
/// PostgreSQL when Redis cannot answer (`from`).
#[utoipa::path(get, path = "/tenants/{id}/progress", tag = "status",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Progress), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<Progress>> {
    let tenant = TenantId(id);
    views::instance_of(&s.pool, tenant).await?;
    let run = current_run(&s.pool, tenant).await?;
    if let Some(conn) = &s.redis {
        let mut conn = conn.clone();
        match tokio::time::timeout(REDIS_TIMEOUT, read_redis(&mut conn, &s.topology, run.id)).await
        {
            Ok(Ok(Some((recorded, counts)))) => {
                return Ok(Json(progress(run, recorded, counts, CountsSource::Redis)));
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis progress read failed; using postgresql")
            }
            Err(_) => tracing::warn!("redis progress read timed out; using postgresql"),
        }
    }
    let (recorded, counts) = RunStore::new(s.pool.clone()).recorded(run.id).await?;
    Ok(Json(progress(
        run,
        u64::from(recorded),
        counts,
        CountsSource::Postgres,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_counts_are_gone_only_without_any_field() {
        // The hash's fields, the set's size, and what progress reads of them.
        type Case = (CountFields, u64, Option<(u64, Counts)>);
        let cases: [Case; 4] = [
            ((None, None, None), 0, None),
            // The set without the hash cannot be told from a half-flushed run: gone.
            ((None, None, None), 3, None),
            (
                (Some(5), Some(2), Some(1)),
                2,
                Some((
                    2,
                    Counts {
                        synced: 5,
                        skipped: 2,
                        failed: 1,
                    },
                )),
            ),
            (
                (Some(7), None, None),
                1,
                Some((
                    1,
                    Counts {
                        synced: 7,
                        skipped: 0,
                        failed: 0,
                    },
                )),
            ),
        ];
        for (fields, counted, want) in cases {
            assert_eq!(redis_counts(fields, counted), want, "{fields:?} {counted}");
        }
    }

    #[test]
    fn batches_published_is_never_below_recorded() {
        let run = |published| RunRow {
            id: RunId(uuid::Uuid::nil()),
            state: "draining".into(),
            batches_published: published,
            total_batches: None,
        };
        let cases = [(4, 2, 4), (4, 6, 6), (0, 0, 0)];
        for (published, recorded, want) in cases {
            let p = progress(
                run(published),
                recorded,
                Counts::default(),
                CountsSource::Redis,
            );
            assert_eq!(p.batches_published, want, "{published} {recorded}");
        }
    }
}
