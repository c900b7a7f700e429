//! End-to-end through the whole fleet against Graph's edge cases: replayed users, empty and
//! short pages, transient 503/504s, RU throttling, and each form of synchronization reset.
//! Every cycle must converge by the oracle with exact counts: synced + skipped + failed equals
//! the entries Graph returned, replays included.

use std::collections::HashSet;
use std::path::PathBuf;

use dirsync_coordinator::runs::RunKind;
use dirsync_load_tests::fleet::{CycleReport, Stack, StackOptions};
use dirsync_load_tests::graph_sim::{GraphSimConfig, RequestCounts, ResetMode};
use dirsync_load_tests::synthetic::{ChangeReport, ChangeStep};
use dirsync_proto::Counts;

fn worker_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo"))
}

async fn stack(label: &str, users: usize, page_size: usize, graph: GraphSimConfig) -> Stack {
    let opts = StackOptions {
        page_size,
        graph,
        ..StackOptions::new(label, users)
    };
    let stack = Stack::start(&opts).await.unwrap();
    stack.spawn_worker(&worker_exe()).unwrap();
    stack
}

/// Live users in the tenant, and how many of them are enabled.
fn requests(stack: &Stack) -> RequestCounts {
    stack.graph.requests(&stack.entra_tenant).unwrap()
}

/// One cycle, with the Graph requests it caused (counters after minus before).
async fn cycle(stack: &Stack, name: &str) -> (CycleReport, RequestCounts) {
    let before = requests(stack);
    let report = stack.cycle(name, None).await.unwrap();
    let after = requests(stack);
    let delta = RequestCounts {
        delta_requests: after.delta_requests - before.delta_requests,
        low_priority_requests: after.low_priority_requests - before.low_priority_requests,
        delta_pages: after.delta_pages - before.delta_pages,
        objects_returned: after.objects_returned - before.objects_returned,
        duplicates_returned: after.duplicates_returned - before.duplicates_returned,
        empty_pages: after.empty_pages - before.empty_pages,
        throttled: after.throttled - before.throttled,
        transient_errors: after.transient_errors - before.transient_errors,
        reset_refusals: after.reset_refusals - before.reset_refusals,
        sync_state_not_found: after.sync_state_not_found - before.sync_state_not_found,
        ..after
    };
    assert!(
        report.converged,
        "{name} did not converge: {:?}",
        report.verdict
    );
    assert_eq!(
        report.users.total(),
        delta.objects_returned,
        "{name}: one count per entry Graph returned"
    );
    assert_eq!(report.redis_counts, report.users, "{name}");
    assert_eq!(
        delta.low_priority_requests, delta.delta_requests,
        "{name}: every Graph call asks for low priority"
    );
    (report, delta)
}

/// The initial cycle of a fresh tenant: every live user once (plus `replays`), enabled ones
/// created, disabled ones skipped.
async fn initial(stack: &Stack, replays: u64) -> (CycleReport, RequestCounts) {
    let (live, enabled) = stack.live_and_enabled().unwrap();
    let (report, graph) = cycle(stack, "initial").await;
    assert_eq!(report.kind, RunKind::Initial);
    assert_eq!(graph.duplicates_returned, replays);
    // A replayed entry is skipped, unless its manager reference can now be applied (the
    // manager was created after the first entry): then it is a manager PATCH, synced.
    assert_eq!(report.users.failed, 0);
    assert_eq!(report.users.total(), live + replays);
    assert!(
        report.users.synced >= enabled && report.users.synced <= enabled + replays,
        "{:?}",
        report.users
    );
    // One POST per enabled user, and one PATCH per manager reference applied by the
    // run's reference pass (a manager created after its report).
    let counters = stack.scim.counters(&stack.org_id);
    assert_eq!(counters.create, enabled, "one POST per enabled user");
    assert_eq!(report.scim_writes, enabled + counters.patch);
    (report, graph)
}

fn changed_ids(change: &ChangeReport) -> HashSet<&String> {
    [
        &change.updated_ids,
        &change.soft_deleted_ids,
        &change.hard_deleted_ids,
        &change.new_ids,
        &change.restored_ids,
        &change.disabled_ids,
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn some_changes() -> ChangeStep {
    ChangeStep {
        updates: 60,
        soft_deletes: 12,
        hard_deletes: 6,
        new_users: 20,
        restores: 3,
        disables: 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_users_on_the_same_and_later_pages_are_counted_and_applied_once() {
    let every = 5;
    let graph = GraphSimConfig {
        duplicate_every: Some(every),
        ..GraphSimConfig::default()
    };
    let stack = stack("edge_dups", 1_000, 100, graph).await;
    let (live, _) = stack.live_and_enabled().unwrap();
    initial(&stack, live / every as u64).await;
    assert_eq!(
        stack.scim.users(&stack.org_id).len() as u64,
        stack.live_and_enabled().unwrap().1,
        "no duplicate webex users"
    );

    let change = stack.change(&some_changes()).unwrap();
    let (report, graph) = cycle(&stack, "incremental").await;
    assert_eq!(report.kind, RunKind::Incremental);
    // The round lists the changed users the default selection tracks, a fifth of them twice.
    let unique = graph.objects_returned - graph.duplicates_returned;
    assert_eq!(graph.duplicates_returned, unique / every as u64);
    assert!(unique <= changed_ids(&change).len() as u64 && unique > 50);
    assert_eq!(report.users.failed, 0);
    assert_writes(&report);

    let (unchanged, _) = cycle(&stack, "unchanged").await;
    assert_eq!(
        (unchanged.users, unchanged.scim_writes),
        (Counts::default(), 0)
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_pages_with_next_links_are_followed() {
    let graph = GraphSimConfig {
        empty_page_every: Some(2),
        ..GraphSimConfig::default()
    };
    let stack = stack("edge_empty", 1_000, 100, graph).await;
    let (_, graph) = initial(&stack, 0).await;
    assert!(graph.empty_pages >= 4, "{graph:?}");
    stack.change(&some_changes()).unwrap();
    let (report, _) = cycle(&stack, "incremental").await;
    assert_writes(&report);
    let (unchanged, _) = cycle(&stack, "unchanged").await;
    assert_eq!(
        (unchanged.users, unchanged.scim_writes),
        (Counts::default(), 0)
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_pages_are_followed() {
    let graph = GraphSimConfig {
        short_pages: true,
        ..GraphSimConfig::default()
    };
    let stack = stack("edge_short", 1_000, 100, graph).await;
    let (live, _) = stack.live_and_enabled().unwrap();
    let (_, graph) = initial(&stack, 0).await;
    assert!(
        graph.delta_pages > live.div_ceil(100),
        "some pages were short: {graph:?}"
    );
    stack.change(&some_changes()).unwrap();
    let (report, _) = cycle(&stack, "incremental").await;
    assert_writes(&report);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_503_and_504_answers_are_retried() {
    let graph = GraphSimConfig {
        fail_every: Some(3),
        ..GraphSimConfig::default()
    };
    let stack = stack("edge_flaky", 1_000, 100, graph).await;
    let (_, graph) = initial(&stack, 0).await;
    // Every third request failed, and each failure was retried.
    assert!(graph.transient_errors >= 3, "{graph:?}");
    assert_eq!(
        graph.delta_requests,
        graph.delta_pages + graph.transient_errors
    );
    stack.change(&some_changes()).unwrap();
    let (report, _) = cycle(&stack, "incremental").await;
    assert_writes(&report);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_ru_budget_throttles_yet_the_run_converges() {
    // 40 RU per 10 s and about 60 pages: most of the second half waits for the bucket.
    let graph = GraphSimConfig {
        ru_budget_per_10s: Some(40),
        ..GraphSimConfig::default()
    };
    let stack = stack("edge_throttle", 600, 10, graph).await;
    let (_, graph) = initial(&stack, 0).await;
    assert!(graph.throttled > 0, "{graph:?}");
    assert_eq!(graph.delta_requests, graph.delta_pages + graph.throttled);
    assert_eq!(graph.low_priority_requests, graph.delta_requests);
    stack.shutdown().await.unwrap();
}

/// After an initial cycle Graph resets the tenant's sync state: the next cycle falls back to
/// a full enumeration, converges, and writes nothing because nothing changed.
async fn reset_falls_back_to_a_clean_full_enumeration(label: &str, mode: ResetMode) {
    let stack = stack(label, 300, 50, GraphSimConfig::default()).await;
    let (live, _) = stack.live_and_enabled().unwrap();
    initial(&stack, 0).await;
    stack.graph.reset(&stack.entra_tenant, mode).unwrap();

    let (resync, graph) = cycle(&stack, "after reset").await;
    assert_eq!(
        resync.kind,
        RunKind::Initial,
        "fell back to a full enumeration"
    );
    assert_eq!(graph.reset_refusals, 1, "{graph:?}");
    assert_eq!(
        resync.users,
        Counts {
            synced: 0,
            skipped: live,
            failed: 0
        },
        "every live user seen again, none changed"
    );
    assert_eq!(
        resync.scim_writes, 0,
        "nothing changed: no write, no spurious deactivation"
    );

    let (next, graph) = cycle(&stack, "after resync").await;
    assert_eq!(
        next.kind,
        RunKind::Incremental,
        "a fresh deltaLink was stored"
    );
    assert_eq!((graph.reset_refusals, next.scim_writes), (0, 0));
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_gone_with_location() {
    reset_falls_back_to_a_clean_full_enumeration("edge_reset_loc", ResetMode::GoneWithLocation)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_gone_without_location() {
    reset_falls_back_to_a_clean_full_enumeration(
        "edge_reset_noloc",
        ResetMode::GoneWithoutLocation,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_sync_state_not_found() {
    reset_falls_back_to_a_clean_full_enumeration("edge_reset_ssnf", ResetMode::SyncStateNotFound)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_sync_state_not_found_capitalised() {
    reset_falls_back_to_a_clean_full_enumeration(
        "edge_reset_ssnf_cap",
        ResetMode::SyncStateNotFoundCapitalised,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_resync_required_nested() {
    reset_falls_back_to_a_clean_full_enumeration(
        "edge_reset_nested",
        ResetMode::ResyncRequiredNested,
    )
    .await;
}

/// One write per synced user, plus the reference pass's manager PATCHes (new users whose
/// manager came after them): never fewer writes than synced users, never more than twice.
fn assert_writes(report: &CycleReport) {
    assert!(
        report.scim_writes >= report.users.synced && report.scim_writes <= 2 * report.users.synced,
        "{} writes for {} synced users",
        report.scim_writes,
        report.users.synced
    );
}
