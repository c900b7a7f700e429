//! Poison batches against the real RabbitMQ, PostgreSQL and Redis: a batch no worker can
//! decode and a batch that fails every time are dead-lettered (at once, or past the
//! delivery limit), the run completes with their objects counted failed (in PostgreSQL and
//! in the live Redis counters alike), an operator lists them through the admin API and the
//! `dirsync` command line, re-drives the fixable one and is refused the undecodable one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::api::{self, ApiState};
use dirsync_coordinator::broker::{self, BatchPublisher};
use dirsync_coordinator::dead_letters::{self, DeadLetterView, Redriver};
use dirsync_coordinator::graph::GraphClient;
use dirsync_coordinator::http::{self, HttpState};
use dirsync_coordinator::runs::{RunKind, RunStore};
use dirsync_coordinator::{RunOutcome, TenantStore};
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::serve;
use dirsync_proto::Counts;
use dirsync_worker::scim::RetryPolicy;
use dirsync_worker::{Worker, WorkerSettings};

/// An operator's view of one stack: the admin API with re-drives, and its token.
struct Operator {
    url: String,
    token: SecretString,
}

impl Operator {
    async fn call(&self, method: Method, path: &str) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn letters(&self, query: &str) -> Vec<DeadLetterView> {
        let (status, body) = self
            .call(Method::GET, &format!("/dead-letters?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// `dirsync dead-letter <args> --json` against this API: exit code and stdout.
    async fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_demo"));
        let output = tokio::process::Command::new(exe)
            .arg("dirsync")
            .arg("dead-letter")
            .args(args)
            .arg("--json")
            .env("DIRSYNC_API_URL", &self.url)
            .env("DIRSYNC_API_TOKEN", self.token.expose_secret())
            .output()
            .await
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

/// What each test runs beside the stack: an in-process worker that fails fast (one SCIM
/// attempt, a 1 ms requeue hold, no tenant cache), the dead-letter consumer, and the admin
/// API with re-drives.
async fn fleet(stack: &Stack, stop: &CancellationToken) -> Operator {
    let env = &stack.env;
    let amqp = lapin::Connection::connect(&env.amqp_url, Default::default())
        .await
        .unwrap();
    let redis =
        redis::aio::ConnectionManager::new(redis::Client::open(env.redis_url.as_str()).unwrap())
            .await
            .unwrap();
    let settings = WorkerSettings {
        secrets: Some(env.secrets_key.clone()),
        requeue_delay: Duration::from_millis(1),
        tenant_cache_ttl: Duration::ZERO,
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..WorkerSettings::default()
    };
    let worker = Worker::new(
        env.pool.clone(),
        redis.clone(),
        &amqp,
        env.topology(),
        settings,
    )
    .await
    .unwrap();
    let worker_stop = stop.clone();
    tokio::spawn(async move {
        let _ = worker.run(worker_stop).await;
        let _ = amqp.close(200, "test over".into()).await;
    });
    tokio::spawn(dead_letters::serve(
        env.pool.clone(),
        env.amqp_url.clone(),
        env.topology(),
        Some(redis.clone()),
        stop.clone(),
    ));
    let tenants = TenantStore::new(env.pool.clone()).with_key(env.secrets_key.clone());
    let state = ApiState::new(env.pool.clone(), tenants.clone())
        .with_redis(redis.clone(), env.topology())
        .with_redriver(Redriver::new(
            env.pool.clone(),
            &env.amqp_url,
            env.topology(),
            Some(redis),
        ));
    let served = serve::spawn(
        http::router(HttpState::new(tenants, None).with_api(state)),
        serve::any_loopback_port(),
        stop.clone(),
    )
    .await
    .unwrap();
    let (_, token) = api::auth::create(&env.pool, "operator").await.unwrap();
    Operator {
        url: format!("{}{}", served.base_url(), api::BASE),
        token,
    }
}

/// The tenant's users in escrow, with the run that failed them last, sorted.
async fn escrowed(stack: &Stack) -> Vec<(String, uuid::Uuid)> {
    sqlx::query_as(
        "SELECT entra_id, last_run_id FROM escrow WHERE tenant_id = $1 ORDER BY entra_id",
    )
    .bind(stack.tenant_id.0)
    .fetch_all(&stack.env.pool)
    .await
    .unwrap()
}

async fn sync(stack: &Stack) -> RunOutcome {
    stack
        .runner
        .sync_tenant(stack.tenant_id, None, &CancellationToken::new())
        .await
        .unwrap()
}

/// Waits for `done` to hold, re-reading it; panics past a generous bound.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_batches_are_dead_lettered_and_the_run_completes() {
    let stack = Stack::start(&StackOptions::new("dead_undecodable", 300))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let operator = fleet(&stack, &stop).await;

    // A run whose two batches are poison, published as a coordinator publishes (with its
    // attribution headers): bytes that are not JSON, and a batch of a wire version no
    // worker reads, carrying two users. The run has walked to its end and waits for them.
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
    runs.finish_enumeration(run, 2, &start).await.unwrap();
    let other_version = serde_json::json!({
        "version": 99, "tenant_id": stack.tenant_id, "run_id": run, "seq": 1,
        "users": [{"id": "poison-a"}, {"id": "poison-b"}]
    })
    .to_string();
    let amqp = broker::connect(&stack.env.amqp_url).await.unwrap();
    let publisher = BatchPublisher::new(&amqp, &stack.env.topology())
        .await
        .unwrap();
    let bodies: [&[u8]; 2] = [b"\x00\xff not a batch", other_version.as_bytes()];
    for (seq, bytes) in bodies.into_iter().enumerate() {
        publisher
            .publish(stack.tenant_id, run, seq as u32, bytes)
            .await
            .unwrap();
    }

    let outcome = sync(&stack).await;
    assert_eq!(outcome.run_id, run, "the waiting run completed");
    let expected = Counts {
        synced: 0,
        skipped: 0,
        failed: 2,
    };
    assert_eq!(
        outcome.counts, expected,
        "the poison batches' users count failed"
    );
    assert_eq!(
        stack.redis_counts(run).await.unwrap(),
        expected,
        "the live counters hold the dead letters' failures once"
    );

    assert_eq!(
        escrowed(&stack).await,
        vec![],
        "no user of an undecodable batch can be named for a retry"
    );

    let letters = operator.letters(&format!("run={}", run.0)).await;
    let mut seen: Vec<(Option<i32>, &str, i32, bool, bool)> = letters
        .iter()
        .map(|l| {
            (
                l.seq,
                l.reason.as_str(),
                l.users,
                l.decode_error.is_some(),
                l.recorded_failed,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (Some(0), "rejected", 0, true, true),
            (Some(1), "rejected", 2, true, true)
        ],
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .all(|l| l.tenant_id == Some(stack.tenant_id.0))
    );
    let garbage = letters.iter().find(|l| l.seq == Some(0)).unwrap();
    let (status, detail) = operator
        .call(Method::GET, &format!("/dead-letters/{}", garbage.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["headers"]["x-first-death-reason"], "rejected");
    assert!(
        detail["body"].as_str().unwrap().contains("not a batch"),
        "{detail}"
    );

    // Nothing to republish: refused, through the API and the command line (exit 6).
    let (status, refused) = operator
        .call(
            Method::POST,
            &format!("/dead-letters/{}/redrive", garbage.id),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("cannot be re-driven"),
        "{refused}"
    );
    let (code, _) = operator.cli(&["redrive", &garbage.id.to_string()]).await;
    assert_eq!(code, Some(6));
    let (code, out) = operator.cli(&["list", "--run", &run.0.to_string()]).await;
    assert_eq!(code, Some(0), "{out}");
    let listed: Vec<DeadLetterView> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 2);

    stop.cancel();
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_always_fails_is_dead_lettered_then_re_driven() {
    let stack = Stack::start(&StackOptions::new("dead_failing", 300))
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let operator = fleet(&stack, &stop).await;
    let (live, enabled) = stack.live_and_enabled().unwrap();

    // Webex unreachable: every batch fails transiently, is requeued, and is dead-lettered
    // once the broker has handed it over past the delivery limit.
    let (good_url,): (String,) = sqlx::query_as("SELECT scim_base_url FROM tenants WHERE id = $1")
        .bind(stack.tenant_id.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    let closed = format!("http://127.0.0.1:1/identity/scim/{}/v2", stack.org_id);
    sqlx::query("UPDATE tenants SET scim_base_url = $2 WHERE id = $1")
        .bind(stack.tenant_id.0)
        .bind(&closed)
        .execute(&stack.env.pool)
        .await
        .unwrap();

    let outcome = sync(&stack).await;
    // Every batch that needs Webex failed; a batch with nothing to ask of it (users the
    // mapping skips) went through.
    let all_failed = outcome.counts;
    assert_eq!(all_failed.synced, 0, "{all_failed:?}");
    assert!(all_failed.failed > 0, "{all_failed:?}");
    assert_eq!(
        all_failed.failed + all_failed.skipped,
        live,
        "{all_failed:?}"
    );
    assert_eq!(
        stack.redis_counts(outcome.run_id).await.unwrap(),
        all_failed,
        "the live counters hold the dead letters' failures once"
    );
    let failed_objects: i64 =
        sqlx::query_scalar("SELECT count(*) FROM failed_objects WHERE run_id = $1")
            .bind(outcome.run_id.0)
            .fetch_one(&stack.env.pool)
            .await
            .unwrap();
    assert_eq!(
        failed_objects as u64, all_failed.failed,
        "each user failed, with the reason"
    );
    // Nothing lost: every failed user waits in escrow for the next run's retry.
    let failed_ids: Vec<(String, uuid::Uuid)> = sqlx::query_as(
        "SELECT entra_id, run_id FROM failed_objects WHERE run_id = $1 ORDER BY entra_id",
    )
    .bind(outcome.run_id.0)
    .fetch_all(&stack.env.pool)
    .await
    .unwrap();
    assert_eq!(
        escrowed(&stack).await,
        failed_ids,
        "the dead-lettered users are in escrow, failed by this run"
    );

    let letters = operator
        .letters(&format!("tenant={}", stack.tenant_id.0))
        .await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    for l in &letters {
        assert_eq!(l.reason, "delivery_limit", "{l:?}");
        assert_eq!(l.decode_error, None);
        assert_eq!(l.state, "held");
        assert_eq!(l.run_id, Some(outcome.run_id.0));
    }
    assert_eq!(
        letters.iter().map(|l| l.users as u64).sum::<u64>(),
        all_failed.failed,
        "{letters:?}"
    );

    // Webex is back: re-driving both records the batches with their real outcome.
    sqlx::query("UPDATE tenants SET scim_base_url = $2 WHERE id = $1")
        .bind(stack.tenant_id.0)
        .bind(&good_url)
        .execute(&stack.env.pool)
        .await
        .unwrap();
    let (code, out) = operator.cli(&["redrive", &letters[0].id.to_string()]).await;
    assert_eq!(code, Some(0), "{out}");
    let (status, body) = operator
        .call(
            Method::POST,
            &format!("/dead-letters/{}/redrive", letters[1].id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "redriven");

    let pool = stack.env.pool.clone();
    let run = outcome.run_id;
    eventually("both re-driven batches resolved", || {
        let pool = pool.clone();
        async move {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM dead_letters WHERE run_id = $1 AND state <> 'resolved'",
            )
            .bind(run.0)
            .fetch_one(&pool)
            .await
            .unwrap();
            open == 0
        }
    })
    .await;
    let (s, k, f): (i64, i64, i64) =
        sqlx::query_as("SELECT synced, skipped, failed FROM runs WHERE id = $1")
            .bind(run.0)
            .fetch_one(&stack.env.pool)
            .await
            .unwrap();
    let summary = Counts {
        synced: s as u64,
        skipped: k as u64,
        failed: f as u64,
    };
    assert_eq!(
        (summary.failed, summary.synced + summary.skipped),
        (0, live),
        "the completed run's summary follows its re-driven batches: {summary:?}"
    );
    assert_eq!(summary.synced, enabled, "{summary:?}");
    assert_eq!(
        stack.redis_counts(run).await.unwrap(),
        summary,
        "the live counters count each batch once, with its real outcome"
    );
    assert!(operator.letters("").await.is_empty(), "none held any more");
    assert_eq!(
        escrowed(&stack).await,
        vec![],
        "the worker that recorded the re-driven batches released their users"
    );
    // Managers were not in Webex during that run: their references wait for the next
    // run's reference pass, after which Webex is what Entra says.
    let next = sync(&stack).await;
    assert_eq!(next.counts.failed, 0, "{next:?}");
    assert!(stack.verdict().unwrap().converged);
    let (status, again) = operator
        .call(
            Method::POST,
            &format!("/dead-letters/{}/redrive", letters[0].id),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    stop.cancel();
    stack.shutdown().await.unwrap();
}
