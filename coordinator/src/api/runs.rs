//! `/api/v1/runs`: a sync held by the accidental-deletion guard, and the operator's decision.

use axum::Json;
use axum::extract::{Extension, Path, State};

use dirsync_proto::RunId;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiResult, ErrorBody};
use crate::reconcile::{Deactivations, Decision, HeldRun};

/// A run's guard state and the users its deactivations concern.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs",
    params(("id" = uuid::Uuid, Path, description = "run id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<HeldRun>> {
    Ok(Json(
        Deactivations::new(s.pool.clone()).show(RunId(id)).await?,
    ))
}

async fn decide(
    s: &ApiState,
    id: uuid::Uuid,
    decision: Decision,
    caller: &Caller,
) -> ApiResult<Json<HeldRun>> {
    let deactivations = Deactivations::new(s.pool.clone());
    deactivations.decide(RunId(id), decision, &caller.0).await?;
    Ok(Json(deactivations.show(RunId(id)).await?))
}

/// Approves a held run's deactivations; the next sync of its instance pushes them. The
/// decision is recorded with the name of the caller's token.
#[utoipa::path(post, path = "/runs/{id}/approve", tag = "runs",
    params(("id" = uuid::Uuid, Path, description = "run id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<HeldRun>> {
    decide(&s, id, Decision::Approved, &caller).await
}

/// Rejects a held run's deactivations; the next sync completes the run without them.
#[utoipa::path(post, path = "/runs/{id}/reject", tag = "runs",
    params(("id" = uuid::Uuid, Path, description = "run id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn reject(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<HeldRun>> {
    decide(&s, id, Decision::Rejected, &caller).await
}
