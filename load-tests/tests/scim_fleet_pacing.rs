//! Measurement, not a pass/fail check of speed: a fleet of worker processes syncing one
//! tenant into an org whose SCIM budget is limited (200 requests/s by default); how much of
//! the budget the fleet uses, and how many requests are answered 429.
//!
//! Run in release, on an otherwise idle machine:
//! `PACING_USERS=100000 PACING_RATE=200 PACING_WORKERS=4 cargo nextest run --release
//!  -p dirsync-load-tests --test scim_fleet_pacing --run-ignored only --no-capture`
//! `PACING_BULK=0` measures against a target without `/Bulk` (one request per user), where
//! the budget, not the fleet, is what limits the pace.

use std::path::Path;

use dirsync_load_tests::fleet::{Stack, StackOptions};

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose, in release"]
async fn a_fleet_keeps_to_the_org_budget() {
    let (users, rate, workers) = (
        env("PACING_USERS", 100_000),
        env("PACING_RATE", 200),
        env("PACING_WORKERS", 4),
    );
    let bulk = env("PACING_BULK", 1) != 0;
    let stack = Stack::start(&StackOptions {
        scim_rate: Some(rate),
        scim_bulk: bulk,
        ..StackOptions::new("fleet_pacing", users as usize)
    })
    .await
    .unwrap();
    let demo = Path::new(env!("CARGO_BIN_EXE_demo"));
    for _ in 0..workers {
        stack.spawn_worker(demo).unwrap();
    }
    let report = stack.cycle("initial", None).await.unwrap();
    let counters = stack.scim.counters(&stack.org_id);
    let secs = report.wall_ms as f64 / 1000.0;
    let achieved = report.scim_requests as f64 / secs;
    println!(
        "{}",
        serde_json::json!({
            "users": users,
            "workers": workers,
            "bulk": bulk,
            "limit_per_s": rate,
            "wall_s": secs,
            "http_requests": report.scim_requests,
            "requests_per_created_user": report.scim_requests as f64 / report.users.synced.max(1) as f64,
            "achieved_per_s": achieved,
            "share_of_limit": achieved / f64::from(rate),
            "answered_429": counters.throttled,
            "share_429": counters.throttled as f64 / report.scim_requests.max(1) as f64,
            "converged": report.converged,
        })
    );
    assert!(report.converged, "{:?}", report.verdict);
    stack.shutdown().await.unwrap();
}
