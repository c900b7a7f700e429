//! A simulated tenant's groups with change tracking, and the pages of `groups/delta` built from
//! them: whole groups or `members@delta` slices.
//!
//! Each group remembers when it was created and deleted and every membership event with its
//! version, so a round can compute what a group looked like at the version the round started
//! (`upto`) and the net membership change since its base. Slicing a member list across pages is
//! only sound when the list does not move between pages; computing it "as of `upto`" makes it
//! immune to changes applied mid-round.
//!
//! Paging rule: a page holds at most `page_size` groups and at most [`MEMBER_SLICE`] (500)
//! `members@delta` entries in total. A group whose remaining members do not fit gets the slice
//! that fits, and the next page starts with the same group again (all selected properties
//! repeated) and the next slice. A page never ends before the first group on it has had at least
//! one member entry, so every page makes progress.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use crate::synthetic::{
    ChangeReport, GroupChangeStep, GroupEvent, MemberRef, SyntheticGroups, TenantGroup, TenantUser,
    UserState,
};

use super::store::id_key;

/// A group as the simulator holds it now: direct members (users and child groups) and its
/// lifecycle state (deleted groups stay as tombstones with their last members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimGroup {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub security_enabled: bool,
    /// In member order (users before groups, then by id).
    pub members: Vec<MemberRef>,
    pub state: UserState,
}

impl From<&TenantGroup> for SimGroup {
    fn from(g: &TenantGroup) -> SimGroup {
        SimGroup {
            id: g.group.id.clone(),
            display_name: g.group.display_name.clone(),
            description: g.group.description.clone(),
            mail_nickname: g.group.mail_nickname.clone(),
            security_enabled: g.group.security_enabled,
            members: g.members.iter().cloned().collect(),
            state: g.state,
        }
    }
}

/// Most `members@delta` entries on one page (graph.md §1.6: 500 for directory link objects).
pub(crate) const MEMBER_SLICE: usize = 500;

/// Where the next page of an initial round starts: a group id key (inclusive) and the offset in
/// that group's member list.
pub(crate) type InitialCursor = (u128, usize);

/// Where the next page of a delta round starts: a `(version, group index)` key (inclusive) and
/// the offset in that group's membership changes.
pub(crate) type RoundCursor = ((u64, usize), usize);

/// A group on a page.
pub(crate) struct GroupItem<'a> {
    pub group: &'a TenantGroup,
    /// `Some(reason)`: a deleted group (`changed` or `deleted`).
    pub removed: Option<&'static str>,
    /// This page's slice of `members@delta`: each member and whether it was removed.
    pub members: Vec<(MemberRef, bool)>,
    /// Only the membership changed (a `Prefer: return=minimal` round sends just that).
    pub membership_only: bool,
}

pub(crate) struct GroupPage<'a, C> {
    pub items: Vec<GroupItem<'a>>,
    pub next: Option<C>,
}

/// A group's change history.
#[derive(Debug, Clone, Default)]
struct History {
    /// 0 for generated groups.
    created: u64,
    deleted: Option<u64>,
    /// Versions with a change, ascending, without repeats.
    versions: Vec<u64>,
    /// Membership events in order: (version, member, added).
    events: Vec<(u64, MemberRef, bool)>,
}

impl History {
    fn live_at(&self, version: u64) -> bool {
        self.created <= version && self.deleted.is_none_or(|d| d > version)
    }

    /// The first version with a change after `base`.
    fn first_change_after(&self, base: u64) -> Option<u64> {
        let at = self.versions.partition_point(|&v| v <= base);
        self.versions.get(at).copied()
    }
}

/// A candidate for a page: the group with its whole member list for this round.
struct Candidate<'a> {
    group: &'a TenantGroup,
    removed: Option<&'static str>,
    members: Vec<(MemberRef, bool)>,
    membership_only: bool,
}

pub(crate) struct GroupStore {
    groups: SyntheticGroups,
    history: Vec<History>,
    /// All groups (tombstones too) by id as a number, for the initial round's cursor.
    by_id: BTreeMap<u128, usize>,
    /// Every `(version, group index)` at which a group changed. A group appears once per
    /// version, and a round lists it at the first of its versions in the round.
    changed: BTreeSet<(u64, usize)>,
}

impl GroupStore {
    pub(crate) fn new(groups: SyntheticGroups) -> GroupStore {
        let by_id = groups
            .groups()
            .iter()
            .enumerate()
            .filter_map(|(i, g)| Some((id_key(&g.group.id)?, i)))
            .collect();
        let history = vec![History::default(); groups.groups().len()];
        GroupStore {
            groups,
            history,
            by_id,
            changed: BTreeSet::new(),
        }
    }

    pub(crate) fn groups(&self) -> &[TenantGroup] {
        self.groups.groups()
    }

    pub(crate) fn snapshot(&self) -> Vec<SimGroup> {
        self.groups().iter().map(SimGroup::from).collect()
    }

    /// Applies a group step (after the users' part, which hard-deleted `gone_users`); the
    /// events are recorded by [`GroupStore::record`] once the step's version is known.
    pub(crate) fn apply(
        &mut self,
        step: &GroupChangeStep,
        users: &[TenantUser],
        gone_users: &[String],
        report: &mut ChangeReport,
    ) -> Vec<GroupEvent> {
        self.groups.apply(step, users, gone_users, report)
    }

    /// See [`SyntheticGroups::set_membership`]; the event is recorded by the caller.
    pub(crate) fn set_membership(
        &mut self,
        group_id: &str,
        member: MemberRef,
        present: bool,
    ) -> Option<GroupEvent> {
        self.groups.set_membership(group_id, member, present)
    }

    pub(crate) fn record(&mut self, version: u64, events: &[GroupEvent]) {
        for event in events {
            let index = match event {
                GroupEvent::Created { group } => {
                    if *group >= self.history.len() {
                        self.history.resize_with(group + 1, History::default);
                    }
                    self.history[*group].created = version;
                    if let Some(key) = self.groups().get(*group).and_then(|g| id_key(&g.group.id)) {
                        self.by_id.insert(key, *group);
                    }
                    *group
                }
                GroupEvent::Deleted { group, .. } => {
                    self.history[*group].deleted = Some(version);
                    *group
                }
                GroupEvent::Added { group, member } => {
                    self.history[*group]
                        .events
                        .push((version, member.clone(), true));
                    *group
                }
                GroupEvent::Removed { group, member } => {
                    self.history[*group]
                        .events
                        .push((version, member.clone(), false));
                    *group
                }
            };
            let versions = &mut self.history[index].versions;
            if versions.last() != Some(&version) {
                versions.push(version);
            }
            self.changed.insert((version, index));
        }
    }

    /// Group `index`'s members as of `version`, in member order.
    fn members_at(&self, index: usize, version: u64) -> Vec<MemberRef> {
        let mut members = self.groups()[index].members.clone();
        for (_, member, added) in self.history[index]
            .events
            .iter()
            .rev()
            .take_while(|e| e.0 > version)
        {
            if *added {
                members.remove(member);
            } else {
                members.insert(member.clone());
            }
        }
        members.into_iter().collect()
    }

    /// The net membership change of group `index` after `base` up to `upto`: (member, removed),
    /// in member order. An add undone by a removal (or the reverse) is no change.
    fn membership_diff(&self, index: usize, base: u64, upto: u64) -> Vec<(MemberRef, bool)> {
        let mut net: BTreeMap<&MemberRef, (bool, bool)> = BTreeMap::new();
        for (version, member, added) in &self.history[index].events {
            if *version > base && *version <= upto {
                net.entry(member).or_insert((*added, *added)).1 = *added;
            }
        }
        net.into_iter()
            .filter(|(_, (first, last))| first == last)
            .map(|(member, (_, added))| (member.clone(), !added))
            .collect()
    }

    /// A page of an initial round: groups live at `upto`, in id order, with their members as
    /// of `upto`.
    pub(crate) fn initial_page(
        &self,
        upto: u64,
        from: Option<InitialCursor>,
        page_size: usize,
        members: bool,
    ) -> GroupPage<'_, InitialCursor> {
        let (start, offset) = from.map_or((Bound::Unbounded, 0), |(key, offset)| {
            (Bound::Included(key), offset)
        });
        let candidates = self
            .by_id
            .range((start, Bound::Unbounded))
            .map(|(&key, &index)| {
                let candidate = self.history[index].live_at(upto).then(|| Candidate {
                    group: &self.groups()[index],
                    removed: None,
                    members: if members {
                        self.members_at(index, upto)
                            .into_iter()
                            .map(|m| (m, false))
                            .collect()
                    } else {
                        Vec::new()
                    },
                    membership_only: false,
                });
                (key, candidate)
            });
        fill(candidates, offset, page_size)
    }

    /// A page of a delta round from `base` to `upto`: groups created, deleted or (when
    /// `members` is selected) with a net membership change, each at the first version at which
    /// it changed in the round.
    pub(crate) fn round_page(
        &self,
        base: u64,
        upto: u64,
        from: Option<RoundCursor>,
        page_size: usize,
        members: bool,
    ) -> GroupPage<'_, RoundCursor> {
        let end = (upto, usize::MAX);
        let (start, offset) = match from {
            Some((key, offset)) => (key, offset),
            None => ((base.saturating_add(1), 0), 0),
        };
        if start > end {
            return GroupPage {
                items: Vec::new(),
                next: None,
            };
        }
        let candidates = self
            .changed
            .range((Bound::Included(start), Bound::Included(end)))
            .map(|&(version, index)| {
                let history = &self.history[index];
                let candidate = if history.first_change_after(base) != Some(version) {
                    None
                } else {
                    self.round_candidate(index, base, upto, members)
                };
                ((version, index), candidate)
            });
        fill(candidates, offset, page_size)
    }

    fn round_candidate(
        &self,
        index: usize,
        base: u64,
        upto: u64,
        members: bool,
    ) -> Option<Candidate<'_>> {
        let history = &self.history[index];
        let group = &self.groups()[index];
        if history.deleted.is_some_and(|d| d > base && d <= upto) {
            let reason = if group.state == UserState::HardDeleted {
                "deleted"
            } else {
                "changed"
            };
            return Some(Candidate {
                group,
                removed: Some(reason),
                members: Vec::new(),
                membership_only: false,
            });
        }
        if !history.live_at(upto) {
            return None;
        }
        if history.created > base {
            let members = if members {
                self.members_at(index, upto)
                    .into_iter()
                    .map(|m| (m, false))
                    .collect()
            } else {
                Vec::new()
            };
            return Some(Candidate {
                group,
                removed: None,
                members,
                membership_only: false,
            });
        }
        // Groups change only in membership: unselected, or netted out, there is nothing to say.
        if !members {
            return None;
        }
        let diff = self.membership_diff(index, base, upto);
        (!diff.is_empty()).then_some(Candidate {
            group,
            removed: None,
            members: diff,
            membership_only: true,
        })
    }
}

/// Cuts a page from `candidates` (`None`: a key that yields no group), starting `offset` into
/// the first one's member list; see the module doc for the rule.
fn fill<'a, K: Copy>(
    candidates: impl Iterator<Item = (K, Option<Candidate<'a>>)>,
    mut offset: usize,
    page_size: usize,
) -> GroupPage<'a, (K, usize)> {
    let mut items = Vec::new();
    let mut used = 0;
    for (key, candidate) in candidates {
        let Some(candidate) = candidate else {
            offset = 0;
            continue;
        };
        let full = items.len() >= page_size.max(1)
            || (used >= MEMBER_SLICE && candidate.members.len() > offset);
        if full {
            return GroupPage {
                items,
                next: Some((key, offset)),
            };
        }
        let start = offset.min(candidate.members.len());
        let take = (candidate.members.len() - start).min(MEMBER_SLICE - used);
        used += take;
        let rest = start + take < candidate.members.len();
        items.push(GroupItem {
            group: candidate.group,
            removed: candidate.removed,
            members: candidate.members[start..start + take].to_vec(),
            membership_only: candidate.membership_only,
        });
        if rest {
            return GroupPage {
                items,
                next: Some((key, start + take)),
            };
        }
        offset = 0;
    }
    GroupPage { items, next: None }
}

#[cfg(test)]
#[path = "group_store_tests.rs"]
mod tests;
