//! A dry run's batch: plan it exactly as a sync would, write the report rows, push nothing.
//!
//! Nothing a sync relies on is touched: no SCIM write, no mirror row, no escrow, no counts
//! in Redis. The only SCIM traffic is a search for the userNames the sync would create
//! (50 per request, within the org's rate limit), so that a user Webex already has shows as
//! `Matched`. That search failing does not fail the batch: its rows stay `Add` and say why,
//! because a dry run is how an operator finds such problems, and must end with a report.
//!
//! The rows and the batch's `dry_run_batches` row commit in one transaction; a redelivered
//! batch finds that row and only repeats its result event.

use dirsync_proto::{BatchMessage, Counts};
use sqlx::PgPool;
use tracing::debug;

use crate::batch::plan_users;
use crate::error::WorkerError;
use crate::report::{BatchReport, ReportAction, report_batch};
use crate::scim::ScimClient;
use crate::tenant::Tenant;

/// userNames per Webex search.
pub const NAMES_PER_SEARCH: usize = 50;

/// The batch's report, with the users to create looked up in Webex.
pub async fn report(
    pool: &PgPool,
    tenant: &Tenant,
    client: &ScimClient,
    batch: &BatchMessage,
) -> Result<BatchReport, WorkerError> {
    let (planned, _, mirror) = match plan_users(pool, tenant, &batch.users).await? {
        Ok(plan) => plan,
        Err(reason) => return Ok(mapping_failed(batch, reason)),
    };
    let mut report = report_batch(&batch.users, &planned, &mirror);
    look_up_adds(client, &mut report).await;
    Ok(report)
}

/// Turns the `Add`s whose userName Webex has into `Matched`.
async fn look_up_adds(client: &ScimClient, report: &mut BatchReport) {
    let adds: Vec<usize> = report
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.action == ReportAction::Add && !r.fails && r.user_name.is_some())
        .map(|(i, _)| i)
        .collect();
    for chunk in adds.chunks(NAMES_PER_SEARCH) {
        let names: Vec<&str> = chunk
            .iter()
            .filter_map(|&i| report.rows[i].user_name.as_deref())
            .collect();
        match client.existing_user_names(&names).await {
            Ok(found) => {
                for &i in chunk {
                    let row = &mut report.rows[i];
                    if row
                        .user_name
                        .as_deref()
                        .is_some_and(|n| found.contains(&n.to_lowercase()))
                    {
                        row.found_in_webex();
                    }
                }
            }
            Err(e) => {
                debug!(error = %e, "cannot search webex for the users to add");
                let why = if e.is_credential_failure() {
                    format!("fails: webex refused the instance's credentials ({e})")
                } else {
                    format!("not in Webex from this instance; webex could not be searched: {e}")
                };
                for &i in chunk {
                    let row = &mut report.rows[i];
                    row.fails = e.is_credential_failure();
                    row.reason = why.clone();
                }
            }
        }
    }
}

fn mapping_failed(batch: &BatchMessage, reason: &str) -> BatchReport {
    let planned: Vec<_> = batch
        .users
        .iter()
        .map(|u| crate::pipeline::Planned::Plan {
            entra_id: u.id.clone(),
            plan: crate::diff::Plan::failed(reason.to_string(), Default::default()),
        })
        .collect();
    report_batch(&batch.users, &planned, &Default::default())
}

/// The counts of a dry run's batch already reported, if it was.
pub async fn stored(pool: &PgPool, batch: &BatchMessage) -> Result<Option<Counts>, WorkerError> {
    let row: Option<(i32, i32, i32)> = sqlx::query_as(
        "SELECT reported, skipped, failed FROM dry_run_batches WHERE dry_run_id = $1 AND seq = $2",
    )
    .bind(batch.run_id.0)
    .bind(batch.seq as i32)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(reported, skipped, failed)| Counts {
        synced: (reported - failed).max(0) as u64,
        skipped: skipped.max(0) as u64,
        failed: failed.max(0) as u64,
    }))
}

/// Whether the dry run is still there (a deleted instance takes its dry runs along).
pub async fn exists(pool: &PgPool, batch: &BatchMessage) -> Result<bool, WorkerError> {
    Ok(
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM dry_runs WHERE id = $1)")
            .bind(batch.run_id.0)
            .fetch_one(pool)
            .await?,
    )
}

/// Commits the batch's rows and its `dry_run_batches` row once; a second delivery keeps
/// the first one's.
#[tracing::instrument(
    name = "record",
    skip_all,
    fields(tenant_id = %batch.tenant_id, run_id = %batch.run_id, seq = batch.seq, rows = report.rows.len(), newly_recorded)
)]
pub async fn record(
    pool: &PgPool,
    batch: &BatchMessage,
    report: &BatchReport,
) -> Result<Counts, WorkerError> {
    let failed = report.rows.iter().filter(|r| r.fails).count() as u64;
    let counts = Counts {
        synced: report.rows.len() as u64 - failed,
        skipped: report.skipped,
        failed,
    };
    let mut rows: Vec<_> = report.rows.iter().collect();
    rows.sort_by(|a, b| a.entra_id.cmp(&b.entra_id));
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO dry_run_batches (dry_run_id, seq, reported, skipped, failed) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(batch.run_id.0)
    .bind(batch.seq as i32)
    .bind(report.rows.len() as i32)
    .bind(report.skipped as i32)
    .bind(failed as i32)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tracing::Span::current().record("newly_recorded", inserted != 0);
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(stored(pool, batch).await?.unwrap_or(counts));
    }
    // A walk that meets a user twice (Graph may replay) keeps the later row.
    sqlx::query(
        "INSERT INTO dry_run_rows \
           (dry_run_id, object_type, entra_id, action, azure_name, webex_name, reason, fails) \
         SELECT $1, 'user', * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], \
                                          $6::text[], $7::bool[]) \
         ON CONFLICT (dry_run_id, object_type, entra_id) DO UPDATE SET \
           action = EXCLUDED.action, azure_name = EXCLUDED.azure_name, \
           webex_name = EXCLUDED.webex_name, reason = EXCLUDED.reason, fails = EXCLUDED.fails",
    )
    .bind(batch.run_id.0)
    .bind(rows.iter().map(|r| r.entra_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.azure_name.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.webex_name.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.fails).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(counts)
}
