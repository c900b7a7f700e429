//! The reference pass: manager references that workers deferred because the manager was
//! not in Webex yet, sent again once it is.
//!
//! At the end of its walk a run sends, for every deferred reference whose user and manager
//! is active in Webex and whose manager is in Webex now, an entry that carries only the reference
//! ([`dirsync_proto::REFERENCES_ONLY_ATTRIBUTE`]); the worker resolves the manager's Webex
//! id and patches `manager.value`, and settles the deferral. A manager still missing
//! (disabled, out of scope) stays deferred without failing anyone.

use serde_json::{Map, Value};
use sqlx::PgPool;

use dirsync_proto::{REFERENCES_ONLY_ATTRIBUTE, SourceUser, TenantId};

use crate::CoordinatorError;

/// The reference-pass entries of a tenant, by user id.
pub async fn pending(pool: &PgPool, tenant: TenantId) -> Result<Vec<SourceUser>, CoordinatorError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.entra_id, d.manager_id FROM deferred_refs d \
         JOIN mirror_users u ON u.tenant_id = d.tenant_id AND u.entra_id = d.entra_id AND u.active \
         JOIN mirror_users m ON m.tenant_id = d.tenant_id AND m.entra_id = d.manager_id \
         WHERE d.tenant_id = $1 ORDER BY d.entra_id",
    )
    .bind(tenant.0)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, manager)| {
            let mut attributes = Map::new();
            attributes.insert("manager".into(), Value::String(manager));
            attributes.insert(REFERENCES_ONLY_ATTRIBUTE.into(), Value::Bool(true));
            SourceUser {
                id,
                removed: None,
                attributes,
            }
        })
        .collect())
}
