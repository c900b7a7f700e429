//! End-to-end scope: chosen users and chosen groups (direct members, then with "sync children
//! groups"), users entering the scope through membership alone (read by `$filter`, 50 at a
//! time, and provisioned in the same run), users leaving it (deactivated, never deleted), and
//! the way back to all users.

use std::collections::{BTreeSet, HashSet};

use dirsync_coordinator::runs::RunKind;
use dirsync_coordinator::scope::Scope;
use dirsync_coordinator::scope_store::ScopeStore;
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::{
    GraphSimConfig, GroupSpec, MemberRef, ResetMode, SimGroup, UserState,
};
use dirsync_load_tests::oracle::expected_scope;

/// Ids of the tenant's live, enabled users: the ones that must be active when in scope.
fn enabled(stack: &Stack) -> HashSet<String> {
    stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .filter(|u| u.state == UserState::Live && u.user.account_enabled)
        .map(|u| u.user.id)
        .collect()
}

fn groups(stack: &Stack) -> Vec<SimGroup> {
    stack.graph.groups(&stack.entra_tenant).unwrap()
}

fn sorted(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = ids.into_iter().collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_by_users_and_groups_follows_memberships() {
    let stack = Stack::start_with_workers(
        &StackOptions {
            groups: GroupSpec {
                count: 24,
                max_members: 40,
                nesting_depth: 2,
            },
            ..StackOptions::new("scope_groups", 500)
        },
        1,
    )
    .await
    .unwrap();
    let enabled_users = enabled(&stack);

    // A group whose nested groups bring in users of their own, enabled ones among them.
    let all_groups = groups(&stack);
    let (group, direct, nested) = all_groups
        .iter()
        .filter(|g| g.state == UserState::Live)
        .find_map(|g| {
            let chosen = [g.id.clone()];
            let direct = expected_scope(&all_groups, &[], &chosen, false);
            let nested = expected_scope(&all_groups, &[], &chosen, true);
            let extra = nested
                .difference(&direct)
                .filter(|u| enabled_users.contains(*u));
            (direct.iter().any(|u| enabled_users.contains(u)) && extra.count() >= 2)
                .then(|| (g.id.clone(), direct, nested))
        })
        .expect("the generated tenant has a group with nested members");
    // And one user chosen by hand, in no group of the scope.
    let chosen_user = enabled_users
        .iter()
        .filter(|u| !nested.contains(*u))
        .min()
        .unwrap()
        .clone();

    // 1. Initial run: the chosen user and the group's direct members only.
    let direct_scope = Scope {
        all: false,
        users: vec![chosen_user.clone()],
        groups: vec![group.clone()],
        ..Scope::default()
    };
    stack.set_scope(direct_scope.clone()).await.unwrap();
    let initial = stack.cycle("initial", None).await.unwrap();
    assert_eq!(initial.kind, RunKind::Initial);
    let mut scope = direct.clone();
    scope.insert(chosen_user.clone());
    let verdict = stack.verdict_in_scope(scope.clone()).unwrap();
    assert!(verdict.converged, "{verdict:?}");
    let (active, inactive) = stack.webex_users();
    let want: BTreeSet<String> = scope.intersection(&enabled_users).cloned().collect();
    assert_eq!(
        active, want,
        "exactly the scope's enabled users are in webex"
    );
    assert!(inactive.is_empty());
    assert_eq!(initial.users.synced, want.len() as u64);
    assert_eq!(initial.users.failed, 0);

    // 2. "Sync children groups": nested members enter through the scope alone. No user
    // changed in Entra, so only targeted reads can bring them in, 50 ids per read.
    let creates_before = stack.scim.counters(&stack.org_id).create;
    let patches_before = stack.scim.counters(&stack.org_id).patch;
    let reads_before = stack
        .graph
        .requests(&stack.entra_tenant)
        .unwrap()
        .filtered_reads;
    stack
        .set_scope(Scope {
            nested: true,
            ..direct_scope.clone()
        })
        .await
        .unwrap();
    let widened = stack.cycle("children groups", None).await.unwrap();
    assert_eq!(widened.kind, RunKind::Incremental);
    let mut scope = nested.clone();
    scope.insert(chosen_user.clone());
    let verdict = stack.verdict_in_scope(scope.clone()).unwrap();
    assert!(verdict.converged, "{verdict:?}");
    let entering = ScopeStore::new(stack.env.pool.clone())
        .entering(widened.run_id)
        .await
        .unwrap();
    let newcomers = sorted(nested.difference(&direct).cloned());
    assert_eq!(entering, newcomers, "exactly the nested members enter");
    let reads = stack
        .graph
        .requests(&stack.entra_tenant)
        .unwrap()
        .filtered_reads
        - reads_before;
    assert_eq!(reads, newcomers.len().div_ceil(50) as u64);
    let enabled_newcomers = newcomers
        .iter()
        .filter(|u| enabled_users.contains(*u))
        .count();
    assert_eq!(widened.users.synced, enabled_newcomers as u64);
    // One create per enabled newcomer; the other writes are manager references that
    // waited for a newcomer (checked by the oracle).
    assert_eq!(
        stack.scim.counters(&stack.org_id).create - creates_before,
        enabled_newcomers as u64
    );
    assert_eq!(
        widened.scim_writes,
        enabled_newcomers as u64 + stack.scim.counters(&stack.org_id).patch - patches_before
    );

    // 3. Membership changes only: three users join the group, two direct members leave it.
    let outsiders: Vec<String> = sorted(
        enabled_users
            .iter()
            .filter(|u| !scope.contains(*u))
            .cloned(),
    )
    .into_iter()
    .take(3)
    .collect();
    for u in &outsiders {
        assert!(
            stack
                .graph
                .set_membership(
                    &stack.entra_tenant,
                    &group,
                    MemberRef::user(u.clone()),
                    true
                )
                .unwrap()
        );
    }
    // Direct members reachable no other way, so that removing them takes them out of scope.
    let leavers: Vec<String> = {
        let (active, _) = stack.webex_users();
        let mut candidates: Vec<String> = direct
            .iter()
            .filter(|u| active.contains(*u) && **u != chosen_user)
            .cloned()
            .collect();
        candidates.sort();
        let mut picked = Vec::new();
        for u in candidates {
            let gs = groups(&stack);
            let mut without = gs.clone();
            for g in without.iter_mut().filter(|g| g.id == group) {
                g.members.retain(|m| m.id != u);
            }
            if !expected_scope(&without, &[], std::slice::from_ref(&group), true).contains(&u) {
                picked.push(u);
            }
            if picked.len() == 2 {
                break;
            }
        }
        picked
    };
    assert_eq!(leavers.len(), 2, "two direct members can leave the scope");
    for u in &leavers {
        assert!(
            stack
                .graph
                .set_membership(
                    &stack.entra_tenant,
                    &group,
                    MemberRef::user(u.clone()),
                    false
                )
                .unwrap()
        );
    }
    let creates_before = stack.scim.counters(&stack.org_id).create;
    let moved = stack.cycle("memberships", None).await.unwrap();
    let mut scope = expected_scope(&groups(&stack), &[], std::slice::from_ref(&group), true);
    scope.insert(chosen_user.clone());
    let verdict = stack.verdict_in_scope(scope.clone()).unwrap();
    assert!(verdict.converged, "{verdict:?}");
    let (active, inactive) = stack.webex_users();
    for u in &outsiders {
        assert!(
            active.contains(u),
            "{u} joined the group and is provisioned"
        );
    }
    for u in &leavers {
        assert!(
            inactive.contains(u),
            "{u} left the scope: deactivated, not deleted (the tenant allows deletes)"
        );
    }
    assert_eq!(moved.users.synced, 5);
    assert_eq!(
        stack.scim.counters(&stack.org_id).create - creates_before,
        3,
        "3 creates; the 2 leavers deactivated (checked above), not deleted"
    );

    // 4. Back to all users: a full walk brings in everyone, the leavers included.
    stack.set_scope(Scope::default()).await.unwrap();
    let all = stack.cycle("all users", None).await.unwrap();
    assert_eq!(all.kind, RunKind::Initial);
    assert!(all.converged, "{:?}", all.verdict);
    let (active, _) = stack.webex_users();
    assert_eq!(active, enabled(&stack).into_iter().collect());
    let next = stack.cycle("unchanged", None).await.unwrap();
    assert_eq!(next.kind, RunKind::Incremental);
    assert_eq!(next.scim_writes, 0);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_read_and_synced_only_when_turned_on() {
    let stack = Stack::start_with_workers(
        &StackOptions {
            graph: GraphSimConfig {
                rooms: 5,
                ..GraphSimConfig::default()
            },
            ..StackOptions::new("scope_rooms", 200)
        },
        1,
    )
    .await
    .unwrap();
    let rooms: BTreeSet<String> = stack
        .graph
        .room_ids(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(rooms.len(), 5);
    let room_pages = || {
        stack
            .graph
            .requests(&stack.entra_tenant)
            .unwrap()
            .room_pages
    };

    // Off (the default): the places API is not read; rooms, disabled accounts in Entra,
    // are not provisioned.
    let initial = stack.cycle("initial", None).await.unwrap();
    assert!(initial.converged, "{:?}", initial.verdict);
    assert_eq!(room_pages(), 0);
    let (active, inactive) = stack.webex_users();
    assert!(active.is_disjoint(&rooms) && inactive.is_disjoint(&rooms));

    // On: the rooms did not change in Entra, so only a full walk finds them; they become
    // active Webex rooms.
    stack
        .set_scope(Scope {
            rooms: true,
            ..Scope::default()
        })
        .await
        .unwrap();
    let on = stack.cycle("rooms on", None).await.unwrap();
    assert_eq!(on.kind, RunKind::Initial);
    assert_eq!(room_pages(), 1);
    let verdict = stack.verdict_with_rooms().unwrap();
    assert!(verdict.converged, "{verdict:?}");
    assert_eq!(on.scim_writes, 5, "one create per room, nothing else");
    let (active, _) = stack.webex_users();
    assert!(rooms.is_subset(&active));
    for u in stack.scim.users(&stack.org_id) {
        let is_room = rooms.contains(u["externalId"].as_str().unwrap());
        assert_eq!(u["userType"] == "room", is_room, "{u}");
    }

    // Next cycle: incremental, the list read again, nothing to write.
    let next = stack.cycle("unchanged", None).await.unwrap();
    assert_eq!(next.kind, RunKind::Incremental);
    assert_eq!(next.scim_writes, 0);
    assert_eq!(room_pages(), 2);
    assert!(stack.verdict_with_rooms().unwrap().converged);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entering_users_resume_after_an_interrupted_run_without_reading_twice() {
    let stack = Stack::start_with_workers(
        &StackOptions {
            graph_latency: std::time::Duration::from_millis(30),
            ..StackOptions::new("scope_resume", 600)
        },
        1,
    )
    .await
    .unwrap();
    let chosen = sorted(enabled(&stack));
    let pick = |n: usize| Scope {
        all: false,
        users: chosen[..n].to_vec(),
        ..Scope::default()
    };
    stack.set_scope(pick(10)).await.unwrap();
    let initial = stack.cycle("initial", None).await.unwrap();
    assert_eq!(initial.users.synced, 10);

    // 440 users enter by hand: 3 batches (200, 200, 40) read in 9 targeted reads.
    stack.set_scope(pick(450)).await.unwrap();
    let reads = || {
        stack
            .graph
            .requests(&stack.entra_tenant)
            .unwrap()
            .filtered_reads
    };
    let before = reads();
    let creates_before = stack.scim.counters(&stack.org_id).create;
    let users_before = stack.scim.users(&stack.org_id).len();
    let cancel = tokio_util::sync::CancellationToken::new();
    let interrupt = {
        let cancel = cancel.clone();
        let graph = stack.graph.clone();
        let tenant = stack.entra_tenant.clone();
        tokio::spawn(async move {
            // Past the first batch's four reads: it is staged and published.
            while graph.requests(&tenant).unwrap().filtered_reads < before + 5 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            cancel.cancel();
        })
    };
    let interrupted = stack
        .runner
        .sync_tenant(stack.tenant_id, None, &cancel)
        .await;
    interrupt.await.unwrap();
    assert!(interrupted.is_err(), "the run was interrupted mid-way");
    let resumed = stack.cycle("resumed", None).await.unwrap();
    assert_eq!(resumed.kind, RunKind::Incremental);
    let verdict = stack
        .verdict_in_scope(chosen[..450].iter().cloned().collect())
        .unwrap();
    assert!(verdict.converged, "{verdict:?}");
    let total_reads = reads() - before;
    // Reading everything again would take 9 + the 5 or more reads done before the cut.
    assert!(
        (9..=12).contains(&total_reads),
        "published users are not read again: {total_reads} reads"
    );
    // A batch staged before the cut may be delivered twice (its bytes are republished); the
    // second copy's creates meet 409 and adopt, so Webex gains each user exactly once.
    assert_eq!(
        stack.scim.users(&stack.org_id).len() - users_before,
        440,
        "every entering user created once"
    );
    assert!(stack.scim.counters(&stack.org_id).create - creates_before >= 440);
    let entering = ScopeStore::new(stack.env.pool.clone())
        .entering(resumed.run_id)
        .await
        .unwrap();
    assert_eq!(entering.len(), 440);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_of_both_delta_chains_rebuilds_the_scope_without_spurious_deactivations() {
    let stack = Stack::start_with_workers(
        &StackOptions {
            groups: GroupSpec {
                count: 12,
                max_members: 60,
                nesting_depth: 1,
            },
            ..StackOptions::new("scope_reset", 400)
        },
        1,
    )
    .await
    .unwrap();
    let all_groups = groups(&stack);
    let chosen: Vec<String> = all_groups
        .iter()
        .filter(|g| g.state == UserState::Live && !g.members.is_empty())
        .take(3)
        .map(|g| g.id.clone())
        .collect();
    stack
        .set_scope(Scope {
            all: false,
            groups: chosen.clone(),
            nested: true,
            ..Scope::default()
        })
        .await
        .unwrap();
    let initial = stack.cycle("initial", None).await.unwrap();
    let scope = expected_scope(&all_groups, &[], &chosen, true);
    assert!(stack.verdict_in_scope(scope.clone()).unwrap().converged);
    let (active_before, _) = stack.webex_users();
    assert!(!active_before.is_empty());
    assert_eq!(initial.users.failed, 0);

    // Both deltaLinks (users and groups) are refused: both chains start over in full.
    stack
        .graph
        .reset(&stack.entra_tenant, ResetMode::SyncStateNotFound)
        .unwrap();
    let rounds_before = stack
        .graph
        .requests(&stack.entra_tenant)
        .unwrap()
        .reset_refusals;
    let resync = stack.cycle("resync", None).await.unwrap();
    assert_eq!(resync.kind, RunKind::Initial);
    assert_eq!(
        stack
            .graph
            .requests(&stack.entra_tenant)
            .unwrap()
            .reset_refusals
            - rounds_before,
        2,
        "the groups and the users deltaLink were both refused"
    );
    assert!(stack.verdict_in_scope(scope).unwrap().converged);
    let (active_after, inactive_after) = stack.webex_users();
    assert_eq!(
        active_after, active_before,
        "nobody deactivated by the resync"
    );
    assert!(inactive_after.is_empty());
    assert_eq!(resync.scim_writes, 0);
    stack.shutdown().await.unwrap();
}
