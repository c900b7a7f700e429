//! The reference pass: manager references that workers deferred because the manager was
//! not in Webex yet, sent again once it is.
//!
//! At the end of its walk a run sends, for every deferred reference whose user and manager
//! is active in Webex and whose manager is in Webex now, an entry that carries only the reference
//! ([`dirsync_proto::PARTIAL_ATTRIBUTE`]); the worker resolves the manager's Webex
//! id and patches `manager.value`, and settles the deferral. A manager still missing
//! (disabled, out of scope) stays deferred without failing anyone.

use serde_json::{Map, Value};
use sqlx::PgPool;

use dirsync_proto::{PARTIAL_ATTRIBUTE, SourceUser, TenantId};

use crate::CoordinatorError;

/// One page of the reference pass: of the next `limit` deferred references after user id
/// `after`, those whose user is active in Webex and whose manager is in Webex now, as
/// entries; and where the next page starts (`None`: no more). Each page is an index range
/// and `limit` key lookups, so the pass costs the same per page however large the tenant.
pub async fn pending(
    pool: &PgPool,
    tenant: TenantId,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<SourceUser>, Option<String>), CoordinatorError> {
    let candidates: Vec<(String, String)> = sqlx::query_as(
        "SELECT entra_id, manager_id FROM deferred_refs \
         WHERE tenant_id = $1 AND ($2::text IS NULL OR entra_id > $2) ORDER BY entra_id LIMIT $3",
    )
    .bind(tenant.0)
    .bind(after)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    let Some(next) = candidates.last().map(|(id, _)| id.clone()) else {
        return Ok((Vec::new(), None));
    };
    let (users, managers): (Vec<String>, Vec<String>) = candidates.into_iter().unzip();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.entra_id, c.manager_id FROM UNNEST($2::text[], $3::text[]) AS c(entra_id, manager_id) \
         WHERE EXISTS (SELECT 1 FROM mirror_users u \
                       WHERE u.tenant_id = $1 AND u.entra_id = c.entra_id AND u.active) \
           AND EXISTS (SELECT 1 FROM mirror_users m \
                       WHERE m.tenant_id = $1 AND m.entra_id = c.manager_id) \
         ORDER BY c.entra_id",
    )
    .bind(tenant.0)
    .bind(&users)
    .bind(&managers)
    .fetch_all(pool)
    .await?;
    let entries = rows
        .into_iter()
        .map(|(id, manager)| {
            let mut attributes = Map::new();
            attributes.insert("manager".into(), Value::String(manager));
            attributes.insert(PARTIAL_ATTRIBUTE.into(), Value::Bool(true));
            SourceUser {
                id,
                removed: None,
                attributes,
            }
        })
        .collect();
    Ok((entries, Some(next)))
}
