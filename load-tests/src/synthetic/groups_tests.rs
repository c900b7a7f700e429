//! Tests of synthetic group generation and group change steps.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::synthetic::SyntheticTenant;

fn tenant(users: usize) -> SyntheticTenant {
    SyntheticTenant::new(12, users, "contoso.example")
}

fn spec(count: usize, max_members: usize, nesting_depth: usize) -> GroupSpec {
    GroupSpec {
        count,
        max_members,
        nesting_depth,
    }
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let users = tenant(3_000);
    let a = SyntheticGroups::new(12, &spec(30, 2_000, 2), users.users());
    let b = SyntheticGroups::new(12, &spec(30, 2_000, 2), users.users());
    let c = SyntheticGroups::new(13, &spec(30, 2_000, 2), users.users());
    assert_eq!(a.groups(), b.groups());
    assert_ne!(a.groups(), c.groups());
    let ids: HashSet<&str> = a.groups().iter().map(|g| g.group.id.as_str()).collect();
    assert_eq!(ids.len(), 30, "duplicate group ids");
    assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
    assert!(SyntheticGroups::empty(12).groups().is_empty());
    assert!(
        SyntheticGroups::new(12, &GroupSpec::default(), users.users())
            .groups()
            .is_empty()
    );
}

#[test]
fn sizes_nesting_and_caps() {
    let users = tenant(3_000);
    let live: HashSet<&str> = users
        .users()
        .iter()
        .filter(|u| u.state == UserState::Live)
        .map(|u| u.user.id.as_str())
        .collect();
    // (spec, largest group at least, nested groups expected)
    let cases = [
        (spec(40, 2_000, 0), 1_200, false),
        (spec(40, 2_000, 2), 1_199, true),
        (spec(10, 300, 1), 299, true),
    ];
    for (spec, largest, nested) in cases {
        let groups = SyntheticGroups::new(12, &spec, users.users());
        let index: HashMap<&str, usize> = groups
            .groups()
            .iter()
            .enumerate()
            .map(|(i, g)| (g.group.id.as_str(), i))
            .collect();
        let sizes: Vec<usize> = groups.groups().iter().map(|g| g.members.len()).collect();
        assert!(sizes.iter().all(|&s| s <= spec.max_members), "{spec:?}");
        assert!(sizes[0] >= largest, "{spec:?}: {sizes:?}");
        let mut any_nested = false;
        for (i, group) in groups.groups().iter().enumerate() {
            for member in &group.members {
                match member.kind {
                    MemberKind::User => assert!(live.contains(member.id.as_str())),
                    MemberKind::Group => {
                        any_nested = true;
                        // Children sit one level deeper: acyclic, bounded depth.
                        let child = index[member.id.as_str()];
                        let depth = spec.nesting_depth + 1;
                        assert_eq!(child % depth, i % depth + 1, "{spec:?}");
                    }
                }
            }
        }
        assert_eq!(any_nested, nested, "{spec:?}");
    }
    // A tenant too small for the large group: it takes every live user.
    let small = tenant(100);
    let groups = SyntheticGroups::new(12, &spec(3, 2_000, 0), small.users());
    let live_small = small
        .users()
        .iter()
        .filter(|u| u.state == UserState::Live)
        .count();
    assert_eq!(groups.groups()[0].members.len(), live_small);
    // Some groups have no members at all, so `members@delta` omission is exercised.
    let many = SyntheticGroups::new(12, &spec(60, 2_000, 0), users.users());
    assert!(many.groups().iter().any(|g| g.members.is_empty()));
}

#[test]
fn steps_report_exactly_what_changed() {
    let mut users = tenant(2_000);
    let mut groups = SyntheticGroups::new(12, &spec(20, 2_000, 1), users.users());
    let before = groups.groups().to_vec();
    let applied = users.apply(&crate::synthetic::ChangeStep {
        hard_deletes: 30,
        ..Default::default()
    });
    let mut report = applied.report;
    let gone = report.hard_deleted_ids.clone();
    let step = GroupChangeStep {
        members_added: 25,
        members_removed: 15,
        groups_created: 3,
        groups_deleted: 2,
    };
    let events = groups.apply(&step, users.users(), &gone, &mut report);
    assert_eq!(
        (
            report.members_added,
            report.members_removed,
            report.groups_created,
            report.groups_deleted
        ),
        (25, 15, 3, 2)
    );
    assert!(
        !report.unlinked_members.is_empty(),
        "30 hard-deleted users of 2,000 leave the all-staff group"
    );
    assert_eq!(
        events.len(),
        25 + 15 + 3 + 2 + report.unlinked_members.len()
    );
    let after: HashMap<&str, &TenantGroup> = groups
        .groups()
        .iter()
        .map(|g| (g.group.id.as_str(), g))
        .collect();
    for m in &report.added_members {
        assert!(after[m.group_id.as_str()].members.contains(&m.member));
        assert!(
            before
                .iter()
                .find(|g| g.group.id == m.group_id)
                .is_none_or(|g| !g.members.contains(&m.member))
        );
    }
    for m in report
        .removed_members
        .iter()
        .chain(&report.unlinked_members)
    {
        assert!(!after[m.group_id.as_str()].members.contains(&m.member));
    }
    for id in &report.deleted_group_ids {
        assert_ne!(after[id.as_str()].state, UserState::Live);
        let member = MemberRef::group(id.clone());
        assert!(
            groups
                .groups()
                .iter()
                .filter(|g| g.state == UserState::Live)
                .all(|g| !g.members.contains(&member))
        );
    }
    for id in &report.created_group_ids {
        assert!(!after[id.as_str()].members.is_empty());
    }
    for id in &gone {
        let member = MemberRef::user(id.clone());
        assert!(
            groups
                .groups()
                .iter()
                .filter(|g| g.state == UserState::Live)
                .all(|g| !g.members.contains(&member))
        );
    }
    // Created groups continue the generated sequence.
    assert_eq!(report.created_group_ids[0], group_id(12, 20));
}

#[test]
fn steps_are_deterministic() {
    let run = || {
        let users = tenant(800);
        let mut groups = SyntheticGroups::new(5, &spec(10, 2_000, 1), users.users());
        let step = GroupChangeStep {
            members_added: 10,
            members_removed: 10,
            groups_created: 1,
            groups_deleted: 1,
        };
        let reports: Vec<ChangeReport> = (0..3)
            .map(|_| {
                let mut report = ChangeReport::default();
                groups.apply(&step, users.users(), &[], &mut report);
                report
            })
            .collect();
        (reports, groups.groups().to_vec())
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert_ne!(a.0[0].added_members, a.0[1].added_members);
}
