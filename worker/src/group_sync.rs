//! Group objects of one batch: read their mirror rows and their members' Webex ids, push each
//! group's plan ([`crate::group_plan`]) and record the outcome, once, in one transaction.
//!
//! Every write is safe to repeat on redelivery: a create first looks for the org's group
//! with our `externalId` (adopting it, and adding the members, which Webex takes as no-ops
//! for members already there), member PATCHes add or remove sets, a delete meets 404.

use std::collections::{BTreeSet, HashMap};

use dirsync_proto::{Counts, GroupCounts, SourceGroup, TenantId};
use sqlx::PgPool;

use crate::error::WorkerError;
use crate::group_plan::{GroupAction, GroupPlan, MirrorGroup, plan_group};
use crate::record::{BatchKey, Recorded};
use crate::scim::ScimClient;

/// What happened to one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResult {
    pub entra_id: String,
    pub outcome: GroupOutcome,
    /// The mirror row to write (`None`: unchanged; `Some(None)`: remove it).
    pub mirror: Option<Option<MirrorGroupRow>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOutcome {
    Synced,
    /// Some members are not in Webex yet.
    Pending,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorGroupRow {
    pub webex_id: String,
    pub display_name: String,
    pub members: Vec<String>,
    pub pending: u32,
}

/// Counts group results.
pub fn count_groups(results: &[GroupResult]) -> GroupCounts {
    let mut counts = GroupCounts::default();
    for r in results {
        match r.outcome {
            GroupOutcome::Synced => counts.synced += 1,
            GroupOutcome::Pending => counts.pending += 1,
            GroupOutcome::Failed(_) => counts.failed += 1,
        }
    }
    counts
}

/// Plans and pushes the groups, one after the other (a batch holds few groups, and one
/// group's member PATCHes must apply in order). An error of the tenant's SCIM service is
/// returned and fails the batch, as for users.
pub async fn sync_groups(
    pool: &PgPool,
    client: &ScimClient,
    tenant: TenantId,
    groups: &[SourceGroup],
) -> Result<Vec<GroupResult>, WorkerError> {
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let mirror = load_mirror_groups(pool, tenant, &ids).await?;
    let members: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(String::as_str))
        .collect();
    let members: Vec<&str> = members.into_iter().collect();
    // Joined from the keys, as in `crate::mirror`: one primary-key probe per member.
    let webex_of: HashMap<String, String> = sqlx::query_as(
        "SELECT m.entra_id, m.webex_id FROM UNNEST($2::text[]) AS k(entra_id) \
         JOIN mirror_users m ON m.tenant_id = $1 AND m.entra_id = k.entra_id WHERE m.active",
    )
    .bind(tenant.0)
    .bind(&members)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let mut results = Vec::with_capacity(groups.len());
    for group in groups {
        let plan = plan_group(group, mirror.get(&group.id), &webex_of);
        results.push(push_group(client, group, plan).await?);
    }
    Ok(results)
}

async fn push_group(
    client: &ScimClient,
    group: &SourceGroup,
    plan: GroupPlan,
) -> Result<GroupResult, WorkerError> {
    let members: Vec<String> = plan.members.iter().cloned().collect();
    let kept = |webex_id: String| MirrorGroupRow {
        webex_id,
        display_name: plan.display_name.clone(),
        members: members.clone(),
        pending: plan.pending,
    };
    let done = |mirror: Option<Option<MirrorGroupRow>>| GroupResult {
        entra_id: group.id.clone(),
        outcome: if plan.pending > 0 {
            GroupOutcome::Pending
        } else {
            GroupOutcome::Synced
        },
        mirror,
    };
    let failed = |e: WorkerError| {
        if e.is_object_specific() {
            Ok(GroupResult {
                entra_id: group.id.clone(),
                outcome: GroupOutcome::Failed(e.reason()),
                mirror: None,
            })
        } else {
            Err(e)
        }
    };
    let pushed = match &plan.action {
        GroupAction::Unchanged => return Ok(done(None)),
        GroupAction::Invalid(reason) => {
            return Ok(GroupResult {
                entra_id: group.id.clone(),
                outcome: GroupOutcome::Failed((*reason).to_string()),
                mirror: None,
            });
        }
        GroupAction::Create { display_name } => {
            create_or_adopt(client, display_name, &group.id, &members)
                .await
                .map(|id| Some(kept(id)))
        }
        GroupAction::Update {
            webex_id,
            rename,
            add,
            remove,
        } => update(client, webex_id, rename.as_deref(), add, remove)
            .await
            .map(|()| Some(kept(webex_id.clone()))),
        GroupAction::Delete { webex_id } => match client.delete_group(webex_id).await {
            Err(e) if e.scim_status() == Some(404) => Ok(None),
            other => other.map(|()| None),
        },
    };
    match pushed {
        Ok(row) => Ok(done(Some(row))),
        Err(e) => failed(e),
    }
}

async fn create_or_adopt(
    client: &ScimClient,
    display_name: &str,
    external_id: &str,
    members: &[String],
) -> Result<String, WorkerError> {
    // A redelivered create must not make a second group: ours carries our externalId.
    if let Some(existing) = client.find_group(display_name, external_id).await? {
        client.change_members(&existing.id, members, &[]).await?;
        return Ok(existing.id);
    }
    Ok(client
        .create_group(display_name, external_id, members)
        .await?
        .id)
}

async fn update(
    client: &ScimClient,
    webex_id: &str,
    rename: Option<&str>,
    add: &[String],
    remove: &[String],
) -> Result<(), WorkerError> {
    if let Some(name) = rename {
        client.rename_group(webex_id, name).await?;
    }
    client.change_members(webex_id, add, remove).await
}

async fn load_mirror_groups(
    pool: &PgPool,
    tenant: TenantId,
    ids: &[&str],
) -> Result<HashMap<String, MirrorGroup>, WorkerError> {
    let rows: Vec<(String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT entra_id, webex_id, display_name, members FROM mirror_groups \
         WHERE tenant_id = $1 AND entra_id = ANY($2)",
    )
    .bind(tenant.0)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(entra_id, webex_id, display_name, members)| {
            let group = MirrorGroup {
                webex_id,
                display_name,
                members: members.into_iter().collect(),
            };
            (entra_id, group)
        })
        .collect())
}

/// Records a group batch: its result row (no users, the group counts), the mirror rows and
/// the failed groups, in one transaction; a batch recorded before is left as it was.
#[tracing::instrument(
    name = "record",
    skip_all,
    fields(tenant_id = %key.tenant, run_id = %key.run, seq = key.seq, groups = results.len(), newly_recorded)
)]
pub async fn record_groups(
    pool: &PgPool,
    key: BatchKey,
    results: &[GroupResult],
) -> Result<Recorded, WorkerError> {
    let counts = count_groups(results);
    let seq = i32::try_from(key.seq)
        .map_err(|_| WorkerError::CountOutOfRange(format!("seq = {}", key.seq)))?;
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO batch_results (run_id, seq, tenant_id, synced, skipped, failed, \
         groups_synced, groups_pending, groups_failed) VALUES ($1, $2, $3, 0, 0, 0, $4, $5, $6) \
         ON CONFLICT (run_id, seq) DO NOTHING",
    )
    .bind(key.run.0)
    .bind(seq)
    .bind(key.tenant.0)
    .bind(counts.synced as i32)
    .bind(counts.pending as i32)
    .bind(counts.failed as i32)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tracing::Span::current().record("newly_recorded", inserted != 0);
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(Recorded {
            counts: Counts::default(),
            newly_recorded: false,
        });
    }
    for result in results {
        match &result.mirror {
            None => {}
            Some(Some(row)) => {
                sqlx::query(
                    "INSERT INTO mirror_groups (tenant_id, entra_id, webex_id, display_name, members, pending) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, entra_id) DO UPDATE SET \
                     webex_id = EXCLUDED.webex_id, display_name = EXCLUDED.display_name, \
                     members = EXCLUDED.members, pending = EXCLUDED.pending, updated_at = now()",
                )
                .bind(key.tenant.0)
                .bind(&result.entra_id)
                .bind(&row.webex_id)
                .bind(&row.display_name)
                .bind(&row.members)
                .bind(row.pending as i32)
                .execute(&mut *tx)
                .await?;
            }
            Some(None) => {
                sqlx::query("DELETE FROM mirror_groups WHERE tenant_id = $1 AND entra_id = $2")
                    .bind(key.tenant.0)
                    .bind(&result.entra_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if let GroupOutcome::Failed(reason) = &result.outcome {
            sqlx::query(
                "INSERT INTO failed_objects (run_id, seq, entra_id, reason) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id, seq, entra_id) DO NOTHING",
            )
            .bind(key.run.0)
            .bind(seq)
            .bind(&result.entra_id)
            .bind(format!("group: {reason}"))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Recorded {
        counts: Counts::default(),
        newly_recorded: true,
    })
}
