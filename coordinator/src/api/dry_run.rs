//! `/api/v1/tenants/{id}/dry-runs`: ask for a dry run, follow it, download its report.
//!
//! The report is the seed's CSV, streamed from PostgreSQL row by row through a bounded
//! channel: a 300,000-user report costs the coordinator one chunk of rows, not the report.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use dirsync_proto::{RunId, TenantId};

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::dry_runs::{CSV_HEADER, DryRunStore, DryRunView};

/// Rows of the report per chunk sent to the client.
const ROWS_PER_CHUNK: usize = 500;

fn store(s: &ApiState) -> DryRunStore {
    DryRunStore::new(s.pool.clone())
}

async fn view(s: &ApiState, tenant: TenantId, id: uuid::Uuid) -> ApiResult<DryRunView> {
    store(s).get(tenant, RunId(id)).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dry run {id} of instance {tenant} (the last 5 are kept)"),
        )
    })
}

/// "Dry run": a coordinator computes what a sync would do, without writing to Webex. It
/// starts within a second; follow it with `GET …/dry-runs/{dry_run_id}`.
#[utoipa::path(post, path = "/tenants/{id}/dry-runs", tag = "dry runs",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 202, body = DryRunView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn start(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<(StatusCode, Json<DryRunView>)> {
    let tenant = TenantId(id);
    let dry_run = store(&s).request(tenant, &caller.0).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(view(&s, tenant, dry_run.0).await?),
    ))
}

/// The instance's dry runs kept (the last 5), newest first.
#[utoipa::path(get, path = "/tenants/{id}/dry-runs", tag = "dry runs",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = [DryRunView]), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<Vec<DryRunView>>> {
    let tenant = TenantId(id);
    // An unknown instance is a 404, not an empty list.
    super::views::instance_of(&s.pool, tenant).await?;
    Ok(Json(store(&s).list(tenant).await?))
}

/// One dry run: status, progress, and once completed the report's counts by action.
#[utoipa::path(get, path = "/tenants/{id}/dry-runs/{dry_run_id}", tag = "dry runs",
    params(("id" = uuid::Uuid, Path, description = "instance id"),
           ("dry_run_id" = uuid::Uuid, Path, description = "dry run id")),
    responses((status = 200, body = DryRunView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<ApiState>,
    Path((id, dry_run)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<DryRunView>> {
    Ok(Json(view(&s, TenantId(id), dry_run).await?))
}

/// "Download summary": the report as CSV with the seed's columns (Object Type, Action Type,
/// Azure ID, Azure Name, Webex Name, Reason), groups first, then users by Azure ID.
#[utoipa::path(get, path = "/tenants/{id}/dry-runs/{dry_run_id}/report", tag = "dry runs",
    params(("id" = uuid::Uuid, Path, description = "instance id"),
           ("dry_run_id" = uuid::Uuid, Path, description = "dry run id")),
    responses((status = 200, content_type = "text/csv", body = String),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn report(
    State(s): State<ApiState>,
    Path((id, dry_run)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Response> {
    let v = view(&s, TenantId(id), dry_run).await?;
    if v.status != "completed" {
        let why = match &v.error {
            Some(e) => format!("dry run {dry_run} failed: {e}"),
            None => format!(
                "dry run {dry_run} is {}: its report is not ready yet",
                v.status
            ),
        };
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", why));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let pool = s.pool.clone();
    tokio::spawn(async move {
        if let Err(e) = stream_rows(&pool, RunId(dry_run), &tx).await {
            // The client sees the body end early, not a report that looks complete.
            tracing::warn!(dry_run_id = %dry_run, error = %e, "the report stream broke");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let filename = format!("dry-run-{dry_run}.csv");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}

type ReportLine = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// Sends the report in chunks of CSV until the rows end or the client goes away.
async fn stream_rows(
    pool: &sqlx::PgPool,
    id: RunId,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(CSV_HEADER)?;
    let mut rows = sqlx::query_as::<_, ReportLine>(
        "SELECT object_type, action, entra_id, azure_name, webex_name, reason FROM dry_run_rows \
         WHERE dry_run_id = $1 ORDER BY object_type, entra_id",
    )
    .bind(id.0)
    .fetch(pool);
    let mut in_chunk = 0;
    while let Some((object, action, entra_id, azure, webex, reason)) = rows.try_next().await? {
        csv.write_record([
            object.as_str(),
            action.as_str(),
            entra_id.as_str(),
            azure.as_deref().unwrap_or(""),
            webex.as_deref().unwrap_or(""),
            reason.as_str(),
        ])?;
        in_chunk += 1;
        if in_chunk == ROWS_PER_CHUNK {
            in_chunk = 0;
            let full = std::mem::replace(&mut csv, csv::Writer::from_writer(Vec::new()));
            let chunk = full.into_inner().map_err(|e| e.to_string())?;
            if tx.send(Ok(chunk)).await.is_err() {
                return Ok(());
            }
        }
    }
    let chunk = csv.into_inner().map_err(|e| e.to_string())?;
    let _ = tx.send(Ok(chunk)).await;
    Ok(())
}
