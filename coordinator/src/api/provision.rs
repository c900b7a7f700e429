//! `POST /api/v1/tenants/{id}/provision`: provision one user on demand, outside the cycle,
//! and answer with the result (see [`crate::provision`]): `success` (created or changed,
//! with the Webex id), `skipped` (why: already up to date, disabled, out of scope) or
//! `failed` (the SCIM error). Trying again is calling again: each call is a run of its own.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use dirsync_proto::TenantId;

use super::ApiState;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::provision::ProvisionOutcome;

/// The user to provision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// Entra object id or user principal name (`tenant search-users` finds them).
    pub user: String,
}

/// Provisions one user to Webex now, through the workers' priority lane (it does not wait
/// behind a running sync), and says what happened.
#[utoipa::path(post, path = "/tenants/{id}/provision", tag = "syncs",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    request_body = ProvisionRequest,
    responses((status = 200, body = ProvisionOutcome, description = "success, skipped (with why) or failed (with the SCIM error)"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such instance or user"),
              (status = 502, body = ErrorBody), (status = 503, body = ErrorBody),
              (status = 504, body = ErrorBody, description = "the workers did not answer in time")))]
pub async fn provision(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(request): ApiJson<ProvisionRequest>,
) -> ApiResult<Json<ProvisionOutcome>> {
    let tenant = s.tenants.get(TenantId(id)).await?;
    let Some(provisioner) = &s.provisioner else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this coordinator has no broker connection to provision on demand",
        ));
    };
    if request.user.trim().is_empty() {
        return Err(ApiError::invalid(
            "user must be an entra object id or a user principal name",
        ));
    }
    let graph = s.graph(&tenant);
    let outcome = provisioner
        .provision(&tenant, &graph, &request.user)
        .await?;
    tracing::info!(
        tenant_id = %id,
        entra_id = %outcome.entra_id,
        result = ?outcome.result,
        elapsed_ms = outcome.elapsed_ms,
        "provisioned on demand"
    );
    Ok(Json(outcome))
}
