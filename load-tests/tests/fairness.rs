//! Measurement, not a pass/fail check of speed: a 1,000-user tenant asks for a sync while a
//! large tenant (300,000 users by default) is in its initial cycle; how long until the small
//! one is done, and how much memory the coordinator process uses meanwhile.
//!
//! Run in release, on an otherwise idle machine:
//! `FAIRNESS_USERS=300000 cargo nextest run --release -p dirsync-load-tests --test fairness
//!  --run-ignored only --no-capture`

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::process::Command;

use dirsync_coordinator::TenantStore;
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::oracle;
use dirsync_proto::TenantId;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn run_state(stack: &Stack, tenant: TenantId) -> Option<(String, i32)> {
    sqlx::query_as("SELECT state, batches_published FROM runs WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT 1")
        .bind(tenant.0)
        .fetch_optional(&stack.env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose, in release"]
async fn a_small_tenant_is_not_starved_by_a_large_initial_cycle() {
    let users: usize = std::env::var("FAIRNESS_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let stack = Stack::start(&StackOptions::new("fairness", users))
        .await
        .unwrap();
    let small = stack.add_tenant("small tenant", 1_000, 99).await.unwrap();
    let tenants = TenantStore::new(stack.env.pool.clone());
    tenants.set_auto_sync(small.tenant_id, false).await.unwrap();
    let demo = Path::new(env!("CARGO_BIN_EXE_demo"));
    for _ in 0..2 {
        stack.spawn_worker(demo).unwrap();
    }
    let mut coordinator = Command::new(demo)
        .args(["dirsync", "serve"])
        .envs(stack.env.process_env())
        .env("DIRSYNC_MAX_CONCURRENT_RUNS", "4")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = coordinator.id().unwrap();
    let mut peak_kib = 0;
    let sample = |peak: &mut u64| *peak = (*peak).max(rss_kib(pid).unwrap_or(0));

    // Let the large tenant get well into its initial cycle.
    let pages = (users / 200) as i32;
    let started = Instant::now();
    loop {
        sample(&mut peak_kib);
        if let Some((_, published)) = run_state(&stack, stack.tenant_id).await
            && published >= pages / 4
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the large run never got going"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let asked = Instant::now();
    tenants.request_sync(small.tenant_id).await.unwrap();
    let small_done = loop {
        sample(&mut peak_kib);
        if let Some((state, _)) = run_state(&stack, small.tenant_id).await
            && state == "completed"
        {
            break asked.elapsed();
        }
        assert!(
            asked.elapsed() < Duration::from_secs(600),
            "the small tenant never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let large_busy = run_state(&stack, stack.tenant_id)
        .await
        .map(|(s, _)| s != "completed")
        .unwrap_or(false);
    loop {
        sample(&mut peak_kib);
        if let Some((state, _)) = run_state(&stack, stack.tenant_id).await
            && state == "completed"
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the large run never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let large_wall_ms: f64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM finished_at - started_at) * 1000)::float8 FROM runs WHERE tenant_id = $1",
    )
    .bind(stack.tenant_id.0)
    .fetch_one(&stack.env.pool)
    .await
    .unwrap();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(20), coordinator.wait()).await;

    let small_snapshot = stack.graph.snapshot(&small.entra_tenant).unwrap();
    assert!(oracle::check(&small_snapshot, &stack.scim.users(&small.org_id), true).converged);
    assert!(stack.verdict().unwrap().converged);
    println!(
        "{}",
        serde_json::json!({
            "large_users": users,
            "large_initial_wall_ms": large_wall_ms.round() as u64,
            "small_users": 1000,
            "small_request_to_done_ms": small_done.as_millis() as u64,
            "large_still_running_when_small_done": large_busy,
            "coordinator_peak_rss_mib": peak_kib / 1024,
        })
    );
    stack.shutdown().await.unwrap();
}
