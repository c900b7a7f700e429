//! A dry run's walk: every user of the tenant read from Graph, filtered by the scope as it
//! is configured now, sent to the workers as dry-run batches; then the users Webex has that
//! the walk did not meet.
//!
//! It changes nothing a sync relies on: no deltaLink, cursor, run row, mirror row or scope
//! table of the sync is written. The exception is the Entra memberships of a filtered scope
//! (`groups`, `group_members`): the dry run applies a `groups/delta` round to them to judge
//! the scope as Entra has it now. That is safe because they only mirror Entra: the next
//! sync's round starts from the same stored groups deltaLink and applies the same changes
//! again, which changes nothing a second time.
//!
//! The report's rows are written by the workers (`dry_run_rows`), page by page, at most the
//! run window of batches unreported at a time, so a dry run of any size holds one page.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use dirsync_proto::{BatchMessage, RunId, SourceUser, TenantId, WIRE_VERSION};

use super::Runner;
use crate::broker::{BatchPublisher, RunResults};
use crate::dry_runs::DryRunStore;
use crate::graph::PageLink;
use crate::graph::rooms::mark_rooms;
use crate::memberships::{scope_users_sql, write_round};
use crate::{CoordinatorError, guard, scope};

/// How often the reported batches are re-read when no result event arrives.
const POLL: Duration = Duration::from_millis(500);

impl Runner {
    /// Does one requested dry run of `tenant` to its end; its report is in `dry_run_rows`.
    #[tracing::instrument(name = "dry_run", skip_all, fields(tenant_id = %tenant_id, dry_run_id = %id))]
    pub async fn dry_run(
        &self,
        tenant_id: TenantId,
        id: RunId,
        store: &DryRunStore,
        cancel: &CancellationToken,
    ) -> Result<(), CoordinatorError> {
        let tenant = self.tenant(tenant_id).await?;
        let graph = crate::graph::GraphClient::new(self.http.clone(), &tenant)
            .with_budget(self.graph_budget);
        let rooms = super::rooms_of(&graph, &tenant, cancel).await?;
        let filtered = tenant.scope.is_filtered();
        if filtered {
            let round = if tenant.scope.needs_groups() {
                Some(super::scope::groups_round(&graph, &tenant, cancel).await?)
            } else {
                None
            };
            let mut tx = self.pool.begin().await?;
            if let Some(round) = &round {
                write_round(&mut tx, tenant_id, &round.delta, round.full).await?;
            }
            sqlx::query(concat!(
                "INSERT INTO dry_run_scope (dry_run_id, entra_id) SELECT $5, member_id FROM (",
                scope_users_sql!(),
                ") s (member_id) ON CONFLICT DO NOTHING"
            ))
            .bind(tenant_id.0)
            .bind(&tenant.scope.groups)
            .bind(tenant.scope.nested)
            .bind(&tenant.scope.users)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }

        let amqp = self.connection().await?;
        let mut results = RunResults::subscribe(&amqp, &self.topology, id).await?;
        let publisher = BatchPublisher::new(&amqp, &self.topology).await?;
        let mut walk = Walk {
            store,
            id,
            reported: HashSet::new(),
            published: 0,
            pages: 0,
            users_read: 0,
        };
        let mut url = graph.initial_users_url();
        loop {
            let mut page = tokio::select! {
                page = graph.users_page(&url) => page?,
                _ = cancel.cancelled() => return Err(CoordinatorError::Cancelled),
            };
            walk.pages += 1;
            walk.users_read += page.users.len() as u64;
            mark_rooms(&mut page.users, &rooms);
            if filtered && !page.users.is_empty() {
                page.users = self.in_scope(tenant_id, id, page.users).await?;
            }
            if !page.users.is_empty() {
                while walk.published - walk.reported.len() as u32 >= self.window {
                    walk.wait(&mut results, cancel).await?;
                }
                let batch = BatchMessage {
                    version: WIRE_VERSION,
                    tenant_id,
                    run_id: id,
                    seq: walk.published,
                    users: page.users,
                    groups: Vec::new(),
                    dry_run: true,
                };
                publisher.publish_batch(&batch).await?;
                walk.published += 1;
            }
            let done = matches!(page.link, PageLink::Delta(_));
            store
                .progress(id, walk.pages, walk.users_read, walk.published, done)
                .await?;
            match page.link {
                PageLink::Next(next) => url = next,
                PageLink::Delta(_) => break,
            }
        }
        let active: i64 =
            sqlx::query_scalar("SELECT count(*) FROM mirror_users WHERE tenant_id = $1 AND active")
                .bind(tenant_id.0)
                .fetch_one(&self.pool)
                .await?;
        if guard::empty_read(walk.users_read, active.max(0) as u64) {
            return Err(CoordinatorError::RunFailed(
                id.to_string(),
                format!(
                    "graph listed no user while {active} are active in Webex: a sync would stop \
                     here too (empty read); check the app's permissions"
                ),
            ));
        }
        while (walk.reported.len() as u32) < walk.published {
            walk.wait(&mut results, cancel).await?;
        }
        self.report_gone(tenant_id, id).await?;
        if tenant.scope.group_objects {
            self.report_groups(tenant_id, id, &tenant.scope.groups)
                .await?;
        }
        Ok(())
    }

    /// The page's users the scope holds, plus those leaving it; the ones leaving that Webex
    /// has active become report rows here (the workers never see them).
    async fn in_scope(
        &self,
        tenant: TenantId,
        id: RunId,
        users: Vec<SourceUser>,
    ) -> Result<Vec<SourceUser>, CoordinatorError> {
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        let in_scope: HashSet<String> = sqlx::query_scalar(
            "SELECT entra_id FROM dry_run_scope WHERE dry_run_id = $1 AND entra_id = ANY($2)",
        )
        .bind(id.0)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        // Joined from the keys: one primary-key probe each, whatever the statistics.
        let mirrored: HashSet<String> = sqlx::query_scalar(
            "SELECT m.entra_id FROM UNNEST($2::text[]) AS k(entra_id) \
             JOIN mirror_users m ON m.tenant_id = $1 AND m.entra_id = k.entra_id WHERE m.active",
        )
        .bind(tenant.0)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        let leaving: Vec<(&str, Option<&str>)> = users
            .iter()
            .filter(|u| {
                !in_scope.contains(&u.id)
                    && !u.is_room()
                    && !guard::deactivates(u)
                    && mirrored.contains(&u.id)
            })
            .map(|u| (u.id.as_str(), u.str_attr("displayName")))
            .collect();
        if !leaving.is_empty() {
            sqlx::query(
                "INSERT INTO dry_run_rows \
                   (dry_run_id, object_type, entra_id, action, azure_name, webex_name, reason) \
                 SELECT $1, 'user', l.id, 'Deactivate', l.name, \
                        coalesce(m.attributes->>'displayName', m.attributes->>'userName'), \
                        'not in the sync scope: the sync deactivates it' \
                 FROM UNNEST($3::text[], $4::text[]) AS l (id, name) \
                 JOIN mirror_users m ON m.tenant_id = $2 AND m.entra_id = l.id \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.0)
            .bind(tenant.0)
            .bind(leaving.iter().map(|l| l.0).collect::<Vec<_>>())
            .bind(leaving.iter().map(|l| l.1).collect::<Vec<_>>())
            .execute(&self.pool)
            .await?;
        }
        Ok(scope::filter_page(users, &in_scope, &mirrored).users)
    }

    /// Users active in Webex from this instance that the full walk did not meet: a sync's
    /// full enumeration deactivates them. A set difference, not `NOT EXISTS`: the rows were
    /// just written, and a planner without statistics for them goes quadratic.
    async fn report_gone(&self, tenant: TenantId, id: RunId) -> Result<(), CoordinatorError> {
        sqlx::query(
            "INSERT INTO dry_run_rows \
               (dry_run_id, object_type, entra_id, action, azure_name, webex_name, reason) \
             SELECT $1, 'user', m.entra_id, 'Deactivate', NULL, \
                    coalesce(m.attributes->>'displayName', m.attributes->>'userName'), \
                    'not found in Entra ID (deleted, or not readable by the app): the sync \
                     deactivates it' \
             FROM (SELECT entra_id FROM mirror_users WHERE tenant_id = $2 AND active \
                   EXCEPT SELECT entra_id FROM dry_run_rows \
                          WHERE dry_run_id = $1 AND object_type = 'user') gone \
             JOIN mirror_users m ON m.tenant_id = $2 AND m.entra_id = gone.entra_id \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(tenant.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The chosen groups ("sync group objects") against the Webex groups from this instance.
    /// Their members are not compared here: the sync does that group by group.
    async fn report_groups(
        &self,
        tenant: TenantId,
        id: RunId,
        chosen: &[String],
    ) -> Result<(), CoordinatorError> {
        sqlx::query(
            "INSERT INTO dry_run_rows \
               (dry_run_id, object_type, entra_id, action, azure_name, webex_name, reason) \
             SELECT $1, 'group', g.group_id, \
                    CASE WHEN g.deleted THEN 'Deactivate' WHEN mg.entra_id IS NULL THEN 'Add' \
                         WHEN mg.display_name IS DISTINCT FROM g.display_name THEN 'Update' \
                         ELSE 'Matched' END, \
                    g.display_name, mg.display_name, \
                    CASE WHEN g.deleted THEN 'deleted in Entra ID: the sync removes the Webex group' \
                         WHEN mg.entra_id IS NULL THEN 'not in Webex: the sync creates the group and adds its members' \
                         WHEN mg.display_name IS DISTINCT FROM g.display_name THEN 'name differs: the sync renames it and brings its members in step' \
                         ELSE 'in Webex under the same name: the sync brings its members in step' END \
             FROM groups g LEFT JOIN mirror_groups mg ON mg.tenant_id = g.tenant_id AND mg.entra_id = g.group_id \
             WHERE g.tenant_id = $2 AND g.group_id = ANY($3) \
               AND (NOT g.deleted OR mg.entra_id IS NOT NULL) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(tenant.0)
        .bind(chosen)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A dry run's batches: sent, and reported back by the workers.
struct Walk<'a> {
    store: &'a DryRunStore,
    id: RunId,
    reported: HashSet<u32>,
    published: u32,
    pages: u32,
    users_read: u64,
}

impl Walk<'_> {
    /// Waits for a result event, or re-reads PostgreSQL after a quiet spell (events can be
    /// missed, e.g. across a broker restart).
    async fn wait(
        &mut self,
        results: &mut RunResults,
        cancel: &CancellationToken,
    ) -> Result<(), CoordinatorError> {
        tokio::select! {
            _ = cancel.cancelled() => return Err(CoordinatorError::Cancelled),
            event = results.events.recv() => {
                if let Some(e) = event {
                    self.reported.insert(e.seq);
                    while let Ok(e) = results.events.try_recv() {
                        self.reported.insert(e.seq);
                    }
                    return Ok(());
                }
                tokio::time::sleep(POLL).await;
            }
            _ = tokio::time::sleep(POLL) => {}
        }
        let seqs: Vec<i32> =
            sqlx::query_scalar("SELECT seq FROM dry_run_batches WHERE dry_run_id = $1")
                .bind(self.id.0)
                .fetch_all(self.store.pool())
                .await?;
        self.reported.extend(seqs.into_iter().map(|s| s as u32));
        Ok(())
    }
}
