//! `/api/v1/dead-letters`: poison batches the queues dead-lettered (see
//! [`crate::dead_letters`]): list them, show one with its headers and body, re-drive one.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::dead_letters::{self, DeadLetterDetail, DeadLetterView, Filter, Redriven};

fn not_found(id: uuid::Uuid) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no dead letter {id}; `dirsync dead-letter list --all` lists them"),
    )
}

/// Dead letters, newest first: the held ones, or with `all` also the re-driven ones.
#[utoipa::path(get, path = "/dead-letters", tag = "dead-letters",
    params(Filter),
    responses((status = 200, body = [DeadLetterView])))]
pub async fn list(
    State(s): State<ApiState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Json<Vec<DeadLetterView>>> {
    Ok(Json(dead_letters::store::list(&s.pool, &filter).await?))
}

/// One dead letter with its headers (`x-death` says where and why it died) and its body.
#[utoipa::path(get, path = "/dead-letters/{id}", tag = "dead-letters",
    params(("id" = uuid::Uuid, Path, description = "dead letter id")),
    responses((status = 200, body = DeadLetterDetail), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<DeadLetterDetail>> {
    match dead_letters::store::get(&s.pool, id).await? {
        Some(letter) => Ok(Json(letter)),
        None => Err(not_found(id)),
    }
}

/// Republishes a dead letter's batch to the batch queue (with the broker's confirm) after
/// removing the failed result recorded for it, so a worker records the batch again and the
/// run's counts stay exact. 409 when it cannot be re-driven (an undecodable body, a dry
/// run's batch, a run that is gone or that a later sync followed, re-driven already).
#[utoipa::path(post, path = "/dead-letters/{id}/redrive", tag = "dead-letters",
    params(("id" = uuid::Uuid, Path, description = "dead letter id")),
    responses((status = 200, body = Redriven), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn redrive(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<Redriven>> {
    let Some(redriver) = &s.redriver else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this coordinator has no broker connection for re-drives",
        ));
    };
    match redriver.redrive(id, &caller.0).await? {
        Some(done) => Ok(Json(done)),
        None => Err(not_found(id)),
    }
}
