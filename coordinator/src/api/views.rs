//! What the admin API shows of an instance: its settings (never its secrets), its job status
//! and the summary of its last sync. Read models over the coordinator's tables.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use utoipa::ToSchema;

use dirsync_proto::TenantId;

use crate::CoordinatorError;
use crate::scope::Scope;

/// An instance as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Instance {
    pub id: uuid::Uuid,
    pub name: String,
    /// `NotRun`, `Active` or `Quarantine`.
    pub status: String,
    /// Why the instance is in quarantine.
    pub quarantine_reason: Option<String>,
    /// False for an instance saved with "authorize later".
    pub authorized: bool,
    pub auto_sync: bool,
    pub entra_tenant_id: String,
    pub client_id: String,
    pub graph_login_url: String,
    pub graph_base_url: String,
    pub scim_base_url: String,
    pub allow_hard_delete: bool,
    pub clear_attributes: bool,
    #[schema(value_type = Object)]
    pub scope: Scope,
    /// When the last sync completed.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the next scheduled sync is due.
    pub next_run_at: DateTime<Utc>,
    /// How it was set up: `default` ("sync default settings") or `custom`.
    pub setup_mode: String,
    /// When the org's Directory Connector was blocked at set-up, and by whose token.
    pub directory_connector_blocked_at: Option<DateTime<Utc>>,
    pub directory_connector_blocked_by: Option<String>,
}

const INSTANCE_COLUMNS: &str = "t.id, t.name, t.status, t.quarantine_reason, t.authorized, \
    t.auto_sync, t.graph_tenant_id, t.client_id, t.graph_login_url, t.graph_base_url, \
    t.scim_base_url, t.allow_hard_delete, t.clear_attributes, t.scope_all, t.scope_users, \
    t.scope_groups, t.scope_nested, t.sync_group_objects, t.sync_rooms, t.sync_avatars, \
    t.next_run_at, t.setup_mode, t.directory_connector_blocked_at, \
    t.directory_connector_blocked_by, (SELECT max(finished_at) FROM runs r WHERE r.tenant_id = t.id \
    AND r.state = 'completed' AND r.kind <> 'on_demand') AS last_sync_at";

fn instance(row: &sqlx::postgres::PgRow) -> Result<Instance, sqlx::Error> {
    Ok(Instance {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        quarantine_reason: row.try_get("quarantine_reason")?,
        authorized: row.try_get("authorized")?,
        auto_sync: row.try_get("auto_sync")?,
        entra_tenant_id: row.try_get("graph_tenant_id")?,
        client_id: row.try_get("client_id")?,
        graph_login_url: row.try_get("graph_login_url")?,
        graph_base_url: row.try_get("graph_base_url")?,
        scim_base_url: row.try_get("scim_base_url")?,
        allow_hard_delete: row.try_get("allow_hard_delete")?,
        clear_attributes: row.try_get("clear_attributes")?,
        scope: Scope {
            all: row.try_get("scope_all")?,
            users: row.try_get("scope_users")?,
            groups: row.try_get("scope_groups")?,
            nested: row.try_get("scope_nested")?,
            group_objects: row.try_get("sync_group_objects")?,
            rooms: row.try_get("sync_rooms")?,
            avatars: row.try_get("sync_avatars")?,
        },
        last_sync_at: row.try_get("last_sync_at")?,
        next_run_at: row.try_get("next_run_at")?,
        setup_mode: row.try_get("setup_mode")?,
        directory_connector_blocked_at: row.try_get("directory_connector_blocked_at")?,
        directory_connector_blocked_by: row.try_get("directory_connector_blocked_by")?,
    })
}

/// Every instance, by name.
pub async fn instances(pool: &PgPool) -> Result<Vec<Instance>, CoordinatorError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTANCE_COLUMNS} FROM tenants t ORDER BY t.name, t.id"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(instance).collect::<Result<_, _>>()?)
}

/// One instance.
pub async fn instance_of(pool: &PgPool, id: TenantId) -> Result<Instance, CoordinatorError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTANCE_COLUMNS} FROM tenants t WHERE t.id = $1"
    )))
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoordinatorError::TenantNotFound(id.to_string()))?;
    Ok(instance(&row)?)
}

/// The seed's "View summary" of one sync.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    pub run_id: uuid::Uuid,
    /// `initial` or `incremental`.
    pub kind: String,
    /// `enumerating`, `draining`, `awaiting_approval`, `completed` or `failed`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub users_synced: i64,
    pub users_skipped: i64,
    pub users_failed: i64,
    pub groups_synced: i64,
    pub groups_to_be_synced: i64,
    pub groups_failed: i64,
    /// Batches published and recorded so far (progress of a running sync). Batches sent
    /// after the walk (deactivations, group objects) count once recorded.
    pub batches_published: i32,
    pub batches_recorded: i64,
    pub error: Option<String>,
}

/// An object that failed in a sync, with why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FailedObject {
    pub entra_id: String,
    pub reason: String,
}

/// Job status and the summaries of the last completed and the running sync.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Status {
    pub instance_id: uuid::Uuid,
    /// `NotRun`, `Active` or `Quarantine`.
    pub status: String,
    pub quarantine_reason: Option<String>,
    pub last_sync: Option<RunSummary>,
    /// The sync in progress, with counts so far.
    pub running: Option<RunSummary>,
    /// The last completed sync's failed objects (at most `limit`).
    pub failed_objects: Vec<FailedObject>,
}

const RUN_COLUMNS: &str = "r.id, r.kind, r.state, r.started_at, r.finished_at, r.error, \
    r.batches_published, \
    coalesce(r.synced, (SELECT sum(synced) FROM batch_results b WHERE b.run_id = r.id), 0)::bigint AS synced, \
    coalesce(r.skipped, (SELECT sum(skipped) FROM batch_results b WHERE b.run_id = r.id), 0)::bigint AS skipped, \
    coalesce(r.failed, (SELECT sum(failed) FROM batch_results b WHERE b.run_id = r.id), 0)::bigint AS failed, \
    coalesce(r.groups_synced, 0)::bigint AS groups_synced, \
    coalesce(r.groups_pending, 0)::bigint AS groups_pending, \
    coalesce(r.groups_failed, 0)::bigint AS groups_failed, \
    (SELECT count(*) FROM batch_results b WHERE b.run_id = r.id) AS recorded";

fn summary(row: &sqlx::postgres::PgRow) -> Result<RunSummary, sqlx::Error> {
    Ok(RunSummary {
        run_id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        state: row.try_get("state")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        users_synced: row.try_get("synced")?,
        users_skipped: row.try_get("skipped")?,
        users_failed: row.try_get("failed")?,
        groups_synced: row.try_get("groups_synced")?,
        groups_to_be_synced: row.try_get("groups_pending")?,
        groups_failed: row.try_get("groups_failed")?,
        batches_published: row
            .try_get::<i32, _>("batches_published")?
            .max(i32::try_from(row.try_get::<i64, _>("recorded")?).unwrap_or(i32::MAX)),
        batches_recorded: row.try_get("recorded")?,
        error: row.try_get("error")?,
    })
}

/// The instance's job status, last and running sync, and up to `limit` failed objects.
pub async fn status(pool: &PgPool, id: TenantId, limit: i64) -> Result<Status, CoordinatorError> {
    let instance = instance_of(pool, id).await?;
    let last = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM runs r WHERE r.tenant_id = $1 AND r.state = 'completed' \
         AND r.kind <> 'on_demand' ORDER BY r.finished_at DESC LIMIT 1"
    )))
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(summary)
    .transpose()?;
    let running = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM runs r WHERE r.tenant_id = $1 AND r.kind <> 'on_demand' \
         AND r.state NOT IN ('completed', 'failed') ORDER BY r.started_at DESC LIMIT 1"
    )))
    .bind(id.0)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(summary)
    .transpose()?;
    let failed_objects = match &last {
        Some(run) => sqlx::query_as::<_, (String, String)>(
            "SELECT entra_id, reason FROM failed_objects WHERE run_id = $1 \
             ORDER BY seq, entra_id LIMIT $2",
        )
        .bind(run.run_id)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(entra_id, reason)| FailedObject { entra_id, reason })
        .collect(),
        None => Vec::new(),
    };
    Ok(Status {
        instance_id: instance.id,
        status: instance.status,
        quarantine_reason: instance.quarantine_reason,
        last_sync: last,
        running,
        failed_objects,
    })
}
