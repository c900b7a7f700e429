//! The `groups` and `group_members` tables: Entra groups and their direct members, as folded
//! from one `groups/delta` round ([`GroupsDelta`]), and the reads that resolve nesting.
//!
//! A round is applied in one transaction with a fixed number of bulk statements (UNNEST over
//! arrays), so a crash leaves either the whole round or none of it, and a round's cost does
//! not grow in round trips with the number of groups or members.

use std::collections::HashSet;

use sqlx::PgPool;

use dirsync_proto::{RemovedReason, TenantId};

use crate::CoordinatorError;
use crate::graph::groups::{GroupsDelta, MemberKind};

/// The users a scope covers, as one SQL text (a macro so other statements can embed it
/// with `concat!`): of tenant `$1`, the user members of the groups `$2`, with `$3` also those
/// of groups nested in them at any depth, and the users `$4`. Deleted groups, as roots or
/// nested, count as empty; the recursion's `UNION` drops groups already reached, so cycles
/// end.
macro_rules! scope_users_sql {
    () => {
        "WITH RECURSIVE reached (group_id) AS ( \
             SELECT g.group_id FROM groups g \
             WHERE g.tenant_id = $1 AND g.group_id = ANY($2) AND NOT g.deleted \
           UNION \
             SELECT gm.member_id FROM reached r \
             JOIN group_members gm ON gm.tenant_id = $1 AND gm.group_id = r.group_id \
                  AND gm.member_kind = 'group' \
             JOIN groups g ON g.tenant_id = $1 AND g.group_id = gm.member_id AND NOT g.deleted \
             WHERE $3 \
         ) \
         SELECT gm.member_id FROM reached r \
         JOIN group_members gm ON gm.tenant_id = $1 AND gm.group_id = r.group_id \
         WHERE gm.member_kind = 'user' \
         UNION SELECT unnest($4::text[])"
    };
}
pub(crate) use scope_users_sql;

/// Rows per bulk statement: bounds the size of one statement's arrays for huge rounds.
const CHUNK: usize = 10_000;

/// A stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub display_name: Option<String>,
    pub deleted: bool,
}

/// Access to `groups` and `group_members`.
#[derive(Debug, Clone)]
pub struct MembershipStore {
    pool: PgPool,
}

/// The bulk inputs of one round, column by column.
#[derive(Default)]
struct Rows {
    named: (Vec<String>, Vec<Option<String>>, Vec<bool>),
    unnamed: (Vec<String>, Vec<bool>),
    reset: Vec<String>,
    removed: (Vec<String>, Vec<String>),
    added: (Vec<String>, Vec<String>, Vec<&'static str>),
}

impl Rows {
    fn of(delta: &GroupsDelta) -> Self {
        let mut rows = Rows::default();
        for (id, g) in delta.groups() {
            match g.display_name() {
                Some(name) => {
                    rows.named.0.push(id.to_string());
                    rows.named.1.push(name.map(str::to_string));
                    rows.named.2.push(g.deleted());
                }
                None => {
                    rows.unnamed.0.push(id.to_string());
                    rows.unnamed.1.push(g.deleted());
                }
            }
            // A hard delete ends every membership; a soft delete keeps them for a restore.
            if g.members_reset || g.removed == Some(RemovedReason::Deleted) {
                rows.reset.push(id.to_string());
            }
            for (member, change) in &g.members {
                if change.present {
                    rows.added.0.push(id.to_string());
                    rows.added.1.push(member.clone());
                    rows.added.2.push(change.kind.as_str());
                } else {
                    rows.removed.0.push(id.to_string());
                    rows.removed.1.push(member.clone());
                }
            }
        }
        rows
    }
}

impl MembershipStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Writes one incremental round's groups, deletions and member changes, all or nothing.
    pub async fn apply(
        &self,
        tenant: TenantId,
        delta: &GroupsDelta,
    ) -> Result<(), CoordinatorError> {
        self.write(tenant, delta, false).await
    }

    /// Writes a full enumeration (initial round, or a resync): it lists every group and
    /// every member, so whatever it does not mention is gone. All or nothing: memberships
    /// are replaced and groups it does not return are marked deleted in the same
    /// transaction. A soft-deleted group's members are not listed, so they are dropped.
    pub async fn apply_full(
        &self,
        tenant: TenantId,
        delta: &GroupsDelta,
    ) -> Result<(), CoordinatorError> {
        self.write(tenant, delta, true).await
    }

    async fn write(
        &self,
        tenant: TenantId,
        delta: &GroupsDelta,
        full: bool,
    ) -> Result<(), CoordinatorError> {
        let mut tx = self.pool.begin().await?;
        write_round(&mut tx, tenant, delta, full).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One stored group, if the tenant has it.
    pub async fn group(
        &self,
        tenant: TenantId,
        group: &str,
    ) -> Result<Option<StoredGroup>, CoordinatorError> {
        let row: Option<(Option<String>, bool)> = sqlx::query_as(
            "SELECT display_name, deleted FROM groups WHERE tenant_id = $1 AND group_id = $2",
        )
        .bind(tenant.0)
        .bind(group)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(display_name, deleted)| StoredGroup {
            display_name,
            deleted,
        }))
    }

    /// The direct members of a group as stored (also for a deleted group), by member id.
    pub async fn members(
        &self,
        tenant: TenantId,
        group: &str,
    ) -> Result<Vec<(String, MemberKind)>, CoordinatorError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT member_id, member_kind FROM group_members \
             WHERE tenant_id = $1 AND group_id = $2 ORDER BY member_id",
        )
        .bind(tenant.0)
        .bind(group)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, kind)| Ok((id, MemberKind::parse(&kind)?)))
            .collect()
    }

    /// The groups a user or group is directly a member of, deleted groups excluded.
    pub async fn groups_of(
        &self,
        tenant: TenantId,
        member: &str,
    ) -> Result<Vec<String>, CoordinatorError> {
        Ok(sqlx::query_scalar(
            "SELECT gm.group_id FROM group_members gm \
             JOIN groups g ON g.tenant_id = gm.tenant_id AND g.group_id = gm.group_id \
             WHERE gm.tenant_id = $1 AND gm.member_id = $2 AND NOT g.deleted ORDER BY gm.group_id",
        )
        .bind(tenant.0)
        .bind(member)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Users that are direct members of any of `groups` (deleted groups count as empty).
    pub async fn direct_user_members(
        &self,
        tenant: TenantId,
        groups: &[String],
    ) -> Result<HashSet<String>, CoordinatorError> {
        self.user_members(tenant, groups, false).await
    }

    /// Users that are members of any of `groups` directly or through nested groups, at any
    /// depth. Deleted groups, as roots or nested, count as empty. Cycles are harmless.
    pub async fn transitive_user_members(
        &self,
        tenant: TenantId,
        groups: &[String],
    ) -> Result<HashSet<String>, CoordinatorError> {
        self.user_members(tenant, groups, true).await
    }

    async fn user_members(
        &self,
        tenant: TenantId,
        groups: &[String],
        nested: bool,
    ) -> Result<HashSet<String>, CoordinatorError> {
        let users: Vec<String> = sqlx::query_scalar(scope_users_sql!())
            .bind(tenant.0)
            .bind(groups)
            .bind(nested)
            .bind(Vec::<String>::new())
            .fetch_all(&self.pool)
            .await?;
        Ok(users.into_iter().collect())
    }
}

/// Writes one `groups/delta` round inside the caller's transaction (see
/// [`MembershipStore::apply`] and [`MembershipStore::apply_full`] for the two modes), so a
/// run can commit the round with what it derives from it.
pub async fn write_round(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    delta: &GroupsDelta,
    full: bool,
) -> Result<(), CoordinatorError> {
    let rows = Rows::of(delta);
    if full {
        sqlx::query("DELETE FROM group_members WHERE tenant_id = $1")
            .bind(tenant.0)
            .execute(&mut *conn)
            .await?;
        // The round's own groups are set back below.
        sqlx::query(
                "UPDATE groups SET deleted = true, updated_at = now() WHERE tenant_id = $1 AND NOT deleted",
            )
            .bind(tenant.0)
            .execute(&mut *conn)
            .await?;
    }
    for ((ids, names), deleted) in rows
        .named
        .0
        .chunks(CHUNK)
        .zip(rows.named.1.chunks(CHUNK))
        .zip(rows.named.2.chunks(CHUNK))
    {
        sqlx::query(
                "INSERT INTO groups (tenant_id, group_id, display_name, deleted) \
                 SELECT $1, g, n, d FROM UNNEST($2::text[], $3::text[], $4::bool[]) AS t(g, n, d) \
                 ON CONFLICT (tenant_id, group_id) DO UPDATE SET display_name = excluded.display_name, \
                 deleted = excluded.deleted, updated_at = now()",
            )
            .bind(tenant.0)
            .bind(ids)
            .bind(names)
            .bind(deleted)
            .execute(&mut *conn)
            .await?;
    }
    // Groups the round mentioned without a displayName keep the stored one.
    for (ids, deleted) in rows
        .unnamed
        .0
        .chunks(CHUNK)
        .zip(rows.unnamed.1.chunks(CHUNK))
    {
        sqlx::query(
                "INSERT INTO groups (tenant_id, group_id, deleted) \
                 SELECT $1, g, d FROM UNNEST($2::text[], $3::bool[]) AS t(g, d) \
                 ON CONFLICT (tenant_id, group_id) DO UPDATE SET deleted = excluded.deleted, updated_at = now()",
            )
            .bind(tenant.0)
            .bind(ids)
            .bind(deleted)
            .execute(&mut *conn)
            .await?;
    }
    for ids in rows.reset.chunks(CHUNK) {
        sqlx::query("DELETE FROM group_members WHERE tenant_id = $1 AND group_id = ANY($2)")
            .bind(tenant.0)
            .bind(ids)
            .execute(&mut *conn)
            .await?;
    }
    for (groups, members) in rows
        .removed
        .0
        .chunks(CHUNK)
        .zip(rows.removed.1.chunks(CHUNK))
    {
        sqlx::query(
            "DELETE FROM group_members gm USING UNNEST($2::text[], $3::text[]) AS r(g, m) \
                 WHERE gm.tenant_id = $1 AND gm.group_id = r.g AND gm.member_id = r.m",
        )
        .bind(tenant.0)
        .bind(groups)
        .bind(members)
        .execute(&mut *conn)
        .await?;
    }
    for ((groups, members), kinds) in rows
        .added
        .0
        .chunks(CHUNK)
        .zip(rows.added.1.chunks(CHUNK))
        .zip(rows.added.2.chunks(CHUNK))
    {
        sqlx::query(
                "INSERT INTO group_members (tenant_id, group_id, member_id, member_kind) \
                 SELECT $1, g, m, k FROM UNNEST($2::text[], $3::text[], $4::text[]) AS t(g, m, k) \
                 ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET member_kind = excluded.member_kind",
            )
            .bind(tenant.0)
            .bind(groups)
            .bind(members)
            .bind(kinds)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
