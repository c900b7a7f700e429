//! Tests of group change tracking and page cutting.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::graph_sim::store::TenantStore;
use crate::synthetic::{ChangeStep, GroupSpec, SyntheticTenant};

fn store(users: usize, groups: usize, depth: usize) -> TenantStore {
    let tenant = SyntheticTenant::new(31, users, "contoso.example");
    let spec = GroupSpec {
        count: groups,
        max_members: 2_000,
        nesting_depth: depth,
    };
    let generated = SyntheticGroups::new(31, &spec, tenant.users());
    TenantStore::with_groups(tenant, generated)
}

/// Per group id: (entries seen, member -> removed?), and how many entries each page held.
type Merged = BTreeMap<String, (usize, BTreeMap<MemberRef, bool>)>;

fn merge(items: &[GroupItem<'_>], merged: &mut Merged) -> usize {
    let mut entries = 0;
    for item in items {
        let slot = merged.entry(item.group.group.id.clone()).or_default();
        slot.0 += 1;
        for (member, removed) in &item.members {
            assert!(
                slot.1.insert(member.clone(), *removed).is_none(),
                "member repeated"
            );
        }
        entries += item.members.len();
    }
    entries
}

fn drain_initial(store: &GroupStore, upto: u64, page_size: usize) -> (Merged, Vec<usize>) {
    let (mut merged, mut pages, mut from) = (Merged::new(), Vec::new(), None);
    loop {
        let page = store.initial_page(upto, from, page_size, true);
        assert!(page.items.len() <= page_size);
        let entries = merge(&page.items, &mut merged);
        assert!(
            entries <= MEMBER_SLICE,
            "{entries} member entries on a page"
        );
        pages.push(entries);
        match page.next {
            Some(next) => from = Some(next),
            None => return (merged, pages),
        }
    }
}

fn drain_round(store: &GroupStore, base: u64, upto: u64, page_size: usize) -> Merged {
    let (mut merged, mut from) = (Merged::new(), None);
    loop {
        let page = store.round_page(base, upto, from, page_size, true);
        assert!(merge(&page.items, &mut merged) <= MEMBER_SLICE);
        match page.next {
            Some(next) => from = Some(next),
            None => return merged,
        }
    }
}

#[test]
fn initial_pages_slice_large_groups_and_merge_to_the_snapshot() {
    // (page size): few groups per page, and more groups than fit the member budget.
    for page_size in [1, 3, 200] {
        let store = store(3_000, 25, 2);
        let groups = store.groups();
        let (merged, pages) = drain_initial(groups, 0, page_size);
        assert_eq!(merged.len(), 25);
        for group in groups.groups() {
            let (seen, members) = &merged[&group.group.id];
            let expected: BTreeSet<&MemberRef> = group.members.iter().collect();
            assert_eq!(members.keys().collect::<BTreeSet<_>>(), expected);
            assert!(members.values().all(|removed| !removed));
            assert!(*seen >= group.members.len().div_ceil(MEMBER_SLICE).max(1));
        }
        let largest = groups.groups()[0].members.len();
        assert!(largest > 2 * MEMBER_SLICE, "{largest}");
        assert!(merged[&groups.groups()[0].group.id].0 >= 3);
        assert!(pages.contains(&MEMBER_SLICE), "{pages:?}");
    }
}

#[test]
fn rounds_return_net_membership_changes() {
    let mut store = store(2_000, 12, 1);
    let base = store.version();
    let before = store.groups().snapshot();
    let report = store.apply_step(
        &ChangeStep {
            hard_deletes: 10,
            ..ChangeStep::default()
        },
        &GroupChangeStep {
            members_added: 700,
            members_removed: 40,
            groups_created: 2,
            groups_deleted: 1,
        },
    );
    let upto = store.version();
    assert_eq!(upto, base + 1);
    let merged = drain_round(store.groups(), base, upto, 4);

    let mut expected: BTreeMap<String, BTreeMap<MemberRef, bool>> = BTreeMap::new();
    for m in &report.added_members {
        expected
            .entry(m.group_id.clone())
            .or_default()
            .insert(m.member.clone(), false);
    }
    for m in report
        .removed_members
        .iter()
        .chain(&report.unlinked_members)
    {
        expected
            .entry(m.group_id.clone())
            .or_default()
            .insert(m.member.clone(), true);
    }
    let now = store.groups().snapshot();
    for id in &report.created_group_ids {
        let group = now.iter().find(|g| &g.id == id).unwrap();
        let slot = expected.entry(id.clone()).or_default();
        slot.clear();
        slot.extend(group.members.iter().map(|m| (m.clone(), false)));
    }
    for id in &report.deleted_group_ids {
        expected.insert(id.clone(), BTreeMap::new());
    }
    let got: BTreeMap<String, BTreeMap<MemberRef, bool>> = merged
        .into_iter()
        .map(|(id, (_, members))| (id, members))
        .collect();
    assert_eq!(got, expected);
    assert!(before.len() + 2 == now.len());
    // Nothing more since.
    assert!(drain_round(store.groups(), upto, upto, 4).is_empty());
}

#[test]
fn a_round_is_immune_to_changes_made_while_paging() {
    let mut store = store(3_000, 4, 0);
    let upto = store.version();
    let first = store.groups().initial_page(upto, None, 200, true);
    let from = first.next.expect("the large group needs more pages");
    let mut merged = Merged::new();
    merge(&first.items, &mut merged);
    // Mid-round: memberships churn, a group is created.
    let churn = store.apply_step(
        &ChangeStep::default(),
        &GroupChangeStep {
            members_added: 300,
            members_removed: 300,
            groups_created: 1,
            groups_deleted: 0,
        },
    );
    let mut from = Some(from);
    while let Some(cursor) = from {
        let page = store.groups().initial_page(upto, Some(cursor), 200, true);
        merge(&page.items, &mut merged);
        from = page.next;
    }
    assert_eq!(merged.len(), 4, "a group created mid-round is not in it");
    // The round shows the groups as they were when it started; the next round has the churn.
    let now = store.groups().snapshot();
    let round = drain_round(store.groups(), upto, store.version(), 200);
    for group in &now[..4] {
        let mut members: BTreeSet<MemberRef> = merged[&group.id].1.keys().cloned().collect();
        if let Some((_, changes)) = round.get(&group.id) {
            for (member, removed) in changes {
                if *removed {
                    assert!(members.remove(member));
                } else {
                    assert!(members.insert(member.clone()));
                }
            }
        }
        assert_eq!(
            members,
            group.members.iter().cloned().collect::<BTreeSet<_>>()
        );
    }
    assert_eq!(churn.members_removed, 300);
}
