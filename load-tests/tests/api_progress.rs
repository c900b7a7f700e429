//! `GET /tenants/{id}/progress` against a running fleet: polled while a cycle runs, its
//! counts only grow and end at the cycle's; after the run they come from the Redis counters,
//! and from PostgreSQL's `batch_results` once the run's keys are flushed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::api::progress::{CountsSource, Progress};
use dirsync_coordinator::cli::Cli;
use dirsync_load_tests::fleet::{Stack, StackOptions};

async fn progress(stack: &Stack) -> Option<Progress> {
    let path = format!("/tenants/{}/progress", stack.tenant_id.0);
    let (status, body) = stack.api(Method::GET, &path, None).await.unwrap();
    match status {
        StatusCode::OK => Some(serde_json::from_value(body).unwrap()),
        // Before the cycle has opened its run.
        StatusCode::NOT_FOUND => None,
        other => panic!("progress answered {other}: {body}"),
    }
}

/// `dirsync tenant progress <tenant> <args>`, in-process against the stack's API.
async fn cli_progress(stack: &Stack, args: &[&str]) -> anyhow::Result<()> {
    let tenant = stack.tenant_id.0.to_string();
    let mut argv = vec![
        "dirsync",
        "--api-url",
        &stack.api_url(),
        "--api-token",
        stack.api_token.expose_secret(),
        "tenant",
        "progress",
        &tenant,
    ]
    .into_iter()
    .map(str::to_string)
    .collect::<Vec<_>>();
    argv.extend(args.iter().map(|s| s.to_string()));
    dirsync_coordinator::cli::run(Cli::try_parse_from(argv)?, CancellationToken::new()).await
}

fn counts(p: &Progress) -> (u64, u64, u64, u64) {
    (
        p.batches_recorded,
        p.users_synced,
        p.users_skipped,
        p.users_failed,
    )
}

/// Every count of `later` is at least the one of `earlier`.
fn grew(earlier: &Progress, later: &Progress) -> bool {
    let (a, b) = (counts(earlier), counts(later));
    a.0 <= b.0 && a.1 <= b.1 && a.2 <= b.2 && a.3 <= b.3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_follows_the_run_and_falls_back_to_postgres() {
    let stack = Stack::start_with_workers(&StackOptions::new("api_progress", 2000), 1)
        .await
        .unwrap();

    let done = AtomicBool::new(false);
    let cycle = async {
        let report = stack.cycle("initial", None).await;
        done.store(true, Ordering::SeqCst);
        report
    };
    let poll = async {
        let mut seen = Vec::new();
        while !done.load(Ordering::SeqCst) {
            if let Some(p) = progress(&stack).await {
                seen.push(p);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    };
    // `tenant progress --watch`, started once the run is going, ends when it completes.
    let watch = async {
        while !done.load(Ordering::SeqCst) {
            if progress(&stack)
                .await
                .is_some_and(|p| p.state != "completed")
            {
                return Some(cli_progress(&stack, &["--watch"]).await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    };
    let (report, seen, watched) = tokio::join!(cycle, poll, watch);
    let report = report.unwrap();
    assert!(report.converged, "{:?}", report.verdict);
    let run = report.run_id.0;
    watched.expect("the run was never seen going").unwrap();

    assert!(
        seen.iter().any(|p| p.state != "completed"),
        "no progress was seen while the run was going: {seen:?}"
    );
    for p in &seen {
        assert_eq!(p.run_id, run);
        assert!(
            p.batches_recorded <= u64::from(p.batches_published),
            "{p:?}"
        );
    }
    // Each source only grows. Across sources it may step back for a moment: a worker adds
    // to Redis right after its PostgreSQL commit, and PostgreSQL answers only until the
    // run's first batch reaches Redis.
    for source in [CountsSource::Redis, CountsSource::Postgres] {
        let of_source: Vec<&Progress> = seen.iter().filter(|p| p.from == source).collect();
        for pair in of_source.windows(2) {
            assert!(
                grew(pair[0], pair[1]),
                "{source:?}: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    assert!(
        seen.iter().any(|p| p.from == CountsSource::Redis),
        "the redis counters were never read: {seen:?}"
    );

    let after = progress(&stack).await.unwrap();
    let want = (
        after.batches_recorded,
        report.users.synced,
        report.users.skipped,
        report.users.failed,
    );
    assert_eq!(after.run_id, run);
    assert_eq!(after.state, "completed");
    assert_eq!(after.from, CountsSource::Redis);
    assert_eq!(counts(&after), want);
    assert_eq!(report.redis_counts, report.users);
    // The walk's batches; the reference pass may send more after it.
    let total = after.total_batches.expect("known once the walk is over");
    assert!(total >= 10 && total <= after.batches_published, "{after:?}");
    assert_eq!(after.batches_recorded, u64::from(after.batches_published));
    for p in &seen {
        assert!(grew(p, &after), "{p:?} exceeds the final {after:?}");
    }

    cli_progress(&stack, &[]).await.unwrap();
    cli_progress(&stack, &["--json"]).await.unwrap();

    // Flushed counters: PostgreSQL answers, with the same counts.
    let topology = stack.env.topology();
    let mut redis = redis::Client::open(stack.env.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deleted: u64 = redis::cmd("DEL")
        .arg(topology.run_counts_key(report.run_id))
        .arg(topology.run_counted_key(report.run_id))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let flushed = progress(&stack).await.unwrap();
    assert_eq!(flushed.from, CountsSource::Postgres);
    assert_eq!(flushed.run_id, run);
    assert_eq!(flushed.state, "completed");
    assert_eq!(counts(&flushed), want);
    assert_eq!(flushed.total_batches, after.total_batches);

    stack.shutdown().await.unwrap();
}
