//! The scope steps of a run, before its users walk: the `groups/delta` round, and the
//! targeted reads of users who entered the scope through membership alone (or whose retry
//! from escrow is due).

use std::collections::HashSet;

use tokio_util::sync::CancellationToken;

use dirsync_proto::{RunId, SourceUser};

use super::tracker::{Outbox, Tracker};
use crate::graph::client::MAX_FILTER_IDS;
use crate::graph::groups::GroupsDelta;
use crate::graph::rooms::mark_rooms;
use crate::graph::{DeltaPage, GraphClient, PageLink};
use crate::guard::USERS_PER_BATCH;
use crate::reconcile::Deactivations;
use crate::runs::{RunKind, mark_entering};
use crate::scope_store::{GroupsRound, ScopeStore};
use crate::{CoordinatorError, Tenant};

/// Walks `groups/delta` from the tenant's groups deltaLink (or from scratch) to its end,
/// folding every page. A round told its state is gone starts over as a full round, once.
#[tracing::instrument(name = "groups_round", skip_all)]
pub(super) async fn groups_round(
    graph: &GraphClient,
    tenant: &Tenant,
    cancel: &CancellationToken,
) -> Result<GroupsRound, CoordinatorError> {
    let mut full = tenant.groups_delta_link.is_none();
    let mut url = tenant
        .groups_delta_link
        .clone()
        .unwrap_or_else(|| graph.initial_groups_url());
    let mut delta = GroupsDelta::new();
    let mut resynced = false;
    let mut pages = 0u32;
    loop {
        let fetched = tokio::select! {
            page = graph.groups_page(&url) => page,
            _ = cancel.cancelled() => return Err(CoordinatorError::Cancelled),
        };
        match fetched {
            Ok(page) => {
                pages += 1;
                match delta.apply(page) {
                    PageLink::Next(next) => url = next,
                    PageLink::Delta(delta_link) => {
                        tracing::info!(
                            pages,
                            groups = delta.len(),
                            full,
                            ignored_members = delta.ignored_members(),
                            "groups round read"
                        );
                        return Ok(GroupsRound {
                            delta,
                            full,
                            delta_link,
                        });
                    }
                }
            }
            Err(CoordinatorError::ResyncRequired(why)) if !resynced => {
                tracing::warn!(reason = %why, "groups delta state gone, full groups round");
                resynced = true;
                full = true;
                delta = GroupsDelta::new();
                url = graph.initial_groups_url();
            }
            Err(e) => return Err(e),
        }
    }
}

/// Everything the entering step needs from its run.
pub(super) struct Entering<'a> {
    pub graph: &'a GraphClient,
    pub scopes: &'a ScopeStore,
    pub deactivations: &'a Deactivations,
    pub run: RunId,
    pub kind: RunKind,
    /// Where the users walk starts: the cursor kept while these batches go out.
    pub cursor: &'a str,
    /// Names this walk in the keys of diverted entries.
    pub walk: i32,
    /// Email addresses of the tenant's rooms, when it syncs them.
    pub rooms: &'a HashSet<String>,
}

impl Entering<'_> {
    /// Reads the users entering the scope that are not published yet, 50 per request, and
    /// sends them as batches (their deactivating entries are diverted like a page's).
    /// Returns how many users were sent.
    pub(super) async fn send(
        &self,
        outbox: &mut Outbox,
        tracker: &mut Tracker,
        diverted: &mut HashSet<String>,
        cancel: &CancellationToken,
    ) -> Result<u64, CoordinatorError> {
        let pending = self.scopes.pending_entering(self.run).await?;
        if !pending.is_empty() {
            tracing::info!(users = pending.len(), "reading users entering the scope");
        }
        let mut sent = 0;
        for chunk in pending.chunks(USERS_PER_BATCH) {
            let mut users = Vec::with_capacity(chunk.len());
            for ids in chunk.chunks(MAX_FILTER_IDS) {
                users.extend(self.read(ids, cancel).await?);
            }
            mark_rooms(&mut users, self.rooms);
            let page = DeltaPage {
                users,
                link: PageLink::Next(self.cursor.to_string()),
            };
            let key = format!("entering:{}", chunk[0]);
            let page = self
                .deactivations
                .divert_page(self.run, self.walk, &key, page, diverted)
                .await?;
            if page.users.is_empty() {
                // Nobody to push now (disabled, or gone from Entra meanwhile).
                mark_entering(self.scopes.pool(), self.run, chunk, -1).await?;
                continue;
            }
            sent += page.users.len() as u64;
            outbox
                .send(tracker, self.kind, page.users, self.cursor, chunk, cancel)
                .await?;
        }
        Ok(sent)
    }

    /// One targeted read, following its nextLinks to the end.
    async fn read(
        &self,
        ids: &[String],
        cancel: &CancellationToken,
    ) -> Result<Vec<SourceUser>, CoordinatorError> {
        let mut url = self.graph.users_by_id_url(ids)?;
        let mut users = Vec::with_capacity(ids.len());
        loop {
            let page = tokio::select! {
                page = self.graph.users_page(&url) => page?,
                _ = cancel.cancelled() => return Err(CoordinatorError::Cancelled),
            };
            users.extend(page.users);
            match page.link {
                PageLink::Next(next) => url = next,
                PageLink::Delta(_) => return Ok(users),
            }
        }
    }
}
