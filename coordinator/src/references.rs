//! The reference pass: manager references that workers deferred because the manager was
//! not in Webex yet, sent again once it is.
//!
//! A deferral lives on the user's mirror row (`mirror_users.deferred_manager`). At the end
//! of its walk a run sends, for every waiting user active in Webex whose manager may be in
//! Webex now, an entry that carries only the reference
//! ([`dirsync_proto::PARTIAL_ATTRIBUTE`]); the worker resolves the manager's Webex id,
//! patches `manager.value`, and settles the deferral. A manager still missing
//! (disabled, out of scope) stays deferred without failing anyone.
//!
//! Whether the manager is in Webex is only looked up for users the run's walk did not see.
//! A user the walk saw (stamped with the run) had its deferral decided during the walk,
//! while later batches were still creating users, or kept from an earlier run when its
//! entry said nothing of its manager: in an initial cycle that is every waiting user, and
//! nearly all their managers were created after them. Those are sent without the
//! look-up (a random key probe per manager, the pass's costliest query: about a seventh of
//! PostgreSQL's time in a 300,000-user initial cycle); the worker resolves the manager anyway and defers again the few whose
//! manager is still missing. An older deferral whose manager is still missing is not sent,
//! so a steady tenant's unresolvable references cost one look-up per run, not a batch.

use std::collections::HashSet;

use serde_json::{Map, Value};
use sqlx::PgPool;

use dirsync_proto::{PARTIAL_ATTRIBUTE, RunId, SourceUser, TenantId};

use crate::CoordinatorError;

/// One page of `run`'s reference pass: of the next `limit` users after user id `after` that
/// wait for a manager, those active in Webex whose deferral `run` decided or whose manager
/// is in Webex now, as entries; and where the next page starts (`None`: no more). Each page
/// is a range of the partial index `mirror_users_deferred` and one key lookup per distinct
/// manager of the older deferrals, so the pass costs the same per page however large the
/// tenant.
pub async fn pending(
    pool: &PgPool,
    tenant: TenantId,
    run: RunId,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<SourceUser>, Option<String>), CoordinatorError> {
    // `''` is a settled deferral (see the worker's `deferrals` module). The first page
    // starts after `''` (before every id) rather than under an `IS NULL OR` condition:
    // with that, a generic plan could not start the index scan at `after`, and each page
    // would read the index from the start.
    let waiting: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT entra_id, deferred_manager, active, coalesce(last_seen_run = $4, false) \
         FROM mirror_users \
         WHERE tenant_id = $1 AND deferred_manager <> '' AND entra_id > $2 \
         ORDER BY entra_id LIMIT $3",
    )
    .bind(tenant.0)
    .bind(after.unwrap_or(""))
    .bind(limit as i64)
    .bind(run.0)
    .fetch_all(pool)
    .await?;
    let Some(next) = waiting.last().map(|(id, ..)| id.clone()) else {
        return Ok((Vec::new(), None));
    };
    let mut managers: Vec<&str> = waiting
        .iter()
        .filter(|(_, _, active, seen_by_run)| *active && !*seen_by_run)
        .map(|(_, manager, ..)| manager.as_str())
        .collect();
    managers.sort_unstable();
    managers.dedup();
    let in_webex: HashSet<String> = if managers.is_empty() {
        HashSet::new()
    } else {
        // Joined from the keys rather than `entra_id = ANY($2)`: a custom plan of that can
        // filter every row of the tenant when the statistics are stale (the worker's
        // `mirror` module says more).
        sqlx::query_scalar(
            "SELECT m.entra_id FROM UNNEST($2::text[]) AS k(entra_id) \
             JOIN mirror_users m ON m.tenant_id = $1 AND m.entra_id = k.entra_id",
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
        .filter(|(_, manager, active, seen_by_run)| {
            *active && (*seen_by_run || in_webex.contains(manager))
        })
        .map(|(id, manager, ..)| {
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
