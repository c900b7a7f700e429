//! Synthetic groups of a tenant: generated deterministically from the tenant seed and its users,
//! and the group change steps (groups created and deleted, members added and removed).
//!
//! Group `i`'s properties depend only on `(seed, i)`; its members also on the tenant's users, so
//! the same tenant spec always gives the same groups. Group 0 is the "all staff" group, large
//! enough (up to ~1,200 members) that a `members@delta` list needs several slices of 500. With
//! `nesting_depth > 0` groups also hold child groups, always from a deeper level, so nesting is
//! acyclic and at most `nesting_depth` deep. Every 12th group is empty, about 8% of the others
//! have 501 to 1,100 members, the rest 1 to 50 (all capped by `max_members` and the live users).
//!
//! Lifecycle: Microsoft 365 groups (`securityEnabled: false`) are soft-deleted (Graph:
//! `@removed: changed`), security groups hard-deleted (`deleted`). A deleted group leaves the
//! groups it was a member of, and so does a hard-deleted user (Graph reports both as a member
//! removal); a soft-deleted user keeps its memberships.

use std::collections::{BTreeSet, HashSet};

use fastrand::Rng;
use serde::{Deserialize, Serialize};

use super::changes::{ChangeReport, TenantUser, UserState, choose};
use super::mix;
use super::names::DEPARTMENTS;

/// The groups a tenant is generated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSpec {
    /// Groups generated at start.
    pub count: usize,
    /// Most members (users and child groups) one generated group has.
    pub max_members: usize,
    /// Levels of group nesting below a top-level group (0: groups hold only users).
    pub nesting_depth: usize,
}

impl Default for GroupSpec {
    /// No groups.
    fn default() -> Self {
        GroupSpec {
            count: 0,
            max_members: 2_000,
            nesting_depth: 0,
        }
    }
}

/// How many group changes to apply in one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct GroupChangeStep {
    /// Users added to live groups (one membership each).
    #[arg(long, default_value_t = 0)]
    pub members_added: usize,
    /// Members (users or child groups) removed from live groups.
    #[arg(long, default_value_t = 0)]
    pub members_removed: usize,
    /// Groups created, each with a few users.
    #[arg(long, default_value_t = 0)]
    pub groups_created: usize,
    /// Live groups deleted (soft or hard by kind, see the module doc).
    #[arg(long, default_value_t = 0)]
    pub groups_deleted: usize,
}

/// What a group member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    /// `@odata.type` of a `members@delta` entry.
    pub fn odata_type(self) -> &'static str {
        match self {
            MemberKind::User => "#microsoft.graph.user",
            MemberKind::Group => "#microsoft.graph.group",
        }
    }
}

/// A member of a group: a user or a group, by object id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberRef {
    pub kind: MemberKind,
    pub id: String,
}

impl MemberRef {
    pub fn user(id: impl Into<String>) -> MemberRef {
        MemberRef {
            kind: MemberKind::User,
            id: id.into(),
        }
    }

    pub fn group(id: impl Into<String>) -> MemberRef {
        MemberRef {
            kind: MemberKind::Group,
            id: id.into(),
        }
    }
}

/// One membership a step added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub group_id: String,
    pub member: MemberRef,
}

/// A group's properties as Graph holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraGroup {
    pub id: String,
    pub display_name: String,
    /// `None`: never set (omitted on the wire).
    pub description: Option<String>,
    pub mail_nickname: String,
    pub security_enabled: bool,
}

/// A group of a synthetic tenant: properties, current direct members and lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantGroup {
    pub group: EntraGroup,
    pub members: BTreeSet<MemberRef>,
    pub state: UserState,
}

/// One change a step made to one group, in the order they happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    Created { group: usize },
    Deleted { group: usize, hard: bool },
    Added { group: usize, member: MemberRef },
    Removed { group: usize, member: MemberRef },
}

/// A tenant's groups in generation order; deleted ones stay as tombstones.
#[derive(Debug, Clone)]
pub struct SyntheticGroups {
    seed: u64,
    groups: Vec<TenantGroup>,
    steps: u64,
}

const GROUP_ID_SALT: u64 = 0x6A0B_5EED_0000_0001;
const GROUP_SALT: u64 = 0x6A0B_5EED_0000_0002;
const GROUP_STEP_SALT: u64 = 0x6A0B_5EED_0000_0003;
/// The all-staff group's target size: more than two `members@delta` slices.
const LARGE_GROUP: usize = 1_200;
/// Tries to find a fitting (group, member) pair before a step gives up on one change.
const ATTEMPTS: usize = 32;

const KINDS: &[&str] = &[
    "Team",
    "All",
    "Leads",
    "Projekt Ærø",
    "Équipe",
    "Guild",
    "On-call",
    "Chapter",
];

/// The object id of group `index` of the tenant generated from `seed`.
pub fn group_id(seed: u64, index: usize) -> String {
    let mut rng = Rng::with_seed(mix(seed ^ GROUP_ID_SALT, index as u64));
    uuid::Builder::from_random_bytes(rng.u128(..).to_be_bytes())
        .into_uuid()
        .to_string()
}

/// The properties of group `index` (members aside).
fn generate_group(seed: u64, index: usize) -> EntraGroup {
    let mut rng = Rng::with_seed(mix(seed ^ GROUP_SALT, index as u64));
    let (display_name, nickname) = if index == 0 {
        ("All Staff".to_owned(), "allstaff".to_owned())
    } else {
        let department = DEPARTMENTS[rng.usize(0..DEPARTMENTS.len())];
        let kind = KINDS[rng.usize(0..KINDS.len())];
        let slug: String = format!("{department}{kind}")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        (format!("{department} {kind} {index}"), slug)
    };
    let security_enabled = rng.u32(0..100) < 60;
    let description = (rng.u32(0..100) < 80).then(|| format!("{display_name} (synthetic)"));
    EntraGroup {
        id: group_id(seed, index),
        display_name,
        description,
        mail_nickname: format!("{nickname}{index}"),
        security_enabled,
    }
}

impl SyntheticGroups {
    /// No groups.
    pub fn empty(seed: u64) -> SyntheticGroups {
        SyntheticGroups {
            seed,
            groups: Vec::new(),
            steps: 0,
        }
    }

    /// Generates `spec.count` groups whose user members are drawn from the live `users`.
    pub fn new(seed: u64, spec: &GroupSpec, users: &[TenantUser]) -> SyntheticGroups {
        let live: Vec<usize> = (0..users.len())
            .filter(|&i| users[i].state == UserState::Live)
            .collect();
        let ids: Vec<String> = (0..spec.count).map(|i| group_id(seed, i)).collect();
        let depth = spec.nesting_depth;
        let level = |i: usize| if depth == 0 { 0 } else { i % (depth + 1) };
        let mut groups = Vec::with_capacity(spec.count);
        for index in 0..spec.count {
            let mut rng = Rng::with_seed(mix(seed ^ GROUP_SALT, !(index as u64)));
            let mut members = BTreeSet::new();
            // Every 12th group has no members at all (Graph then omits `members@delta`).
            let empty = index % 12 == 11;
            if depth > 0 && level(index) < depth && !empty {
                let children: Vec<usize> = (0..spec.count)
                    .filter(|&j| level(j) == level(index) + 1)
                    .collect();
                let wanted = rng.usize(1..=2).min(spec.max_members);
                for child in choose(&mut rng, children, wanted) {
                    members.insert(MemberRef::group(ids[child].clone()));
                }
            }
            let room = spec.max_members.saturating_sub(members.len());
            let roll = rng.u32(0..100);
            let size = if index == 0 {
                LARGE_GROUP
            } else if empty {
                0
            } else if roll < 8 {
                rng.usize(501..=1_100)
            } else {
                rng.usize(1..=50)
            };
            let size = size.min(room).min(live.len());
            for user in choose(&mut rng, live.clone(), size) {
                members.insert(MemberRef::user(users[user].user.id.clone()));
            }
            groups.push(TenantGroup {
                group: generate_group(seed, index),
                members,
                state: UserState::Live,
            });
        }
        SyntheticGroups {
            seed,
            groups,
            steps: 0,
        }
    }

    /// The given groups, in this order (hand-written tenants of the load harness); later
    /// steps draw from `seed`.
    pub fn from_groups(seed: u64, groups: Vec<TenantGroup>) -> SyntheticGroups {
        SyntheticGroups {
            seed,
            groups,
            steps: 0,
        }
    }

    /// Every group ever generated, tombstones included, in generation order.
    pub fn groups(&self) -> &[TenantGroup] {
        &self.groups
    }

    /// Adds (`present`) or removes one member of the live group `group_id`; the event, or
    /// `None` when the group is unknown or deleted or the membership is already so.
    pub fn set_membership(
        &mut self,
        group_id: &str,
        member: MemberRef,
        present: bool,
    ) -> Option<GroupEvent> {
        let group = self
            .groups
            .iter()
            .position(|g| g.group.id == group_id && g.state == UserState::Live)?;
        let members = &mut self.groups[group].members;
        if present {
            members
                .insert(member.clone())
                .then_some(GroupEvent::Added { group, member })
        } else {
            members
                .remove(&member)
                .then_some(GroupEvent::Removed { group, member })
        }
    }

    /// Applies the next group step after the users' part of the same step, which hard-deleted
    /// the users `gone_users` (ids): they leave every group first. Then, in order: deletes,
    /// creations, removals, additions; one (group, member) pair changes at most once per step.
    /// Fills the group fields of `report` and returns the events in order.
    pub fn apply(
        &mut self,
        step: &GroupChangeStep,
        users: &[TenantUser],
        gone_users: &[String],
        report: &mut ChangeReport,
    ) -> Vec<GroupEvent> {
        self.steps += 1;
        let mut rng = Rng::with_seed(mix(self.seed ^ GROUP_STEP_SALT, self.steps));
        let mut events = Vec::new();

        for id in gone_users {
            let member = MemberRef::user(id.clone());
            for index in 0..self.groups.len() {
                if self.groups[index].state == UserState::Live
                    && self.groups[index].members.remove(&member)
                {
                    self.unlinked(index, member.clone(), report, &mut events);
                }
            }
        }

        let live_groups = |groups: &[TenantGroup]| -> Vec<usize> {
            (0..groups.len())
                .filter(|&i| groups[i].state == UserState::Live)
                .collect()
        };
        for index in choose(&mut rng, live_groups(&self.groups), step.groups_deleted) {
            let hard = self.groups[index].group.security_enabled;
            self.groups[index].state = if hard {
                UserState::HardDeleted
            } else {
                UserState::SoftDeleted
            };
            events.push(GroupEvent::Deleted { group: index, hard });
            report
                .deleted_group_ids
                .push(self.groups[index].group.id.clone());
            let member = MemberRef::group(self.groups[index].group.id.clone());
            for parent in 0..self.groups.len() {
                if self.groups[parent].state == UserState::Live
                    && self.groups[parent].members.remove(&member)
                {
                    self.unlinked(parent, member.clone(), report, &mut events);
                }
            }
        }

        let live_users: Vec<usize> = (0..users.len())
            .filter(|&i| users[i].state == UserState::Live)
            .collect();
        for _ in 0..step.groups_created {
            let index = self.groups.len();
            let size = rng.usize(1..=20).min(live_users.len());
            let members = choose(&mut rng, live_users.clone(), size)
                .into_iter()
                .map(|u| MemberRef::user(users[u].user.id.clone()))
                .collect();
            self.groups.push(TenantGroup {
                group: generate_group(self.seed, index),
                members,
                state: UserState::Live,
            });
            events.push(GroupEvent::Created { group: index });
            report
                .created_group_ids
                .push(self.groups[index].group.id.clone());
        }

        let mut touched: HashSet<(usize, MemberRef)> = HashSet::new();
        let live = live_groups(&self.groups);
        // Removals are drawn from every membership of a live group, so they never fall short
        // while there are members left.
        let memberships: Vec<(usize, MemberRef)> = live
            .iter()
            .flat_map(|&index| {
                self.groups[index]
                    .members
                    .iter()
                    .map(move |member| (index, member.clone()))
            })
            .collect();
        let picks = choose(
            &mut rng,
            (0..memberships.len()).collect(),
            step.members_removed,
        );
        for pick in picks {
            let (index, member) = memberships[pick].clone();
            self.groups[index].members.remove(&member);
            touched.insert((index, member.clone()));
            report.removed_members.push(Membership {
                group_id: self.groups[index].group.id.clone(),
                member: member.clone(),
            });
            events.push(GroupEvent::Removed {
                group: index,
                member,
            });
        }
        for _ in 0..step.members_added {
            let found = (0..ATTEMPTS).find_map(|_| {
                let index = *live.get(rng.usize(0..live.len().max(1)))?;
                let user = *live_users.get(rng.usize(0..live_users.len().max(1)))?;
                let member = MemberRef::user(users[user].user.id.clone());
                (!self.groups[index].members.contains(&member)
                    && !touched.contains(&(index, member.clone())))
                .then_some((index, member))
            });
            let Some((index, member)) = found else {
                continue;
            };
            self.groups[index].members.insert(member.clone());
            touched.insert((index, member.clone()));
            report.added_members.push(Membership {
                group_id: self.groups[index].group.id.clone(),
                member: member.clone(),
            });
            events.push(GroupEvent::Added {
                group: index,
                member,
            });
        }

        report.groups_created = report.created_group_ids.len();
        report.groups_deleted = report.deleted_group_ids.len();
        report.members_added = report.added_members.len();
        report.members_removed = report.removed_members.len();
        events
    }

    /// Records that `member` left group `index` because it was deleted.
    fn unlinked(
        &self,
        index: usize,
        member: MemberRef,
        report: &mut ChangeReport,
        events: &mut Vec<GroupEvent>,
    ) {
        report.unlinked_members.push(Membership {
            group_id: self.groups[index].group.id.clone(),
            member: member.clone(),
        });
        events.push(GroupEvent::Removed {
            group: index,
            member,
        });
    }
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
