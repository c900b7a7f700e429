//! The reference pass: manager references that workers deferred because the manager was
//! not in Webex yet, sent again once it is.
//!
//! A deferral lives on the user's mirror row (`mirror_users.deferred_manager`). At the end
//! of its walk a run sends, for every waiting user active in Webex whose manager is in
//! Webex now, an entry that carries only the reference
//! ([`dirsync_proto::PARTIAL_ATTRIBUTE`]); the worker resolves the manager's Webex id,
//! patches `manager.value`, and settles the deferral. A manager still missing
//! (disabled, out of scope) stays deferred without failing anyone.

use std::collections::HashSet;

use serde_json::{Map, Value};
use sqlx::PgPool;

use dirsync_proto::{PARTIAL_ATTRIBUTE, SourceUser, TenantId};

use crate::CoordinatorError;

/// One page of the reference pass: of the next `limit` users after user id `after` that
/// wait for a manager, those active in Webex whose manager is in Webex now, as entries; and
/// where the next page starts (`None`: no more). Each page is a range of the partial index
/// `mirror_users_deferred` and one key lookup per distinct manager, so the pass costs the
/// same per page however large the tenant.
pub async fn pending(
    pool: &PgPool,
    tenant: TenantId,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<SourceUser>, Option<String>), CoordinatorError> {
    // `''` is a settled deferral (see the worker's `deferrals` module). The first page
    // starts after `''` (before every id) rather than under an `IS NULL OR` condition:
    // with that, a generic plan could not start the index scan at `after`, and each page
    // would read the index from the start.
    let waiting: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT entra_id, deferred_manager, active FROM mirror_users \
         WHERE tenant_id = $1 AND deferred_manager <> '' AND entra_id > $2 \
         ORDER BY entra_id LIMIT $3",
    )
    .bind(tenant.0)
    .bind(after.unwrap_or(""))
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    let Some(next) = waiting.last().map(|(id, _, _)| id.clone()) else {
        return Ok((Vec::new(), None));
    };
    let mut managers: Vec<&str> = waiting
        .iter()
        .filter(|(_, _, active)| *active)
        .map(|(_, manager, _)| manager.as_str())
        .collect();
    managers.sort_unstable();
    managers.dedup();
    let in_webex: HashSet<String> = if managers.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar(
            "SELECT entra_id FROM mirror_users WHERE tenant_id = $1 AND entra_id = ANY($2)",
        )
        .bind(tenant.0)
        .bind(&managers)
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect()
    };
    let entries = waiting
        .into_iter()
        .filter(|(_, manager, active)| *active && in_webex.contains(manager))
        .map(|(id, manager, _)| {
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
