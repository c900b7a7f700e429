//! `/api/v1/tenants/{id}/sso`: the wizard's "Activate single sign-on" (Entra ID as the
//! org's OIDC identity provider). Turning it on is refused (409) while the Webex org has
//! SAML SSO enabled: the admin turns SAML off in Control Hub first. The setting lives in the
//! org (`webex_sso.rs`); dirsync records nothing of it and shows what the org says.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use dirsync_proto::TenantId;

use super::ApiState;
use super::error::{ApiJson, ApiResult, ErrorBody};
use crate::Tenant;
use crate::webex_sso::{SsoState, WebexSso, check_change};

/// The org's single sign-on, as the org reports it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sso {
    /// Entra ID single sign-on is active for the org.
    pub active: bool,
    /// The org has SAML SSO enabled (set in Control Hub); Entra SSO cannot be activated then.
    pub saml_sso_enabled: bool,
}

impl From<SsoState> for Sso {
    fn from(s: SsoState) -> Self {
        Self {
            active: s.entra_sso_active,
            saml_sso_enabled: s.saml_sso_enabled,
        }
    }
}

/// Body of `PUT /tenants/{id}/sso`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct SsoChange {
    /// Activate (`true`) or deactivate Entra ID single sign-on.
    pub active: bool,
}

/// The org's SSO client of the instance.
async fn org_sso(s: &ApiState, id: uuid::Uuid) -> ApiResult<WebexSso> {
    let id = TenantId(id);
    let tenant: Tenant = s.tenants.get(id).await?;
    let token = s.tenants.scim_token(id).await?;
    Ok(WebexSso::new(s.http.clone(), &tenant.scim_base_url, token)?)
}

/// Whether Entra ID single sign-on is active for the Webex org, and whether the org has SAML
/// SSO enabled.
#[utoipa::path(get, path = "/tenants/{id}/sso", tag = "configuration",
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Sso), (status = 404, body = ErrorBody),
              (status = 502, body = ErrorBody)))]
pub async fn get(State(s): State<ApiState>, Path(id): Path<uuid::Uuid>) -> ApiResult<Json<Sso>> {
    let sso = org_sso(&s, id).await?;
    Ok(Json(sso.get().await?.into()))
}

/// Activates or deactivates Entra ID single sign-on for the Webex org. Activating is
/// refused (409) while the org has SAML SSO enabled: turn it off in Control Hub first.
#[utoipa::path(put, path = "/tenants/{id}/sso", tag = "configuration", request_body = SsoChange,
    params(("id" = uuid::Uuid, Path, description = "instance id")),
    responses((status = 200, body = Sso), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 502, body = ErrorBody)))]
pub async fn set(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    ApiJson(change): ApiJson<SsoChange>,
) -> ApiResult<Json<Sso>> {
    let sso = org_sso(&s, id).await?;
    // Checked first so the refusal says why whatever the org's API would answer; the org
    // refuses it too should SAML be enabled between the two requests.
    check_change(sso.get().await?, change.active)?;
    let now = sso.set_entra(change.active).await?;
    tracing::info!(tenant = %id, active = now.entra_sso_active, "entra sso changed");
    Ok(Json(now.into()))
}
