//! `POST /api/v1/tenants/migrate`: creates an instance from an existing enterprise app's
//! provisioning configuration (Entra's own SCIM provisioning to Webex): its scope (all users,
//! or the users and groups assigned to the app) and its attribute mappings, read from Graph's
//! synchronization API ([`crate::graph::synchronization`]).
//!
//! The app must provision the same Webex org as the instance (a 409 `other_org` otherwise:
//! migrating another org's configuration would sync the wrong people). Mappings dirsync
//! cannot do are refused, listed, unless the operator accepts leaving them out
//! (`skip_unsupported`); nothing is dropped silently.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use dirsync_proto::TenantId;
use dirsync_proto::mapping::{Mapping, MappingRule};

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use super::setup::{NewInstance, SetupMode, set_up};
use super::views::{self, Instance};
use crate::cloud::{Cloud, resolve_endpoints};
use crate::graph::synchronization::{self, NotMigrated};
use crate::scope::Scope;
use crate::webex_api::org_api_url;
use crate::{CoordinatorError, Tenant};

/// Body of `POST /tenants/migrate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    pub name: String,
    /// Entra tenant id (GUID or domain).
    pub entra_tenant_id: String,
    #[serde(default)]
    pub cloud: Cloud,
    pub graph_login_url: Option<String>,
    pub graph_base_url: Option<String>,
    pub client_id: String,
    #[schema(value_type = String)]
    pub client_secret: SecretString,
    /// The enterprise app whose provisioning is migrated (its service principal's id).
    pub service_principal_id: String,
    /// SCIM root up to and including `/v2`: must be the org the app provisions.
    pub scim_base_url: String,
    #[schema(value_type = String)]
    pub scim_token: SecretString,
    #[serde(default = "yes")]
    pub authorize: bool,
    #[serde(default)]
    pub block_directory_connector: bool,
    /// Create the instance without the mappings dirsync cannot do (listed in the report).
    #[serde(default)]
    pub skip_unsupported: bool,
}

fn yes() -> bool {
    true
}

/// What was migrated and what was not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MigrationReport {
    /// The app's provisioning job.
    pub job_id: String,
    /// All users (the app synced all), or not (its assigned users and groups).
    pub all_users: bool,
    pub users: usize,
    pub groups: usize,
    /// Mappings migrated as dirsync rules.
    pub mappings: usize,
    /// Targets the app mapped that dirsync sets itself (e.g. `externalId`, `active`).
    pub handled_by_dirsync: Vec<String>,
    /// Mappings left out (with `skip_unsupported`), each with why.
    pub not_migrated: Vec<NotMigrated>,
}

/// The answer: the instance and the report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Migrated {
    pub instance: Instance,
    pub report: MigrationReport,
}

/// The org id of a SCIM base URL `{root}/identity/scim/{orgId}/v2` (pure).
pub fn org_of(scim_base_url: &str) -> Result<String, CoordinatorError> {
    // The one parser of the form: it refuses anything that names no org.
    let org_url = org_api_url(scim_base_url, "x")?;
    let org = org_url
        .split("/identity/organizations/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    Ok(org.to_string())
}

/// Graph failures are the service's (502), except what says the app is not there (404).
fn upstream(e: CoordinatorError) -> ApiError {
    match e {
        CoordinatorError::GraphStatus { status: 404, .. } => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such service principal or provisioning job in entra: {e}"),
        ),
        e => e.into(),
    }
}

/// Reads the app's provisioning configuration and creates the instance from it: same org
/// checked first, unsupported mappings refused (or, asked to, left out and listed), the
/// instance set up as a custom setup with the app's scope, then its mapping saved.
#[utoipa::path(post, path = "/tenants/migrate", tag = "instances", request_body = MigrateRequest,
    responses((status = 201, body = Migrated), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody,
               description = "the app provisions another org (`other_org`), or the org uses directory connector"),
              (status = 502, body = ErrorBody)))]
pub async fn migrate(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<MigrateRequest>,
) -> ApiResult<(StatusCode, Json<Migrated>)> {
    let ours = org_of(&body.scim_base_url)?;
    let endpoints = resolve_endpoints(
        body.cloud,
        body.graph_login_url.as_deref(),
        body.graph_base_url.as_deref(),
    )?;
    // The client needs only the credentials; the instance does not exist yet.
    let credentials = Tenant {
        id: TenantId(uuid::Uuid::nil()),
        name: body.name.clone(),
        graph_tenant_id: body.entra_tenant_id.clone(),
        graph_login_url: endpoints.login_url.clone(),
        graph_base_url: endpoints.graph_base_url.clone(),
        client_id: body.client_id.clone(),
        client_secret: body.client_secret.clone(),
        scim_base_url: body.scim_base_url.clone(),
        status: String::new(),
        delta_link: None,
        authorized: false,
        scope: Scope::default(),
        groups_delta_link: None,
        full_walk_requested: false,
    };
    let graph = s.graph(&credentials);
    let config = graph
        .provisioning_config(body.service_principal_id.trim())
        .await
        .map_err(upstream)?;
    let Some(base_address) = config.base_address.as_deref() else {
        return Err(ApiError::invalid(
            "the app's provisioning has no tenant url (BaseAddress): nothing to migrate",
        ));
    };
    let theirs = org_of(base_address).map_err(|_| {
        ApiError::invalid(format!(
            "the app provisions {base_address:?}, which is not a webex scim url"
        ))
    })?;
    if !theirs.eq_ignore_ascii_case(&ours) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "other_org",
            format!(
                "the app provisions webex org {theirs}, not {ours}: migrate it into an \
                 instance of org {theirs}"
            ),
        ));
    }
    let converted = synchronization::convert(&config);
    if !converted.unsupported.is_empty() && !body.skip_unsupported {
        let list: Vec<String> = converted
            .unsupported
            .iter()
            .map(|n| format!("{} ← {}: {}", n.target, n.source, n.reason))
            .collect();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_mappings",
            format!(
                "dirsync cannot do these mappings: {}; fix them in entra, or migrate without \
                 them (\"skip_unsupported\": true) and edit the mapping afterwards",
                list.join("; ")
            ),
        ));
    }
    // Checked before anything is created: a mapping Webex would refuse saves nothing.
    let rules: Vec<MappingRule> = Mapping::compile(converted.rules.clone())
        .map_err(|e| ApiError::invalid(format!("the app's mapping cannot be used: {e}")))?
        .rules()
        .cloned()
        .collect();
    let report = MigrationReport {
        job_id: config.job_id.clone(),
        all_users: converted.scope.all,
        users: converted.scope.users.len(),
        groups: converted.scope.groups.len(),
        mappings: rules.len(),
        handled_by_dirsync: converted.handled_by_dirsync,
        not_migrated: converted.unsupported,
    };
    let instance = NewInstance {
        name: body.name,
        entra_tenant_id: body.entra_tenant_id,
        cloud: body.cloud,
        graph_login_url: body.graph_login_url,
        graph_base_url: body.graph_base_url,
        client_id: body.client_id,
        client_secret: body.client_secret,
        scim_base_url: body.scim_base_url,
        scim_token: body.scim_token,
        setup: SetupMode::Custom,
        scope: Some(converted.scope),
        auto_sync: None,
        authorize: body.authorize,
        block_directory_connector: body.block_directory_connector,
        allow_hard_delete: false,
    };
    let id = set_up(&s, &caller, instance).await?;
    s.tenants.set_mapping(id, Some(rules)).await?;
    Ok((
        StatusCode::CREATED,
        Json(Migrated {
            instance: views::instance_of(&s.pool, id).await?,
            report,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_org_of_a_scim_url() {
        let cases = [
            (
                "https://webexapis.com/identity/scim/org-1/v2",
                Some("org-1"),
            ),
            ("http://127.0.0.1:9/identity/scim/abc_2/v2/", Some("abc_2")),
            ("http://h/prefix/identity/scim/o/v2", Some("o")),
            ("https://webexapis.com/identity/scim/v2", None),
            ("https://webexapis.com/scim/org-1/v2", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            assert_eq!(org_of(url).ok().as_deref(), want, "{url}");
        }
    }
}
