//! "Sync group objects": the batches that carry a tenant's chosen groups to the workers.
//!
//! They go out after every user batch and deactivation of the run is recorded, so a
//! member's Webex id is known when its group is pushed; a member not in Webex yet leaves
//! its group "to be synced", and the next run (which sends every chosen group again;
//! unchanged ones cost the workers no SCIM request) completes it.

use sqlx::PgPool;

use dirsync_proto::{BatchMessage, RemovedReason, RunId, SourceGroup, TenantId, WIRE_VERSION};

use crate::CoordinatorError;
use crate::scope::Scope;

/// One batch per chosen group known from `groups/delta`, numbered from `first_seq`. Built
/// from the memberships as the run's groups round left them, so a resumed run rebuilds the
/// same batches.
pub async fn group_batches(
    pool: &PgPool,
    run: RunId,
    tenant: TenantId,
    scope: &Scope,
    first_seq: u32,
) -> Result<Vec<BatchMessage>, CoordinatorError> {
    if !scope.group_objects {
        return Ok(Vec::new());
    }
    let mut batches = Vec::with_capacity(scope.groups.len());
    for group_id in &scope.groups {
        let row: Option<(Option<String>, bool)> = sqlx::query_as(
            "SELECT display_name, deleted FROM groups WHERE tenant_id = $1 AND group_id = $2",
        )
        .bind(tenant.0)
        .bind(group_id)
        .fetch_optional(pool)
        .await?;
        let Some((display_name, deleted)) = row else {
            tracing::warn!(group_id, "chosen group not found in entra, not synced");
            continue;
        };
        let members: Vec<String> = sqlx::query_scalar(
            "SELECT member_id FROM group_members \
             WHERE tenant_id = $1 AND group_id = $2 AND member_kind = 'user' ORDER BY member_id",
        )
        .bind(tenant.0)
        .bind(group_id)
        .fetch_all(pool)
        .await?;
        batches.push(BatchMessage {
            version: WIRE_VERSION,
            tenant_id: tenant,
            run_id: run,
            seq: first_seq + batches.len() as u32,
            users: Vec::new(),
            groups: vec![SourceGroup {
                id: group_id.clone(),
                removed: deleted.then_some(RemovedReason::Deleted),
                display_name,
                members,
            }],
            dry_run: false,
        });
    }
    Ok(batches)
}
