//! End-to-end through the whole fleet: the coordinator's Graph client paces itself under the
//! RU budget (no 429 when it knows the budget), and access tokens that expire several times
//! during one enumeration are refreshed without restarting it.

use std::path::PathBuf;
use std::time::Duration;

use dirsync_coordinator::runs::RunKind;
use dirsync_load_tests::fleet::{CycleReport, Stack, StackOptions};
use dirsync_load_tests::graph_sim::{GraphSimConfig, RequestCounts};
use dirsync_load_tests::synthetic::ChangeStep;
use dirsync_proto::Counts;

fn worker_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo"))
}

/// A stack whose runner keeps to `runner_budget` RU per 10 s, with one worker.
async fn stack(
    label: &str,
    users: usize,
    page_size: usize,
    graph: GraphSimConfig,
    runner_budget: u32,
) -> Stack {
    let opts = StackOptions {
        page_size,
        graph,
        ..StackOptions::new(label, users)
    };
    let mut stack = Stack::start(&opts).await.unwrap();
    stack.runner = stack.runner.clone().with_graph_budget(runner_budget);
    stack.spawn_worker(&worker_exe()).unwrap();
    stack
}

fn requests(stack: &Stack) -> RequestCounts {
    stack.graph.requests(&stack.entra_tenant).unwrap()
}

/// Live users in the tenant, and how many of them are enabled.
/// The initial cycle of a fresh tenant, checked for exact counts; the Graph counters after it.
async fn initial(stack: &Stack) -> (CycleReport, RequestCounts) {
    let (live, enabled) = stack.live_and_enabled().unwrap();
    let report = stack.cycle("initial", None).await.unwrap();
    assert!(report.converged, "initial: {:?}", report.verdict);
    assert_eq!(report.kind, RunKind::Initial);
    assert_eq!(
        report.users,
        Counts {
            synced: enabled,
            skipped: live - enabled,
            failed: 0
        }
    );
    assert_eq!(report.redis_counts, report.users);
    (report, requests(stack))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_that_knows_the_budget_is_never_throttled() {
    // 40 RU per 10 s and about 50 pages: unpaced, the walk would be throttled (graph_edges'
    // tiny-budget test); paced to the same budget, Graph never has to refuse a request.
    let budget = 40;
    let graph = GraphSimConfig {
        ru_budget_per_10s: Some(budget),
        ..GraphSimConfig::default()
    };
    let stack = stack("pacing_budget", 500, 10, graph, budget).await;
    let (report, graph) = initial(&stack).await;
    assert!(
        graph.delta_pages > u64::from(budget),
        "more pages than one window's budget: {graph:?}"
    );
    assert_eq!(graph.throttled, 0, "{graph:?}");
    assert_eq!(
        graph.delta_requests, graph.delta_pages,
        "no retries: {graph:?}"
    );
    assert_eq!(graph.objects_returned, report.users.total());
    // The walk took at least as long as the budget allows: (pages − burst) / 4 per second.
    let floor = (graph.delta_pages - u64::from(budget)) * 1_000 / 4;
    assert!(
        report.wall_ms >= floor,
        "{} ms for {} pages",
        report.wall_ms,
        graph.delta_pages
    );

    // The next run starts with the bucket this one drained, and still is not throttled.
    stack
        .change(&ChangeStep {
            updates: 30,
            new_users: 10,
            ..ChangeStep::default()
        })
        .unwrap();
    let next = stack.cycle("incremental", None).await.unwrap();
    assert!(next.converged, "incremental: {:?}", next.verdict);
    assert_eq!(next.kind, RunKind::Incremental);
    let after = requests(&stack);
    assert_eq!(after.throttled, 0, "{after:?}");
    assert!(after.delta_pages > graph.delta_pages);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_expire_during_the_walk_are_refreshed_without_restarting_it() {
    // One-second tokens, and a walk of about 16 pages paced to 10 per 10 s after a burst of
    // ten: the walk lasts several seconds, so several tokens expire under it.
    let graph = GraphSimConfig {
        token_lifetime: Duration::from_secs(1),
        ..GraphSimConfig::default()
    };
    let stack = stack("pacing_tokens", 600, 40, graph, 10).await;
    let (report, graph) = initial(&stack).await;
    assert!(
        report.wall_ms >= 3_000,
        "the walk lasted {} ms",
        report.wall_ms
    );
    assert!(graph.tokens_issued >= 4, "{graph:?}");
    assert_eq!(
        graph.delta_rounds, 1,
        "one walk, never restarted: {graph:?}"
    );
    assert_eq!(graph.objects_returned, report.users.total());
    assert_eq!(graph.sync_state_not_found, 0, "{graph:?}");
    stack.shutdown().await.unwrap();
}
