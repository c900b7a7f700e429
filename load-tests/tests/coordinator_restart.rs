//! A coordinator that dies mid-walk: its run is resumed from the checkpoint, and the batches
//! it may already have published are republished byte for byte, never with other content.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::TenantStore;
use dirsync_coordinator::graph::GraphClient;
use dirsync_coordinator::runs::{RunKind, RunStore, Staged};
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_proto::{BatchMessage, Counts, RemovedReason, SourceUser, WIRE_VERSION};

fn demo_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_batch_is_republished_verbatim_on_resume() {
    let stack = Stack::start(&StackOptions::new("restart_staged", 300))
        .await
        .unwrap();
    stack.spawn_worker(&demo_exe()).unwrap();
    let (live, enabled) = stack.live_and_enabled().unwrap();

    // What a coordinator leaves behind when it dies with batches 0 and 1 staged and neither
    // confirmed by the broker: their bytes (here tombstones of users Webex never had, so
    // their effect is recognisable) and the link after their pages (here the walk's start).
    let tenant = TenantStore::new(stack.env.pool.clone())
        .with_key(stack.env.secrets_key.clone())
        .get(stack.tenant_id)
        .await
        .unwrap();
    let start = GraphClient::new(reqwest::Client::new(), &tenant).initial_users_url();
    let runs = RunStore::new(stack.env.pool.clone());
    let run = runs
        .create(stack.tenant_id, RunKind::Initial, &start)
        .await
        .unwrap();
    for seq in 0..2u32 {
        let staged = BatchMessage {
            version: WIRE_VERSION,
            tenant_id: stack.tenant_id,
            run_id: run,
            seq,
            users: vec![SourceUser {
                id: format!("never-synced-{seq}"),
                removed: Some(RemovedReason::Deleted),
                attributes: Default::default(),
            }],
            groups: Vec::new(),
            dry_run: false,
        };
        let bytes = staged.encode();
        let batch = Staged {
            run,
            kind: RunKind::Initial,
            cursor_after: &start,
            seq,
            bytes: &bytes,
            confirmed_below: 0,
        };
        runs.stage(&batch).await.unwrap();
    }

    let outcome = stack
        .runner
        .sync_tenant(stack.tenant_id, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        outcome.run_id, run,
        "the open run was resumed, not replaced"
    );
    assert_eq!(
        outcome.counts,
        Counts {
            synced: enabled,
            skipped: live - enabled + 2,
            failed: 0
        }
    );
    let first: Vec<(i32, i32, i32)> = sqlx::query_as(
        "SELECT seq, synced, skipped FROM batch_results WHERE run_id = $1 AND seq < 2 ORDER BY seq",
    )
    .bind(run.0)
    .fetch_all(&stack.env.pool)
    .await
    .unwrap();
    assert_eq!(
        first,
        vec![(0, 0, 1), (1, 0, 1)],
        "batches 0 and 1 carried the staged bytes, not re-read pages"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM staged_batches WHERE run_id = $1")
        .bind(run.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "a completed walk keeps no staged batch");
    assert!(stack.verdict().unwrap().converged);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_coordinator_is_resumed_by_another() {
    let opts = StackOptions {
        graph_latency: Duration::from_millis(40),
        ..StackOptions::new("restart_kill", 3_000)
    };
    let stack = Stack::start(&opts).await.unwrap();
    stack.spawn_worker(&demo_exe()).unwrap();
    let (live, enabled) = stack.live_and_enabled().unwrap();
    let coordinator = || {
        Command::new(demo_exe())
            .args(["dirsync", "sync", &stack.tenant_id.to_string()])
            .envs(stack.env.process_env())
            .env("DIRSYNC_LEASE_SECS", "1")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };

    let mut first = coordinator();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let published: Option<i32> =
            sqlx::query_scalar("SELECT batches_published FROM runs WHERE tenant_id = $1")
                .bind(stack.tenant_id.0)
                .fetch_optional(&stack.env.pool)
                .await
                .unwrap();
        if published.unwrap_or(0) >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first coordinator never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let state: String = sqlx::query_scalar("SELECT state FROM runs WHERE tenant_id = $1")
        .bind(stack.tenant_id.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    assert_eq!(state, "enumerating", "the kill landed mid-walk");

    // The dead coordinator's lease runs out; the next one takes the tenant over.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let status = tokio::time::timeout(Duration::from_secs(120), coordinator().wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the second coordinator failed: {status}");

    let runs: Vec<(String, i64, i64, i64)> =
        sqlx::query_as("SELECT state, synced, skipped, failed FROM runs WHERE tenant_id = $1")
            .bind(stack.tenant_id.0)
            .fetch_all(&stack.env.pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), 1, "one run, resumed: {runs:?}");
    let (state, synced, skipped, failed) = runs[0].clone();
    assert_eq!(state, "completed");
    assert_eq!(
        (synced as u64, skipped as u64, failed),
        (enabled, live - enabled, 0),
        "exact counts"
    );
    let verdict = stack.verdict().unwrap();
    assert!(verdict.converged, "{verdict:?}");
    assert_eq!(
        stack.scim.users(&stack.org_id).len() as u64,
        enabled,
        "no duplicate webex users"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_by_a_graph_error_stays_open_and_is_resumed() {
    let stack = Stack::start(&StackOptions::new("restart_error", 300))
        .await
        .unwrap();
    stack.spawn_worker(&demo_exe()).unwrap();
    let set_secret = |secret: &'static str| {
        sqlx::query("UPDATE tenants SET client_secret = $2 WHERE id = $1")
            .bind(stack.tenant_id.0)
            .bind(secret)
            .execute(&stack.env.pool)
    };
    let good: String = sqlx::query_scalar("SELECT client_secret FROM tenants WHERE id = $1")
        .bind(stack.tenant_id.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    set_secret("revoked").await.unwrap();
    let err = stack
        .runner
        .sync_tenant(stack.tenant_id, None, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("token"), "{err}");
    let (run, state): (uuid::Uuid, String) =
        sqlx::query_as("SELECT id, state FROM runs WHERE tenant_id = $1")
            .bind(stack.tenant_id.0)
            .fetch_one(&stack.env.pool)
            .await
            .unwrap();
    assert_eq!(state, "enumerating", "the run is left open, not failed");

    sqlx::query("UPDATE tenants SET client_secret = $2 WHERE id = $1")
        .bind(stack.tenant_id.0)
        .bind(&good)
        .execute(&stack.env.pool)
        .await
        .unwrap();
    let outcome = stack
        .runner
        .sync_tenant(stack.tenant_id, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.run_id.0, run, "the same run was resumed");
    assert!(stack.verdict().unwrap().converged);
    stack.shutdown().await.unwrap();
}
