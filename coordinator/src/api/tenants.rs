//! `/api/v1/tenants`: set up, edit, schedule and remove instances (an Entra tenant paired
//! with a Webex org), and read their job status and summary.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use dirsync_proto::TenantId;
use dirsync_proto::mapping::MappingRule;

use super::ApiState;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::views::{self, Instance, Status};
use crate::guard::Thresholds;
use crate::quarantine;
use crate::scope::Scope;

/// Body of `PATCH /tenants/{id}`: the settings to change; absent ones stay.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct InstanceChange {
    /// "Edit instance name".
    pub name: Option<String>,
    /// Scheduled syncs on or off.
    pub auto_sync: Option<bool>,
    /// "Clear attributes": a value removed in Entra is removed in Webex too.
    pub clear_attributes: Option<bool>,
}

/// Body of `PUT /tenants/{id}/guard`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Guard {
    /// At most this many deactivations per run without approval (default 500).
    pub max_count: u32,
    /// At most this percentage of the active users per run (default 10).
    pub max_percent: u32,
}

/// Body of `PUT /tenants/{id}/quarantine-thresholds`; `null` values go back to the
/// deployment's.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct QuarantineChange {
    pub min_failures: Option<u64>,
    pub max_percent: Option<u64>,
    pub max_failures: Option<u64>,
}

/// A tenant's quarantine thresholds: its own values and the effective ones.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct QuarantineThresholds {
    pub own: QuarantineChange,
    pub min_failures: u64,
    pub max_percent: u64,
    pub max_failures: u64,
}

/// A tenant's attribute mapping: its rules, or `null` for the default (the seed's table).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct MappingBody {
    #[schema(value_type = Option<Vec<Object>>)]
    pub rules: Option<Vec<MappingRule>>,
}

/// Query of `GET /tenants/{id}/status`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatusQuery {
    /// Most failed objects listed (default 100, at most 10,000).
    pub limit: Option<i64>,
}

fn tenant(id: uuid::Uuid) -> TenantId {
    TenantId(id)
}

/// Lists the instances.
#[utoipa::path(get, path = "/tenants", tag = "instances",
    responses((status = 200, body = Vec<Instance>), (status = 401, body = ErrorBody)))]
pub async fn list(State(s): State<ApiState>) -> ApiResult<Json<Vec<Instance>>> {
    Ok(Json(views::instances(&s.pool).await?))
}

/// One instance's settings (never its secrets).
#[utoipa::path(get, path = "/tenants/{id}", tag = "instances",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<Instance>> {
    Ok(Json(views::instance_of(&s.pool, tenant(id)).await?))
}

/// Renames the instance, turns auto-sync or "clear attributes" on or off.
#[utoipa::path(patch, path = "/tenants/{id}", tag = "instances", request_body = InstanceChange,
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Instance), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn update(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(change): ApiJson<InstanceChange>,
) -> ApiResult<Json<Instance>> {
    let id = tenant(id);
    // Not found before anything changes.
    views::instance_of(&s.pool, id).await?;
    if let Some(name) = &change.name {
        s.tenants.rename(id, name).await?;
    }
    if let Some(on) = change.auto_sync {
        s.tenants.set_auto_sync(id, on).await?;
    }
    if let Some(on) = change.clear_attributes {
        s.tenants.set_clear_attributes(id, on).await?;
    }
    Ok(Json(views::instance_of(&s.pool, id).await?))
}

/// Query of `DELETE /tenants/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// Also revoke the admin consent of dirsync's app in the Entra tenant (its service
    /// principal is deleted), before the instance is; default `false`.
    #[serde(default)]
    pub revoke_consent: bool,
}

/// Deletes the instance from dirsync (its configuration and state); Webex users stay as
/// they are. Refused while a coordinator is syncing it. With `revoke_consent=true` the app's
/// consent in the Entra tenant is revoked first; if that fails (502), nothing is deleted.
/// A consent revoked already counts as revoked, so the request can be repeated.
#[utoipa::path(delete, path = "/tenants/{id}", tag = "instances",
    params(("id" = uuid::Uuid, Path, description = "instance id"), DeleteQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 502, body = ErrorBody)))]
pub async fn delete(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    if q.revoke_consent {
        let unrevoked = |e: crate::CoordinatorError| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                format!("consent not revoked, nothing deleted: {e}"),
            )
        };
        let instance = s.tenants.get(tenant(id)).await?;
        // Refused now rather than after the consent is gone.
        s.tenants.ensure_not_syncing(tenant(id)).await?;
        let graph = s.graph(&instance);
        let revoked = graph.revoke_consent().await.map_err(unrevoked)?;
        tracing::info!(tenant = %id, ?revoked, "entra consent revoked");
    }
    s.tenants.delete(tenant(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Sync now": the coordinators sync the instance at once, even with auto-sync off.
#[utoipa::path(post, path = "/tenants/{id}/sync-now", tag = "instances",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn sync_now(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    s.tenants.request_sync(tenant(id)).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Who is synced, and the More options (group objects, rooms, avatars).
#[utoipa::path(get, path = "/tenants/{id}/scope", tag = "configuration",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn scope(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<Scope>> {
    Ok(Json(views::instance_of(&s.pool, tenant(id)).await?.scope))
}

/// Replaces the scope; it applies from the next sync. Users who leave it are deactivated.
#[utoipa::path(put, path = "/tenants/{id}/scope", tag = "configuration", request_body = Object,
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn set_scope(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(scope): ApiJson<Scope>,
) -> ApiResult<Json<Scope>> {
    Ok(Json(s.tenants.set_scope(tenant(id), scope).await?))
}

/// The attribute mapping (`rules: null`: the default mapping).
#[utoipa::path(get, path = "/tenants/{id}/mapping", tag = "configuration",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = MappingBody), (status = 404, body = ErrorBody)))]
pub async fn mapping(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<MappingBody>> {
    let rules = s.tenants.mapping(tenant(id)).await?;
    Ok(Json(MappingBody { rules }))
}

/// Replaces the attribute mapping after checking it (an expression error says which rule
/// and at which position); `rules: null` goes back to the default.
#[utoipa::path(put, path = "/tenants/{id}/mapping", tag = "configuration", request_body = MappingBody,
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = MappingBody), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn set_mapping(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(body): ApiJson<MappingBody>,
) -> ApiResult<Json<MappingBody>> {
    s.tenants.set_mapping(tenant(id), body.rules).await?;
    mapping(State(s), Path(id)).await
}

/// Sets the accidental-deletion guard.
#[utoipa::path(put, path = "/tenants/{id}/guard", tag = "configuration", request_body = Guard,
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Guard), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn set_guard(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(guard): ApiJson<Guard>,
) -> ApiResult<Json<Guard>> {
    if guard.max_percent > 100 {
        return Err(ApiError::invalid("max_percent must be between 0 and 100"));
    }
    s.tenants
        .set_guard(
            tenant(id),
            Thresholds {
                max_count: guard.max_count,
                max_percent: guard.max_percent,
            },
        )
        .await?;
    Ok(Json(guard))
}

fn thresholds_view(
    own: quarantine::Overrides,
    defaults: quarantine::Thresholds,
) -> QuarantineThresholds {
    let effective = own.over(defaults);
    QuarantineThresholds {
        own: QuarantineChange {
            min_failures: own.min_failures,
            max_percent: own.max_percent,
            max_failures: own.max_failures,
        },
        min_failures: effective.min_failures,
        max_percent: effective.max_percent,
        max_failures: effective.max_failures,
    }
}

/// The quarantine thresholds the instance's syncs are judged by.
#[utoipa::path(get, path = "/tenants/{id}/quarantine-thresholds", tag = "configuration",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = QuarantineThresholds), (status = 404, body = ErrorBody)))]
pub async fn quarantine_thresholds(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<QuarantineThresholds>> {
    let own = quarantine::overrides(&s.pool, tenant(id)).await?;
    Ok(Json(thresholds_view(own, s.quarantine)))
}

/// Replaces the instance's own quarantine thresholds (`null`: the deployment's).
#[utoipa::path(put, path = "/tenants/{id}/quarantine-thresholds", tag = "configuration",
    request_body = QuarantineChange,
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = QuarantineThresholds), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn set_quarantine_thresholds(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(change): ApiJson<QuarantineChange>,
) -> ApiResult<Json<QuarantineThresholds>> {
    let wanted = quarantine::Overrides {
        min_failures: change.min_failures,
        max_percent: change.max_percent,
        max_failures: change.max_failures,
    };
    // A full replacement: values not given go back to the deployment's. Checked before
    // anything is reset, so a refused change leaves the thresholds as they were.
    wanted.over(s.quarantine).validated()?;
    quarantine::set_thresholds(&s.pool, tenant(id), None, s.quarantine).await?;
    let own = quarantine::set_thresholds(&s.pool, tenant(id), Some(wanted), s.quarantine).await?;
    Ok(Json(thresholds_view(own, s.quarantine)))
}

/// Users in escrow (failed for a reason of their own) and when they are retried.
#[utoipa::path(get, path = "/tenants/{id}/escrow", tag = "status",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ErrorBody)))]
pub async fn escrow(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<Json<Vec<crate::escrow::EscrowEntry>>> {
    views::instance_of(&s.pool, tenant(id)).await?;
    Ok(Json(
        crate::escrow::list(&s.pool, tenant(id), &s.escrow_retry).await?,
    ))
}

/// Job status and the summary of the last sync: users synced, skipped and failed, groups
/// synced, to be synced and failed, the failed objects with their reasons; and the sync in
/// progress with its counts so far.
#[utoipa::path(get, path = "/tenants/{id}/status", tag = "status",
    params(("id" = uuid::Uuid, Path, description = "instance id"), StatusQuery),
    responses((status = 200, body = Status), (status = 404, body = ErrorBody)))]
pub async fn status(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<StatusQuery>,
) -> ApiResult<Json<Status>> {
    let limit = q.limit.unwrap_or(100).clamp(0, 10_000);
    Ok(Json(views::status(&s.pool, tenant(id), limit).await?))
}
