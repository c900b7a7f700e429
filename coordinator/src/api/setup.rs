//! Setting an instance up, as the seed's wizard does: "sync default settings" (all users,
//! the default mapping, avatars on, auto-sync on) or a custom setup; "authorize now" or
//! "save and authorize later"; and, before an instance is authorized, the Directory
//! Connector check: an org whose users Directory Connector syncs must have it blocked first.
//!
//! Mappings are not part of the setup: they can be edited once the instance exists
//! (`PUT /tenants/{id}/mapping`), as the seed says. Users that Directory Connector synced
//! and that are outside the instance's scope are never touched: dirsync only changes users
//! it created, or adopted because they are in scope.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use dirsync_proto::TenantId;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::views::{self, Instance};
use crate::NewTenant;
use crate::cloud::{Cloud, resolve_endpoints};
use crate::scope::Scope;
use crate::webex_org::WebexOrg;

/// "Sync default settings" or a custom setup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SetupMode {
    /// All users, the default mapping, avatars on, auto-sync on.
    #[default]
    Default,
    /// The scope and options given (default: all users, nothing else).
    Custom,
}

impl SetupMode {
    fn as_str(self) -> &'static str {
        match self {
            SetupMode::Default => "default",
            SetupMode::Custom => "custom",
        }
    }
}

/// Body of `POST /tenants`. Unknown fields are refused: a mapping, for one, is not part of
/// the set-up (it can be edited once the instance exists).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstance {
    pub name: String,
    /// Entra tenant id (GUID or domain).
    pub entra_tenant_id: String,
    /// Microsoft cloud; picks the login and Graph roots. Default `global`.
    #[serde(default)]
    pub cloud: Cloud,
    /// Custom login root (with `graph_base_url`, replaces the cloud's).
    pub graph_login_url: Option<String>,
    pub graph_base_url: Option<String>,
    pub client_id: String,
    /// Stored encrypted, never shown again.
    #[schema(value_type = String)]
    pub client_secret: SecretString,
    /// SCIM root up to and including `/v2`.
    pub scim_base_url: String,
    /// Stored encrypted, never shown again.
    #[schema(value_type = String)]
    pub scim_token: SecretString,
    /// `default` ("sync default settings", the default) or `custom`.
    #[serde(default)]
    pub setup: SetupMode,
    /// With `custom`: who is synced and the More options (default: all users).
    #[schema(value_type = Option<Object>)]
    pub scope: Option<Scope>,
    /// With `custom`: scheduled syncs on (the default) or off.
    pub auto_sync: Option<bool>,
    /// "Authorize now" (default) or, with `false`, "save and authorize later".
    #[serde(default = "yes")]
    pub authorize: bool,
    /// Block the org's Directory Connector if it uses one (asked for with a 409
    /// `directory_connector` otherwise).
    #[serde(default)]
    pub block_directory_connector: bool,
    /// Whether a hard delete in Entra deletes the Webex user (default: deactivates).
    #[serde(default)]
    pub allow_hard_delete: bool,
}

fn yes() -> bool {
    true
}

/// Query of `POST /tenants/{id}/authorize`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct AuthorizeQuery {
    /// Block the org's Directory Connector if it uses one.
    #[serde(default)]
    pub block_directory_connector: bool,
}

/// The Directory Connector check before an instance is authorized: fine when the org does
/// not use it (or it is blocked already); blocked when the operator said so; otherwise a
/// 409 asking to. Returns whether it blocked it now.
async fn directory_connector(
    http: reqwest::Client,
    scim_base_url: &str,
    token: SecretString,
    block: bool,
) -> ApiResult<bool> {
    let org = WebexOrg::new(http, scim_base_url, token)?;
    let state = org.directory_connector().await?;
    if !state.in_use() {
        return Ok(false);
    }
    if !block {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "directory_connector",
            "the webex org syncs its users with directory connector: block it to continue \
             (\"block_directory_connector\": true, or --block-directory-connector); users it \
             synced that are outside this instance's scope are left alone",
        ));
    }
    org.block_directory_connector().await?;
    Ok(true)
}

/// Sets up an instance: checks the settings (and, to authorize now, the org's Directory
/// Connector), stores the credentials encrypted, applies the default or custom settings.
#[utoipa::path(post, path = "/tenants", tag = "instances", request_body = NewInstance,
    responses((status = 201, body = Instance), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the org uses directory connector"),
              (status = 502, body = ErrorBody)))]
pub async fn create(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewInstance>,
) -> ApiResult<(StatusCode, Json<Instance>)> {
    let id = set_up(&s, &caller, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(views::instance_of(&s.pool, id).await?),
    ))
}

/// What `POST /tenants` does, for other ways of creating an instance (e.g. migrating an
/// enterprise app's provisioning): checks, stores and applies the settings; the new id.
pub(super) async fn set_up(
    s: &ApiState,
    caller: &Caller,
    body: NewInstance,
) -> ApiResult<TenantId> {
    let endpoints = resolve_endpoints(
        body.cloud,
        body.graph_login_url.as_deref(),
        body.graph_base_url.as_deref(),
    )?;
    let new = NewTenant {
        name: body.name,
        graph_tenant_id: body.entra_tenant_id,
        graph_login_url: endpoints.login_url,
        graph_base_url: endpoints.graph_base_url,
        client_id: body.client_id,
        client_secret: body.client_secret,
        scim_base_url: body.scim_base_url,
        scim_token: body.scim_token,
        allow_hard_delete: body.allow_hard_delete,
    };
    new.validate()?;
    let (scope, auto_sync) = match body.setup {
        SetupMode::Default => {
            if body.scope.is_some() || body.auto_sync.is_some() {
                return Err(ApiError::invalid(
                    "\"sync default settings\" syncs all users with avatars and auto-sync on: \
                     use \"setup\": \"custom\" to choose the scope or auto-sync",
                ));
            }
            let scope = Scope {
                avatars: true,
                ..Scope::default()
            };
            (scope, true)
        }
        SetupMode::Custom => (
            body.scope.unwrap_or_default(),
            body.auto_sync.unwrap_or(true),
        ),
    };
    let scope = scope.validated()?;
    let blocked = if body.authorize {
        directory_connector(
            s.http.clone(),
            &new.scim_base_url,
            new.scim_token.clone(),
            body.block_directory_connector,
        )
        .await?
    } else {
        false
    };
    let id = s.tenants.create_with(&new, body.authorize).await?;
    s.tenants.set_scope(id, scope).await?;
    if !auto_sync {
        s.tenants.set_auto_sync(id, false).await?;
    }
    s.tenants
        .record_setup(
            id,
            Some(body.setup.as_str()),
            blocked.then_some(caller.0.as_str()),
        )
        .await?;
    Ok(id)
}

/// Authorizes an instance saved with "authorize later", after the Directory Connector
/// check: it starts syncing.
#[utoipa::path(post, path = "/tenants/{id}/authorize", tag = "instances",
    params(("id" = uuid::Uuid, Path, description = "instance id"), AuthorizeQuery),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the org uses directory connector")))]
pub async fn authorize(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<uuid::Uuid>,
    Query(q): Query<AuthorizeQuery>,
) -> ApiResult<Json<Instance>> {
    let id = TenantId(id);
    let tenant = s.tenants.get(id).await?;
    let token = s.tenants.scim_token(id).await?;
    let blocked = directory_connector(
        s.http.clone(),
        &tenant.scim_base_url,
        token,
        q.block_directory_connector,
    )
    .await?;
    if blocked {
        s.tenants
            .record_setup(id, None, Some(caller.0.as_str()))
            .await?;
    }
    s.tenants.set_authorized(id, true).await?;
    Ok(Json(views::instance_of(&s.pool, id).await?))
}
