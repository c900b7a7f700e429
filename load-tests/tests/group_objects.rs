//! End-to-end "sync group objects": the chosen groups become Webex groups whose members are
//! their Entra user members that are in Webex, only while the option is on; membership
//! changes become member PATCHes (never a PUT), and an unchanged group costs no write.

use std::collections::{BTreeSet, HashMap};

use dirsync_coordinator::scope::Scope;
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::{GroupSpec, MemberKind, MemberRef, UserState};
use dirsync_load_tests::synthetic::ChangeStep;

/// Webex id of each Entra user active in Webex.
fn webex_ids(stack: &Stack) -> HashMap<String, String> {
    stack
        .scim
        .users(&stack.org_id)
        .into_iter()
        .filter(|u| u["active"].as_bool() != Some(false))
        .map(|u| {
            (
                u["externalId"].as_str().unwrap().to_string(),
                u["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (displayName, Webex member ids) the Webex group of Entra group `id` must have: its
/// direct user members that are active in Webex.
fn expected(stack: &Stack, id: &str) -> (String, BTreeSet<String>) {
    let ids = webex_ids(stack);
    let group = stack
        .graph
        .groups(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .find(|g| g.id == id)
        .unwrap();
    let members = group
        .members
        .iter()
        .filter(|m| m.kind == MemberKind::User)
        .filter_map(|m| ids.get(&m.id).cloned())
        .collect();
    (group.display_name, members)
}

/// (displayName, member ids) of the org's group with `externalId` `id`.
fn actual(stack: &Stack, id: &str) -> Option<(String, BTreeSet<String>)> {
    let groups: Vec<_> = stack
        .scim
        .groups(&stack.org_id)
        .into_iter()
        .filter(|g| g["externalId"] == id)
        .collect();
    assert!(
        groups.len() <= 1,
        "one webex group per entra group: {groups:?}"
    );
    let g = groups.into_iter().next()?;
    let members = stack
        .scim
        .group_member_ids(&stack.org_id, g["id"].as_str().unwrap())
        .unwrap()
        .into_iter()
        .collect();
    Some((g["displayName"].as_str().unwrap().to_string(), members))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_groups_are_synced_as_webex_groups_only_when_turned_on() {
    let stack = Stack::start_with_workers(
        &StackOptions {
            groups: GroupSpec {
                count: 12,
                max_members: 60,
                nesting_depth: 1,
            },
            ..StackOptions::new("group_objects", 400)
        },
        1,
    )
    .await
    .unwrap();
    let chosen: Vec<String> = stack
        .graph
        .groups(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .filter(|g| {
            g.state == UserState::Live
                && g.members
                    .iter()
                    .filter(|m| m.kind == MemberKind::User)
                    .count()
                    >= 3
        })
        .take(2)
        .map(|g| g.id)
        .collect();
    assert_eq!(chosen.len(), 2);
    let scope = Scope {
        all: false,
        groups: chosen.clone(),
        ..Scope::default()
    };

    // Off: members are synced, the groups themselves are not.
    stack.set_scope(scope.clone()).await.unwrap();
    let off = stack.cycle("off", None).await.unwrap();
    assert!(off.users.synced > 0);
    assert_eq!(off.groups.total(), 0);
    assert!(stack.scim.groups(&stack.org_id).is_empty());

    // On: each chosen group is created with its members that are in Webex.
    stack
        .set_scope(Scope {
            group_objects: true,
            ..scope.clone()
        })
        .await
        .unwrap();
    let on = stack.cycle("on", None).await.unwrap();
    assert_eq!(on.groups.total(), 2);
    assert_eq!(on.groups.failed, 0);
    for id in &chosen {
        assert_eq!(actual(&stack, id), Some(expected(&stack, id)), "group {id}");
    }
    assert_eq!(stack.scim.groups(&stack.org_id).len(), 2);

    // Memberships change in Entra only: a new user joins the first group (entering the
    // scope, provisioned, then added to the group in the same run) and a member leaves it.
    let first = &chosen[0];
    let ids = webex_ids(&stack);
    let group = stack
        .graph
        .groups(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .find(|g| &g.id == first)
        .unwrap();
    let in_scope: BTreeSet<String> = stack
        .graph
        .groups(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .filter(|g| chosen.contains(&g.id))
        .flat_map(|g| g.members.into_iter().map(|m| m.id))
        .collect();
    let newcomer = stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .find(|u| {
            u.state == UserState::Live && u.user.account_enabled && !in_scope.contains(&u.user.id)
        })
        .unwrap()
        .user
        .id;
    let leaver = group
        .members
        .iter()
        .find(|m| m.kind == MemberKind::User && ids.contains_key(&m.id))
        .unwrap()
        .id
        .clone();
    for (member, present) in [(newcomer.clone(), true), (leaver.clone(), false)] {
        assert!(
            stack
                .graph
                .set_membership(&stack.entra_tenant, first, MemberRef::user(member), present)
                .unwrap()
        );
    }
    let before = stack.scim.counters(&stack.org_id);
    let moved = stack.cycle("memberships", None).await.unwrap();
    let after = stack.scim.counters(&stack.org_id);
    assert_eq!(moved.groups.total(), 2);
    let (_, members) = actual(&stack, first).unwrap();
    let ids = webex_ids(&stack);
    assert!(
        members.contains(&ids[&newcomer]),
        "the newcomer is a member"
    );
    let leaver_webex = stack
        .scim
        .users(&stack.org_id)
        .into_iter()
        .find(|u| u["externalId"] == leaver.as_str())
        .map(|u| u["id"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        !members.contains(&leaver_webex),
        "the leaver is not a member"
    );
    for id in &chosen {
        assert_eq!(actual(&stack, id), Some(expected(&stack, id)), "group {id}");
    }
    assert_eq!(
        after.group_put, before.group_put,
        "memberships never by PUT"
    );
    assert_eq!(after.group_create, before.group_create);
    assert_eq!(
        after.group_patch - before.group_patch,
        2,
        "one remove and one add for the first group"
    );

    // Unchanged: no group write at all.
    let before = stack.scim.counters(&stack.org_id);
    let same = stack.cycle("unchanged", None).await.unwrap();
    assert_eq!(same.groups.total(), 2);
    assert_eq!(
        stack.scim.counters(&stack.org_id).group_writes(),
        before.group_writes()
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_to_be_synced_completes_once_its_member_is_in_webex() {
    let stack = Stack::start_with_workers(
        &StackOptions {
            groups: GroupSpec {
                count: 8,
                max_members: 30,
                nesting_depth: 0,
            },
            ..StackOptions::new("group_pending", 300)
        },
        1,
    )
    .await
    .unwrap();
    let group = stack
        .graph
        .groups(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .find(|g| g.state == UserState::Live && !g.members.is_empty())
        .unwrap()
        .id;
    // A soft-deleted user (not in Webex) is a member: the group waits for it.
    let sleeper = stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .find(|u| u.state == UserState::SoftDeleted)
        .unwrap()
        .user
        .id;
    assert!(
        stack
            .graph
            .set_membership(
                &stack.entra_tenant,
                &group,
                MemberRef::user(sleeper.clone()),
                true
            )
            .unwrap()
    );
    stack
        .set_scope(Scope {
            all: false,
            groups: vec![group.clone()],
            group_objects: true,
            ..Scope::default()
        })
        .await
        .unwrap();
    let first = stack.cycle("first", None).await.unwrap();
    assert_eq!((first.groups.synced, first.groups.pending), (0, 1));
    assert_eq!(actual(&stack, &group), Some(expected(&stack, &group)));

    // Restored in Entra: provisioned, and the group completes in the same run.
    stack
        .change(&ChangeStep {
            restores: 10_000,
            ..ChangeStep::default()
        })
        .unwrap();
    let second = stack.cycle("restored", None).await.unwrap();
    assert_eq!((second.groups.synced, second.groups.pending), (1, 0));
    let ids = webex_ids(&stack);
    let (_, members) = actual(&stack, &group).unwrap();
    assert!(
        members.contains(&ids[&sleeper]),
        "the restored member is in the group"
    );
    assert_eq!(actual(&stack, &group), Some(expected(&stack, &group)));
    stack.shutdown().await.unwrap();
}
