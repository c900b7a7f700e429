//! The `tenants` table: registration of an instance and its connection settings.
//!
//! Secrets (the Graph client secret and the SCIM bearer token) are held as
//! [`SecretString`] in memory so they never reach logs or debug output, and are stored
//! sealed under the deployment's [`SecretsKey`] (`dirsync_proto::sealed`). A legacy
//! plain-text value (written before sealing existed) is still read, and sealed in place the
//! first time the tenant is read with a key, so an existing database needs no migration step.

use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Row};
use url::Url;
use uuid::Uuid;

use dirsync_proto::sealed::is_sealed;
use dirsync_proto::{SecretField, SecretsKey, TenantId};

use crate::CoordinatorError;
use crate::guard::Thresholds;
use crate::scope::Scope;
use dirsync_proto::mapping::{Mapping, MappingRule};

/// Settings given when registering a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    /// Entra tenant id (GUID or domain).
    pub graph_tenant_id: String,
    /// Login host root, e.g. `https://login.microsoftonline.com`.
    pub graph_login_url: String,
    /// Graph root, e.g. `https://graph.microsoft.com`.
    pub graph_base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// SCIM root up to and including `/v2`, e.g. `https://webexapis.com/identity/scim/{orgId}/v2`.
    pub scim_base_url: String,
    pub scim_token: SecretString,
    /// Whether a Graph hard delete deletes the Webex user (otherwise it is deactivated).
    pub allow_hard_delete: bool,
}

impl NewTenant {
    /// Checks what can be checked before anything is stored.
    pub fn validate(&self) -> Result<(), CoordinatorError> {
        let invalid = |m: String| Err(CoordinatorError::Invalid(m));
        if self.name.trim().is_empty() {
            return invalid("tenant name must not be empty".into());
        }
        if self.graph_tenant_id.trim().is_empty() || self.client_id.trim().is_empty() {
            return invalid("entra tenant id and client id must not be empty".into());
        }
        if self.client_secret.expose_secret().is_empty()
            || self.scim_token.expose_secret().is_empty()
        {
            return invalid("client secret and scim token must not be empty".into());
        }
        for (what, value) in [
            ("graph login url", &self.graph_login_url),
            ("graph base url", &self.graph_base_url),
            ("scim base url", &self.scim_base_url),
        ] {
            match Url::parse(value) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                Ok(u) => {
                    return invalid(format!(
                        "{what} must be http(s), got scheme {:?}",
                        u.scheme()
                    ));
                }
                Err(e) => return invalid(format!("{what} {value:?} is not a url: {e}")),
            }
        }
        if !self.scim_base_url.trim_end_matches('/').ends_with("/v2") {
            return invalid(format!(
                "scim base url must end with /v2 (the SCIM root), got {:?}",
                self.scim_base_url
            ));
        }
        Ok(())
    }
}

/// A registered tenant as the coordinator uses it.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub graph_tenant_id: String,
    pub graph_login_url: String,
    pub graph_base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scim_base_url: String,
    pub status: String,
    pub delta_link: Option<String>,
    /// False for a tenant saved with "authorize later": it is never synced.
    pub authorized: bool,
    pub scope: Scope,
    /// The `groups/delta` deltaLink of the last completed run that walked groups.
    pub groups_delta_link: Option<String>,
    /// The next run must walk all users from scratch (see `tenants.full_walk_requested`).
    pub full_walk_requested: bool,
}

/// Access to the `tenants` table.
#[derive(Debug, Clone)]
pub struct TenantStore {
    pool: PgPool,
    /// Seals and opens the secret columns; only creating and reading a whole tenant need it.
    key: Option<SecretsKey>,
}

impl TenantStore {
    /// A store that cannot read or write secrets (everything but [`Self::create`] and
    /// [`Self::get`]); see [`Self::with_key`].
    pub fn new(pool: PgPool) -> Self {
        Self { pool, key: None }
    }

    /// The deployment's secrets key, which [`Self::create`] and [`Self::get`] need.
    pub fn with_key(mut self, key: SecretsKey) -> Self {
        self.key = Some(key);
        self
    }

    fn key(&self) -> Result<&SecretsKey, CoordinatorError> {
        self.key.as_ref().ok_or_else(|| {
            CoordinatorError::Invalid(dirsync_proto::ProtoError::MissingSecretsKey.to_string())
        })
    }

    /// Validates and stores a new tenant, authorized to sync; returns its id.
    pub async fn create(&self, t: &NewTenant) -> Result<TenantId, CoordinatorError> {
        self.create_with(t, true).await
    }

    /// Like [`Self::create`]; with `authorized` false the tenant is saved but never synced
    /// until [`Self::set_authorized`] ("save and authorize later").
    pub async fn create_with(
        &self,
        t: &NewTenant,
        authorized: bool,
    ) -> Result<TenantId, CoordinatorError> {
        t.validate()?;
        let key = self.key()?;
        let id = TenantId::new();
        let client_secret = key
            .seal(
                id,
                SecretField::ClientSecret,
                t.client_secret.expose_secret(),
            )
            .map_err(secrets_error)?;
        let scim_token = key
            .seal(id, SecretField::ScimToken, t.scim_token.expose_secret())
            .map_err(secrets_error)?;
        sqlx::query(
            "INSERT INTO tenants (id, name, graph_tenant_id, graph_login_url, graph_base_url, client_id, \
             client_secret, scim_base_url, scim_token, allow_hard_delete, authorized) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id.0)
        .bind(t.name.trim())
        .bind(t.graph_tenant_id.trim())
        .bind(t.graph_login_url.trim_end_matches('/'))
        .bind(t.graph_base_url.trim_end_matches('/'))
        .bind(t.client_id.trim())
        .bind(client_secret)
        .bind(t.scim_base_url.trim_end_matches('/'))
        .bind(scim_token)
        .bind(t.allow_hard_delete)
        .bind(authorized)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The tenant with its client secret opened; seals a legacy plain-text secret in place.
    pub async fn get(&self, id: TenantId) -> Result<Tenant, CoordinatorError> {
        let key = self.key()?;
        let row = sqlx::query(
            "SELECT id, name, graph_tenant_id, graph_login_url, graph_base_url, client_id, client_secret, \
             scim_token, scim_base_url, status, delta_link, authorized, scope_all, scope_users, scope_groups, \
             scope_nested, sync_group_objects, sync_rooms, sync_avatars, groups_delta_link, \
             full_walk_requested FROM tenants WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CoordinatorError::TenantNotFound(id.to_string()))?;
        let stored_secret: String = row.try_get("client_secret")?;
        let (client_secret, _) = key
            .open_or_legacy(id, SecretField::ClientSecret, &stored_secret)
            .map_err(secrets_error)?;
        let stored_token: String = row.try_get("scim_token")?;
        for (field, stored) in [
            (SecretField::ClientSecret, &stored_secret),
            (SecretField::ScimToken, &stored_token),
        ] {
            if !is_sealed(stored) {
                self.seal_legacy(key, id, field, stored).await?;
            }
        }
        Ok(Tenant {
            id: TenantId(row.try_get::<Uuid, _>("id")?),
            name: row.try_get("name")?,
            graph_tenant_id: row.try_get("graph_tenant_id")?,
            graph_login_url: row.try_get("graph_login_url")?,
            graph_base_url: row.try_get("graph_base_url")?,
            client_id: row.try_get("client_id")?,
            client_secret,
            scim_base_url: row.try_get("scim_base_url")?,
            status: row.try_get("status")?,
            delta_link: row.try_get("delta_link")?,
            authorized: row.try_get("authorized")?,
            scope: Scope {
                all: row.try_get("scope_all")?,
                users: row.try_get("scope_users")?,
                groups: row.try_get("scope_groups")?,
                nested: row.try_get("scope_nested")?,
                group_objects: row.try_get("sync_group_objects")?,
                rooms: row.try_get("sync_rooms")?,
                avatars: row.try_get("sync_avatars")?,
            },
            groups_delta_link: row.try_get("groups_delta_link")?,
            full_walk_requested: row.try_get("full_walk_requested")?,
        })
    }

    /// The tenant's SCIM token, opened: the coordinator's one use of it is the Webex domain
    /// import (`webex_domains.rs`); workers open it themselves. A legacy plain-text token is
    /// sealed by [`Self::get`], not here.
    pub async fn scim_token(&self, id: TenantId) -> Result<SecretString, CoordinatorError> {
        let key = self.key()?;
        let stored: String = sqlx::query_scalar("SELECT scim_token FROM tenants WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| CoordinatorError::TenantNotFound(id.to_string()))?;
        let (token, _) = key
            .open_or_legacy(id, SecretField::ScimToken, &stored)
            .map_err(secrets_error)?;
        Ok(token)
    }

    /// Replaces a legacy plain-text secret by its sealed form, unless the column changed
    /// since it was read (a concurrent write wins).
    async fn seal_legacy(
        &self,
        key: &SecretsKey,
        id: TenantId,
        field: SecretField,
        plain: &str,
    ) -> Result<(), CoordinatorError> {
        let sealed = key.seal(id, field, plain).map_err(secrets_error)?;
        let sql = match field {
            SecretField::ClientSecret => {
                "UPDATE tenants SET client_secret = $3 WHERE id = $1 AND client_secret = $2"
            }
            SecretField::ScimToken => {
                "UPDATE tenants SET scim_token = $3 WHERE id = $1 AND scim_token = $2"
            }
        };
        sqlx::query(sql)
            .bind(id.0)
            .bind(plain)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        tracing::info!(tenant = %id, column = field.column(), "legacy plain-text secret sealed");
        Ok(())
    }

    /// Authorizes a tenant saved with "authorize later" (or withdraws the authorization).
    pub async fn set_authorized(
        &self,
        id: TenantId,
        authorized: bool,
    ) -> Result<(), CoordinatorError> {
        self.update(
            id,
            "UPDATE tenants SET authorized = $2, updated_at = now() WHERE id = $1",
            authorized,
        )
        .await
    }

    /// Replaces the tenant's attribute mapping (`None`: back to the default mapping) after
    /// checking it: expressions are parsed now, and an error says which rule and where.
    pub async fn set_mapping(
        &self,
        id: TenantId,
        rules: Option<Vec<MappingRule>>,
    ) -> Result<(), CoordinatorError> {
        let rules = match rules {
            None => None,
            Some(rules) => {
                let compiled = Mapping::compile(rules)?;
                Some(compiled.rules().cloned().collect::<Vec<_>>())
            }
        };
        let n = sqlx::query("UPDATE tenants SET mapping = $2, updated_at = now() WHERE id = $1")
            .bind(id.0)
            .bind(rules.map(sqlx::types::Json))
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CoordinatorError::TenantNotFound(id.to_string()));
        }
        Ok(())
    }

    /// The tenant's own attribute mapping, `None` for the default mapping.
    pub async fn mapping(
        &self,
        id: TenantId,
    ) -> Result<Option<Vec<MappingRule>>, CoordinatorError> {
        let row: Option<Option<sqlx::types::Json<Vec<MappingRule>>>> =
            sqlx::query_scalar("SELECT mapping FROM tenants WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Err(CoordinatorError::TenantNotFound(id.to_string())),
            Some(rules) => Ok(rules.map(|r| r.0)),
        }
    }

    /// "Clear attributes": whether a source value that becomes null removes the Webex value.
    pub async fn set_clear_attributes(
        &self,
        id: TenantId,
        on: bool,
    ) -> Result<(), CoordinatorError> {
        self.update(
            id,
            "UPDATE tenants SET clear_attributes = $2, updated_at = now() WHERE id = $1",
            on,
        )
        .await
    }

    /// Turns scheduled cycles on or off; off keeps the configuration and the deltaLink.
    pub async fn set_auto_sync(&self, id: TenantId, on: bool) -> Result<(), CoordinatorError> {
        self.update(
            id,
            "UPDATE tenants SET auto_sync = $2, updated_at = now() WHERE id = $1",
            on,
        )
        .await
    }

    /// "Sync now": makes the tenant due at once, even with auto-sync off; the request is
    /// cleared when a run completes.
    pub async fn request_sync(&self, id: TenantId) -> Result<(), CoordinatorError> {
        let authorized: Option<bool> =
            sqlx::query_scalar("SELECT authorized FROM tenants WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        match authorized {
            None => Err(CoordinatorError::TenantNotFound(id.to_string())),
            Some(false) => Err(not_authorized(id)),
            Some(true) => {
                self.update(
                    id,
                    "UPDATE tenants SET sync_requested = $2, next_run_at = now(), updated_at = now() WHERE id = $1",
                    true,
                )
                .await
            }
        }
    }

    async fn update(
        &self,
        id: TenantId,
        sql: &'static str,
        value: bool,
    ) -> Result<(), CoordinatorError> {
        let n = sqlx::query(sql)
            .bind(id.0)
            .bind(value)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CoordinatorError::TenantNotFound(id.to_string()));
        }
        Ok(())
    }

    /// Sets the tenant's accidental-deletion guard thresholds.
    pub async fn set_guard(&self, id: TenantId, t: Thresholds) -> Result<(), CoordinatorError> {
        if t.max_percent > 100 {
            return Err(CoordinatorError::Invalid(format!(
                "guard percentage must be at most 100, got {}",
                t.max_percent
            )));
        }
        let n = sqlx::query(
            "UPDATE tenants SET guard_max_count = $2, guard_max_percent = $3, updated_at = now() \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(i32::try_from(t.max_count).unwrap_or(i32::MAX))
        .bind(t.max_percent as i32)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CoordinatorError::TenantNotFound(id.to_string()));
        }
        Ok(())
    }

    /// Replaces the tenant's scope; it applies from the next run on (a run in progress
    /// keeps the scope it resolved).
    pub async fn set_scope(&self, id: TenantId, scope: Scope) -> Result<Scope, CoordinatorError> {
        let scope = scope.validated()?;
        let n = sqlx::query(
            // Users a delta never mentions can enter a scope that goes back to all users
            // or turns rooms on: the next run walks everyone. (Old values on the right.)
            "UPDATE tenants SET scope_all = $2, scope_users = $3, scope_groups = $4, scope_nested = $5, \
             sync_group_objects = $6, sync_rooms = $7, sync_avatars = $8, updated_at = now(), \
             full_walk_requested = full_walk_requested OR ($2 AND NOT scope_all) OR ($7 AND NOT sync_rooms) \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(scope.all)
        .bind(&scope.users)
        .bind(&scope.groups)
        .bind(scope.nested)
        .bind(scope.group_objects)
        .bind(scope.rooms)
        .bind(scope.avatars)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CoordinatorError::TenantNotFound(id.to_string()));
        }
        Ok(scope)
    }

    /// Every tenant as (id, name, status, has a deltaLink), by name.
    pub async fn list(&self) -> Result<Vec<(TenantId, String, String, bool)>, CoordinatorError> {
        let rows = sqlx::query(
            "SELECT id, name, status, delta_link IS NOT NULL AS synced FROM tenants ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    TenantId(r.try_get("id")?),
                    r.try_get("name")?,
                    r.try_get("status")?,
                    r.try_get("synced")?,
                ))
            })
            .collect()
    }

    /// Records how the instance was set up (`default` or `custom`), and, when the operator
    /// had its org's Directory Connector blocked, who did and when.
    pub async fn record_setup(
        &self,
        id: TenantId,
        mode: Option<&str>,
        directory_connector_blocked_by: Option<&str>,
    ) -> Result<(), CoordinatorError> {
        let n = sqlx::query(
            "UPDATE tenants SET setup_mode = coalesce($2, setup_mode), \
             directory_connector_blocked_at = CASE WHEN $3::text IS NULL \
                 THEN directory_connector_blocked_at ELSE now() END, \
             directory_connector_blocked_by = coalesce($3, directory_connector_blocked_by), \
             updated_at = now() WHERE id = $1",
        )
        .bind(id.0)
        .bind(mode)
        .bind(directory_connector_blocked_by)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CoordinatorError::TenantNotFound(id.to_string()));
        }
        Ok(())
    }

    /// "Edit instance name".
    pub async fn rename(&self, id: TenantId, name: &str) -> Result<(), CoordinatorError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(CoordinatorError::Invalid(
                "an instance name has 1 to 200 characters".into(),
            ));
        }
        let n = sqlx::query("UPDATE tenants SET name = $2, updated_at = now() WHERE id = $1")
            .bind(id.0)
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CoordinatorError::TenantNotFound(id.to_string()));
        }
        Ok(())
    }

    /// Refuses (409) while a coordinator holds the tenant's lease, i.e. syncs it.
    pub async fn ensure_not_syncing(&self, id: TenantId) -> Result<(), CoordinatorError> {
        let mut conn = self.pool.acquire().await?;
        not_syncing(&mut conn, id).await
    }

    /// "Delete instance": the tenant's configuration and state leave dirsync (Webex users
    /// are not touched). Refused while a coordinator holds the tenant's lease (a sync is
    /// running): stop it first, or wait.
    pub async fn delete(&self, id: TenantId) -> Result<(), CoordinatorError> {
        let mut tx = self.pool.begin().await?;
        // The row stays locked until the delete commits: no lease can be taken meanwhile.
        not_syncing(&mut tx, id).await?;
        sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A secret that cannot be sealed or opened: the message says why, never what.
fn secrets_error(e: dirsync_proto::ProtoError) -> CoordinatorError {
    CoordinatorError::Invalid(e.to_string())
}

/// Locks the tenant's row and refuses (409) while a coordinator holds its lease.
async fn not_syncing(conn: &mut sqlx::PgConnection, id: TenantId) -> Result<(), CoordinatorError> {
    let leased: Option<bool> = sqlx::query_scalar(
        "SELECT lease_owner IS NOT NULL AND lease_expires_at > now() FROM tenants \
         WHERE id = $1 FOR UPDATE",
    )
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?;
    match leased {
        None => Err(CoordinatorError::TenantNotFound(id.to_string())),
        Some(true) => Err(CoordinatorError::Conflict(format!(
            "instance {id} is being synced; turn auto-sync off and delete it once the sync ends"
        ))),
        Some(false) => Ok(()),
    }
}

/// The error for syncing a tenant saved with "authorize later".
pub fn not_authorized(id: TenantId) -> CoordinatorError {
    CoordinatorError::Invalid(format!(
        "tenant {id} is saved but not authorized yet: run `dirsync tenant authorize {id}` first"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> NewTenant {
        NewTenant {
            name: "Contoso".into(),
            graph_tenant_id: "contoso.onmicrosoft.com".into(),
            graph_login_url: "https://login.microsoftonline.com".into(),
            graph_base_url: "https://graph.microsoft.com".into(),
            client_id: "app".into(),
            client_secret: SecretString::from("s3cret"),
            scim_base_url:
                "https://webexapis.com/identity/scim/0ae87ade-8c8a-4952-af08-318798958d0c/v2".into(),
            scim_token: SecretString::from("tok"),
            allow_hard_delete: true,
        }
    }

    #[test]
    fn validation_cases() {
        assert!(valid().validate().is_ok());
        type Mutation = Box<dyn Fn(&mut NewTenant)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("empty name", Box::new(|t| t.name = " ".into())),
            (
                "empty secret",
                Box::new(|t| t.client_secret = SecretString::from("")),
            ),
            (
                "bad url",
                Box::new(|t| t.graph_base_url = "not a url".into()),
            ),
            (
                "ftp scheme",
                Box::new(|t| t.graph_login_url = "ftp://x".into()),
            ),
            (
                "scim root without /v2",
                Box::new(|t| t.scim_base_url = "https://webexapis.com/identity/scim/x".into()),
            ),
        ];
        for (name, mutate) in cases {
            let mut t = valid();
            mutate(&mut t);
            assert!(
                matches!(t.validate(), Err(CoordinatorError::Invalid(_))),
                "{name} should be rejected"
            );
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let shown = format!("{:?}", valid());
        assert!(
            !shown.contains("s3cret") && !shown.contains("\"tok\""),
            "{shown}"
        );
    }
}
