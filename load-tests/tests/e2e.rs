//! End-to-end: the whole fleet (simulators, coordinator, worker processes, RabbitMQ,
//! PostgreSQL, Redis) syncing a synthetic tenant, checked by the oracle.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::UserState;
use dirsync_load_tests::synthetic::ChangeStep;
use dirsync_proto::Counts;

fn worker_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo"))
}

async fn stack(opts: StackOptions, workers: usize) -> Stack {
    let stack = Stack::start(&opts).await.unwrap();
    for _ in 0..workers {
        stack.spawn_worker(&worker_exe()).unwrap();
    }
    stack
}

/// Live users in the tenant, and how many of them are enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_change_and_unchanged_cycles_converge_with_exact_counts() {
    let stack = stack(StackOptions::new("e2e_cycles", 2_000), 2).await;

    let (live, enabled) = stack.live_and_enabled().unwrap();
    let initial = stack.cycle("initial", None).await.unwrap();
    assert!(
        initial.converged,
        "initial cycle did not converge: {:?}",
        initial.verdict
    );
    // Every live user is seen once: enabled ones are created, disabled ones never are.
    assert_eq!(
        initial.users,
        Counts {
            synced: enabled,
            skipped: live - enabled,
            failed: 0
        }
    );
    // One POST per created user; then one PATCH per user whose manager was not in Webex
    // when the user was created (the reference pass), at most one per managed user.
    let counters = stack.scim.counters(&stack.org_id);
    assert_eq!(counters.create, enabled, "one POST per created user");
    let managed = stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .iter()
        .filter(|u| {
            u.state == UserState::Live && u.user.account_enabled && u.user.manager_id.is_some()
        })
        .count() as u64;
    assert!(
        counters.patch <= managed && initial.scim_writes == enabled + counters.patch,
        "{} manager PATCHes for {managed} managed users, nothing else",
        counters.patch
    );
    assert_eq!(
        initial.redis_counts, initial.users,
        "live counters agree with the recorded results"
    );

    let change = stack
        .change(&ChangeStep {
            updates: 60,
            soft_deletes: 15,
            hard_deletes: 8,
            new_users: 25,
            restores: 5,
            disables: 6,
        })
        .unwrap();
    let incremental = stack.cycle("incremental", None).await.unwrap();
    assert!(
        incremental.converged,
        "incremental cycle did not converge: {:?}",
        incremental.verdict
    );
    assert_eq!(incremental.users.failed, 0);
    assert!(incremental.users.synced > 0);
    let changed: HashSet<&String> = [
        &change.updated_ids,
        &change.soft_deleted_ids,
        &change.hard_deleted_ids,
        &change.new_ids,
        &change.restored_ids,
        &change.disabled_ids,
    ]
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(
        incremental.users.total(),
        changed.len() as u64,
        "each changed user is seen once"
    );
    // One write per synced user, and the reference pass for managers that were missing.
    assert!(
        incremental.scim_writes >= incremental.users.synced,
        "one write per synced user"
    );
    assert_eq!(incremental.redis_counts, incremental.users);

    let unchanged = stack.cycle("unchanged", None).await.unwrap();
    assert!(unchanged.converged);
    assert_eq!(unchanged.users, Counts::default());
    assert_eq!(
        unchanged.scim_writes, 0,
        "an unchanged cycle writes nothing to webex"
    );

    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_mid_run_loses_and_duplicates_nothing() {
    // SCIM latency keeps the run going long enough for the crash to land in the middle.
    let opts = StackOptions {
        scim_latency: Duration::from_millis(20),
        ..StackOptions::new("e2e_kill", 4_000)
    };
    let stack = stack(opts, 2).await;
    let (live, enabled) = stack.live_and_enabled().unwrap();

    let (report, writes_at_kill) = tokio::join!(stack.cycle("initial", None), async {
        // Wait until the run is well under way, then crash one worker and start another.
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let writes = stack.scim.counters(&stack.org_id).writes();
            if writes >= 600 {
                stack.kill_worker(0).await.unwrap();
                stack.spawn_worker(&worker_exe()).unwrap();
                return writes;
            }
        }
    });
    let report = report.unwrap();
    assert!(
        writes_at_kill < enabled,
        "the crash happened mid-run ({writes_at_kill} of {enabled} writes done)"
    );
    assert!(
        report.converged,
        "did not converge after a worker crash: {:?}",
        report.verdict
    );
    assert_eq!(
        report.users,
        Counts {
            synced: enabled,
            skipped: live - enabled,
            failed: 0
        },
        "exact counts"
    );
    assert_eq!(report.redis_counts, report.users);
    assert_eq!(
        stack.scim.users(&stack.org_id).len() as u64,
        enabled,
        "no duplicate webex users"
    );

    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_link_resyncs_in_full_without_spurious_writes() {
    let stack = stack(StackOptions::new("e2e_resync", 600), 1).await;
    let initial = stack.cycle("initial", None).await.unwrap();
    assert!(initial.converged);
    // Graph answers an unknown or expired token with 400 syncStateNotFound.
    let stale = format!(
        "{}/v1.0/users/delta?$deltatoken=expired-long-ago",
        stack.graph_base_url()
    );
    sqlx::query("UPDATE tenants SET delta_link = $1 WHERE id = $2")
        .bind(&stale)
        .bind(stack.tenant_id.0)
        .execute(&stack.env.pool)
        .await
        .unwrap();
    let resync = stack.cycle("resync", None).await.unwrap();
    assert_eq!(
        resync.kind,
        dirsync_coordinator::runs::RunKind::Initial,
        "the run fell back to a full enumeration"
    );
    assert!(resync.converged);
    assert_eq!(
        resync.users.total(),
        initial.users.total(),
        "every live user was enumerated again"
    );
    assert_eq!(
        resync.scim_writes, 0,
        "nothing changed, so nothing is written and nobody is deactivated"
    );
    let next = stack.cycle("after resync", None).await.unwrap();
    assert_eq!(
        next.kind,
        dirsync_coordinator::runs::RunKind::Incremental,
        "a fresh deltaLink was stored"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_broker_connection_is_replaced_at_the_next_run() {
    let stack = stack(StackOptions::new("e2e_reconnect", 300), 1).await;
    let first = stack.cycle("initial", None).await.unwrap();
    assert!(first.converged, "{:?}", first.verdict);
    // The connection drops between cycles (a broker restart, a dropped TCP connection).
    let broken = stack.runner.broker_connection().await;
    broken
        .close(320, "test: connection forced".into())
        .await
        .unwrap();
    assert!(!broken.status().connected());
    stack
        .change(&ChangeStep {
            updates: 20,
            ..ChangeStep::default()
        })
        .unwrap();
    let next = stack.cycle("after the drop", None).await.unwrap();
    assert!(next.converged, "{:?}", next.verdict);
    assert_eq!(next.users.failed, 0);
    assert!(stack.runner.broker_connection().await.status().connected());
    stack.shutdown().await.unwrap();
}
