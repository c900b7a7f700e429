//! A simulated tenant's users with change tracking: versions, per-user change history and the
//! indexes that let delta pages be served without scanning the tenant.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::synthetic::{
    ChangeKind, ChangeReport, ChangeStep, GroupChangeStep, PropSet, SyntheticGroups,
    SyntheticTenant, TenantUser, UserState,
};

use super::SimUser;
use super::group_store::GroupStore;

/// One change to one user.
#[derive(Debug, Clone, Copy)]
struct Change {
    version: u64,
    /// Properties whose value changed.
    props: PropSet,
    /// Created, deleted or restored: surfaces whatever `$select` says.
    lifecycle: bool,
}

/// A user id as the number whose big-endian hex it is: for the lowercase hyphenated UUIDs of
/// synthetic tenants, numeric order is the ids' string order.
pub(crate) fn id_key(id: &str) -> Option<u128> {
    uuid::Uuid::try_parse(id).ok().map(|u| u.as_u128())
}

/// Cursor of a delta round: the last `(version, user index)` key looked at.
pub(crate) type RoundCursor = (u64, usize);

/// A page of users and, when more may follow, the cursor to continue from.
pub(crate) struct Page<'a, C> {
    pub items: Vec<PageItem<'a>>,
    pub next: Option<C>,
}

/// A user on a page and, for delta rounds, what changed since the round's base version.
pub(crate) struct PageItem<'a> {
    pub user: &'a TenantUser,
    /// Properties changed since the base version; `None` for a full representation (initial
    /// rounds, and users created or restored since the base).
    pub changed: Option<PropSet>,
    /// The user's index in the tenant (stable: users are never removed).
    pub index: usize,
}

pub(crate) struct TenantStore {
    tenant: SyntheticTenant,
    version: u64,
    /// Per user index, its changes in version order (empty: unchanged since generation).
    history: Vec<Vec<Change>>,
    /// All users (tombstones too) by id as a number ([`id_key`]), for the initial round's key
    /// cursor; numbers avoid a second copy of every id string.
    by_id: BTreeMap<u128, usize>,
    /// `(version of last change, user index)` for every user changed since generation.
    changed: BTreeSet<(u64, usize)>,
    /// The tenant's groups, versioned with the users.
    groups: GroupStore,
}

impl TenantStore {
    #[cfg(test)]
    pub(crate) fn new(tenant: SyntheticTenant) -> TenantStore {
        let groups = SyntheticGroups::empty(tenant.seed());
        TenantStore::with_groups(tenant, groups)
    }

    pub(crate) fn with_groups(tenant: SyntheticTenant, groups: SyntheticGroups) -> TenantStore {
        let by_id = tenant
            .users()
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((id_key(&u.user.id)?, i)))
            .collect();
        let history = vec![Vec::new(); tenant.users().len()];
        TenantStore {
            tenant,
            version: 0,
            history,
            by_id,
            changed: BTreeSet::new(),
            groups: GroupStore::new(groups),
        }
    }

    pub(crate) fn groups(&self) -> &GroupStore {
        &self.groups
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Indices of the room mailboxes in [`Self::users`].
    pub(crate) fn rooms(&self) -> &[usize] {
        self.tenant.rooms()
    }

    pub(crate) fn users(&self) -> &[TenantUser] {
        self.tenant.users()
    }

    pub(crate) fn snapshot(&self) -> Vec<SimUser> {
        self.tenant
            .users()
            .iter()
            .map(|u| SimUser {
                user: u.user.clone(),
                state: u.state,
            })
            .collect()
    }

    /// Applies the next change step as one new version.
    #[cfg(test)]
    pub(crate) fn apply(&mut self, step: &ChangeStep) -> ChangeReport {
        self.apply_step(step, &GroupChangeStep::default())
    }

    /// Applies the next change step, users then groups, as one new version (none when nothing
    /// changed). Users hard-deleted by the step leave their groups.
    pub(crate) fn apply_step(
        &mut self,
        step: &ChangeStep,
        groups: &GroupChangeStep,
    ) -> ChangeReport {
        let applied = self.tenant.apply(step);
        let mut report = applied.report;
        let gone = report.hard_deleted_ids.clone();
        let events = self
            .groups
            .apply(groups, self.tenant.users(), &gone, &mut report);
        if applied.touched.is_empty() && events.is_empty() {
            return report;
        }
        self.version += 1;
        let version = self.version;
        for touch in &applied.touched {
            let index = touch.index;
            if index >= self.history.len() {
                self.history.resize_with(index + 1, Vec::new);
                if let Some(key) = id_key(&self.tenant.users()[index].user.id) {
                    self.by_id.insert(key, index);
                }
            }
            if let Some(last) = self.history[index].last() {
                self.changed.remove(&(last.version, index));
            }
            let lifecycle = !matches!(touch.kind, ChangeKind::Update | ChangeKind::Disable);
            self.history[index].push(Change {
                version,
                props: touch.props,
                lifecycle,
            });
            self.changed.insert((version, index));
        }
        self.groups.record(version, &events);
        report
    }

    /// One membership change as a version of its own (see `GraphSim::set_membership`).
    pub(crate) fn set_membership(
        &mut self,
        group_id: &str,
        member: crate::synthetic::MemberRef,
        present: bool,
    ) -> bool {
        let Some(event) = self.groups.set_membership(group_id, member, present) else {
            return false;
        };
        self.version += 1;
        self.groups.record(self.version, &[event]);
        true
    }

    /// Up to `limit` users with id after `after`, in id order: live users, plus tombstones when
    /// `tombstones` is set.
    pub(crate) fn initial_page(
        &self,
        after: Option<u128>,
        limit: usize,
        tombstones: bool,
    ) -> Page<'_, u128> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut range = self.by_id.range((lower, Bound::Unbounded));
        let mut items = Vec::new();
        let mut last = None;
        while items.len() < limit {
            let Some((id, &index)) = range.next() else {
                break;
            };
            last = Some(*id);
            let user = &self.tenant.users()[index];
            if tombstones || user.state == UserState::Live {
                items.push(PageItem {
                    user,
                    changed: None,
                    index,
                });
            }
        }
        let more = range.next().is_some();
        Page {
            items,
            next: last.filter(|_| more),
        }
    }

    /// The user with `id` as an initial-round item: live users, plus tombstones when
    /// `tombstones` is set; `None` for unknown ids.
    pub(crate) fn initial_item(&self, id: &str, tombstones: bool) -> Option<PageItem<'_>> {
        let index = *self.by_id.get(&id_key(id)?)?;
        let user = &self.tenant.users()[index];
        (tombstones || user.state == UserState::Live).then_some(PageItem {
            user,
            changed: None,
            index,
        })
    }

    /// User `index` as a page item again (a replay), in its current state: for a delta round
    /// from `base` with what changed since, for an initial round (`None`) in full.
    pub(crate) fn replay_item(&self, index: usize, base: Option<u64>) -> Option<PageItem<'_>> {
        let user = self.tenant.users().get(index)?;
        let changed = base.and_then(|base| {
            let (props, lifecycle) = self.changes_since(index, base);
            (user.state == UserState::Live && !lifecycle).then_some(props)
        });
        Some(PageItem {
            user,
            changed,
            index,
        })
    }

    /// Up to `limit` users changed after version `base` and at most `upto`, continuing after
    /// `after`. Live users whose changes since `base` touch nothing in `select` are skipped, as
    /// Graph tracks only selected properties.
    pub(crate) fn round_page(
        &self,
        base: u64,
        upto: u64,
        after: Option<RoundCursor>,
        limit: usize,
        select: PropSet,
    ) -> Page<'_, RoundCursor> {
        let end = (upto, usize::MAX);
        let lower = match after {
            Some(cursor) => Bound::Excluded(cursor),
            None => Bound::Included((base.saturating_add(1), 0)),
        };
        // `BTreeSet::range` panics on an inverted range: an unchanged round, or a forged cursor.
        if matches!(lower, Bound::Excluded(start) | Bound::Included(start) if start > end) {
            return Page {
                items: Vec::new(),
                next: None,
            };
        }
        let mut range = self.changed.range((lower, Bound::Included(end)));
        let mut items = Vec::new();
        let mut last = None;
        while items.len() < limit {
            let Some(&key) = range.next() else { break };
            last = Some(key);
            let user = &self.tenant.users()[key.1];
            let (props, lifecycle) = self.changes_since(key.1, base);
            if user.state != UserState::Live || lifecycle {
                items.push(PageItem {
                    user,
                    changed: None,
                    index: key.1,
                });
            } else if props.intersects(select) {
                items.push(PageItem {
                    user,
                    changed: Some(props),
                    index: key.1,
                });
            }
        }
        let more = range.next().is_some();
        Page {
            items,
            next: last.filter(|_| more),
        }
    }

    /// What changed for user `index` after version `base`: properties, and whether the user was
    /// created, deleted or restored.
    fn changes_since(&self, index: usize, base: u64) -> (PropSet, bool) {
        self.history[index]
            .iter()
            .rev()
            .take_while(|c| c.version > base)
            .fold((PropSet::EMPTY, false), |(props, lifecycle), c| {
                (props.union(c.props), lifecycle || c.lifecycle)
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::synthetic::{Prop, UserState};

    fn store(users: usize) -> TenantStore {
        TenantStore::new(SyntheticTenant::new(21, users, "contoso.example"))
    }

    fn ids<C>(page: &Page<'_, C>) -> Vec<String> {
        page.items.iter().map(|i| i.user.user.id.clone()).collect()
    }

    fn drain_initial(store: &TenantStore, limit: usize, tombstones: bool) -> (Vec<String>, usize) {
        let (mut all, mut pages, mut after) = (Vec::new(), 0, None);
        loop {
            let page = store.initial_page(after, limit, tombstones);
            pages += 1;
            assert!(page.items.len() <= limit);
            all.extend(ids(&page));
            match page.next {
                Some(next) => after = Some(next),
                None => return (all, pages),
            }
        }
    }

    fn drain_round(store: &TenantStore, base: u64, limit: usize, select: PropSet) -> Vec<String> {
        let (mut all, mut after) = (Vec::new(), None);
        loop {
            let page = store.round_page(base, store.version(), after, limit, select);
            all.extend(ids(&page));
            match page.next {
                Some(next) => after = Some(next),
                None => return all,
            }
        }
    }

    #[test]
    fn initial_round_lists_each_live_user_once_in_id_order() {
        // (users, page size, with tombstones)
        for (users, limit, tombstones) in [
            (0, 10, false),
            (1, 10, false),
            (999, 100, false),
            (1_000, 7, true),
        ] {
            let store = store(users);
            let (listed, pages) = drain_initial(&store, limit, tombstones);
            let mut expected: Vec<String> = store
                .snapshot()
                .into_iter()
                .filter(|u| tombstones || u.state == UserState::Live)
                .map(|u| u.user.id)
                .collect();
            expected.sort();
            assert_eq!(listed, expected, "{users} users, page {limit}");
            assert!(pages <= users / limit + 2, "{pages} pages");
        }
    }

    #[test]
    fn rounds_return_exactly_the_changed_users() {
        let mut store = store(2_000);
        let base = store.version();
        let report = store.apply(&ChangeStep {
            updates: 40,
            soft_deletes: 5,
            hard_deletes: 5,
            new_users: 5,
            restores: 3,
            disables: 4,
        });
        let expected: HashSet<String> = [
            &report.updated_ids,
            &report.soft_deleted_ids,
            &report.hard_deleted_ids,
            &report.new_ids,
            &report.restored_ids,
            &report.disabled_ids,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        // Everything selected: an update may touch only `manager`, which the default selection
        // does not track.
        let listed = drain_round(&store, base, 9, PropSet::all());
        assert_eq!(listed.len(), expected.len(), "duplicates or missing");
        assert_eq!(listed.into_iter().collect::<HashSet<_>>(), expected);
        assert!(drain_round(&store, store.version(), 9, PropSet::all()).is_empty());
    }

    #[test]
    fn empty_and_inverted_ranges_are_empty_pages() {
        let mut store = store(100);
        store.apply(&ChangeStep {
            updates: 5,
            ..ChangeStep::default()
        });
        let v = store.version();
        // (base, upto, cursor)
        let cases = [
            (v, v, None),
            (v + 3, v, None),
            (0, v, Some((v + 1, 0))),
            (0, v, Some((v, usize::MAX))),
        ];
        for (base, upto, after) in cases {
            let page = store.round_page(base, upto, after, 10, PropSet::all());
            assert!(
                page.items.is_empty() && page.next.is_none(),
                "{base} {upto} {after:?}"
            );
        }
    }

    #[test]
    fn changes_to_unselected_properties_do_not_surface() {
        let mut store = store(500);
        let base = store.version();
        let report = store.apply(&ChangeStep {
            disables: 10,
            ..ChangeStep::default()
        });
        assert_eq!(report.disables, 10);
        // (selection, users expected)
        let cases = [
            (PropSet::default_selection(), 10),
            ([Prop::AccountEnabled].into_iter().collect(), 10),
            ([Prop::DisplayName, Prop::Mail].into_iter().collect(), 0),
            (PropSet::EMPTY, 0),
        ];
        for (select, expected) in cases {
            assert_eq!(
                drain_round(&store, base, 3, select).len(),
                expected,
                "{select:?}"
            );
        }
    }

    #[test]
    fn a_round_ignores_changes_made_after_it_started() {
        let mut store = store(300);
        let base = store.version();
        store.apply(&ChangeStep {
            updates: 30,
            ..ChangeStep::default()
        });
        let upto = store.version();
        let first = store.round_page(base, upto, None, 10, PropSet::all());
        let cursor = first.next.expect("more pages");
        let mut seen: Vec<String> = ids(&first);
        // Everyone already listed changes again, and new users arrive, mid-round.
        let again = store.apply(&ChangeStep {
            updates: 300,
            new_users: 10,
            ..ChangeStep::default()
        });
        let mut after = Some(cursor);
        while let Some(cursor) = after {
            let page = store.round_page(base, upto, Some(cursor), 10, PropSet::all());
            seen.extend(ids(&page));
            after = page.next;
        }
        assert_eq!(
            seen.len(),
            seen.iter().collect::<HashSet<_>>().len(),
            "duplicate within a round"
        );
        assert!(seen.len() <= 30);
        // The next round (from `upto`) holds everything changed since.
        assert_eq!(
            drain_round(&store, upto, 50, PropSet::all()).len(),
            again.updates + again.new_users
        );
    }
}
