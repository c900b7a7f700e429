//! Provision on demand over the admin API, against both simulators with a real fleet: a user
//! Entra has and Webex does not is created at once; asked again it is skipped as up to date;
//! a user out of the scope and a disabled one are skipped with why; a user Webex refuses
//! fails with the SCIM error, and succeeds when tried again once the cause is gone; unknown
//! users and instances are 404. On-demand runs do not disturb the cycle: the next one is
//! incremental, the instance's status names the cycle's run, and the org converges.
//!
//! And the priority lane: while an initial cycle keeps the batch queue full, a provision is
//! answered before the cycle's queued batches are recorded (an ordering, not a timing), and
//! the cycle still ends exact, including for a user it had already recorded and that a
//! provision then stamped.
//!
//! The measurement of the lane's latency during a 100,000-user initial cycle is
//! `provision_latency` below (ignored: run it on purpose, in release).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use dirsync_coordinator::provision::{DISABLED, OUT_OF_SCOPE, UP_TO_DATE};
use dirsync_coordinator::runs::RunKind;
use dirsync_coordinator::scope::Scope;
use dirsync_load_tests::fleet::{Stack, StackOptions, create_scim_user};
use dirsync_load_tests::graph_sim::{SimUser, UserState};
use dirsync_load_tests::synthetic::ChangeStep;
use dirsync_proto::RunId;

async fn provision(stack: &Stack, user: &str) -> (StatusCode, Value) {
    stack
        .api(
            Method::POST,
            &format!("/tenants/{}/provision", stack.tenant_id.0),
            Some(json!({ "user": user })),
        )
        .await
        .unwrap()
}

/// Provisions `user` and expects a 200.
async fn provisioned(stack: &Stack, user: &str) -> Value {
    let (status, body) = provision(stack, user).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn snapshot(stack: &Stack) -> Vec<SimUser> {
    stack.graph.snapshot(&stack.entra_tenant).unwrap()
}

fn user<'a>(users: &'a [SimUser], id: &str) -> &'a SimUser {
    users.iter().find(|u| u.user.id == id).unwrap()
}

/// The org's user with `user_name`, if any.
fn webex_user(stack: &Stack, user_name: &str) -> Option<Value> {
    stack
        .scim
        .users(&stack.org_id)
        .into_iter()
        .find(|u| u["userName"].as_str() == Some(user_name))
}

fn new_users(stack: &Stack, n: usize) -> Vec<String> {
    stack
        .change(&ChangeStep {
            new_users: n,
            ..ChangeStep::default()
        })
        .unwrap()
        .new_ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_provisioned_on_demand_with_their_result() {
    let stack = Stack::start_with_workers(&StackOptions::new("api_provision", 300), 1)
        .await
        .unwrap();
    let initial = stack.cycle("initial", None).await.unwrap();
    assert!(initial.converged, "{:?}", initial.verdict.problems);

    // A user new in Entra: created in Webex now, as the mapping says.
    let fresh = new_users(&stack, 4);
    let users = snapshot(&stack);
    let ada = &user(&users, &fresh[0]).user;
    assert!(webex_user(&stack, &ada.user_principal_name).is_none());
    assert!(
        !stack.verdict().unwrap().converged,
        "the new users are missing"
    );
    let first = provisioned(&stack, &ada.id).await;
    assert_eq!(first["result"], "success", "{first}");
    assert_eq!(first["action"], "created", "{first}");
    assert_eq!(first["entra_id"], ada.id.as_str());
    assert_eq!(
        first["user_principal_name"],
        ada.user_principal_name.as_str()
    );
    let created = webex_user(&stack, &ada.user_principal_name).expect("created in webex");
    assert_eq!(first["webex_id"], created["id"], "{first} {created}");
    assert_eq!(created["displayName"], ada.display_name.as_str());
    assert_eq!(created["externalId"], ada.id.as_str());
    assert_eq!(created["active"], json!(ada.account_enabled));

    // The same again: nothing to do.
    let again = provisioned(&stack, &ada.id).await;
    assert_eq!(again["result"], "skipped", "{again}");
    assert_eq!(again["reason"], UP_TO_DATE, "{again}");
    assert_eq!(again["webex_id"], created["id"]);

    // By user principal name too.
    let bo = &user(&users, &fresh[1]).user;
    let by_upn = provisioned(&stack, &bo.user_principal_name.to_uppercase()).await;
    assert_eq!(by_upn["result"], "success", "{by_upn}");
    assert_eq!(by_upn["entra_id"], bo.id.as_str());

    // A disabled user Webex never had.
    let disabled = users
        .iter()
        .find(|u| u.state == UserState::Live && !u.user.account_enabled)
        .expect("synthetic tenants have disabled users");
    let skipped = provisioned(&stack, &disabled.user.id).await;
    assert_eq!(skipped["result"], "skipped", "{skipped}");
    assert_eq!(skipped["reason"], DISABLED, "{skipped}");
    assert!(webex_user(&stack, &disabled.user.user_principal_name).is_none());

    // Webex refuses a user whose userName another org has: failed, with the SCIM error;
    // once the other org lets go, trying again succeeds.
    let cy = &user(&users, &fresh[2]).user;
    let other = stack.other_org_client().await.unwrap();
    let squatter = create_scim_user(&other, &cy.user_principal_name)
        .await
        .unwrap();
    let failed = provisioned(&stack, &cy.id).await;
    assert_eq!(failed["result"], "failed", "{failed}");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "{failed}");
    assert!(failed.get("webex_id").is_none(), "{failed}");
    other.delete_user(&squatter).await.unwrap();
    let retried = provisioned(&stack, &cy.id).await;
    assert_eq!(retried["result"], "success", "{retried}");
    assert_ne!(
        retried["run_id"], failed["run_id"],
        "each call is a run of its own"
    );

    // Unknown users and instances, and an empty user.
    let (status, body) = provision(&stack, "00000000-0000-4000-8000-00000000dead").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    let (status, _) = provision(&stack, "nobody@contoso.example").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let deleted = users
        .iter()
        .find(|u| u.state != UserState::Live)
        .map(|u| u.user.id.clone());
    if let Some(deleted) = deleted {
        let (status, _) = provision(&stack, &deleted).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a deleted user is not in the directory"
        );
    }
    let (status, _) = provision(&stack, "  ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = stack
        .api(
            Method::POST,
            &format!("/tenants/{}/provision", uuid::Uuid::new_v4()),
            Some(json!({ "user": ada.id })),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Out of the scope: skipped, with why.
    let dee = &user(&users, &fresh[3]).user;
    stack
        .set_scope(Scope {
            all: false,
            users: vec![ada.id.clone()],
            ..Scope::default()
        })
        .await
        .unwrap();
    let outside = provisioned(&stack, &dee.id).await;
    assert_eq!(outside["result"], "skipped", "{outside}");
    assert_eq!(outside["reason"], OUT_OF_SCOPE, "{outside}");
    assert!(webex_user(&stack, &dee.user_principal_name).is_none());
    stack.set_scope(Scope::default()).await.unwrap();

    // The cycle was not disturbed: the instance's last sync is still the initial one...
    let (_, status) = stack
        .api(
            Method::GET,
            &format!("/tenants/{}/status", stack.tenant_id.0),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        status["last_sync"]["run_id"],
        json!(initial.run_id.0),
        "{status}"
    );
    // ... and the next one finds the rest (the user out of scope then) and converges.
    let next = stack.cycle("after provisioning", None).await.unwrap();
    assert!(next.converged, "{:?}", next.verdict.problems);
    assert_eq!(next.users.failed, 0);
    stack.shutdown().await.unwrap();
}

/// `dirsync tenant provision` as a process (the demo binary's `dirsync` passthrough).
fn dirsync(stack: &Stack, args: &[&str]) -> std::process::Output {
    use secrecy::ExposeSecret;
    std::process::Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["dirsync", "--api-url", &stack.api_url()])
        .args(["--api-token", stack.api_token.expose_secret()])
        .env_remove("DIRSYNC_API_TOKEN")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_prints_the_result_and_exits_by_it() {
    let stack = Stack::start_with_workers(&StackOptions::new("cli_provision", 100), 1)
        .await
        .unwrap();
    stack.cycle("initial", None).await.unwrap();
    let fresh = new_users(&stack, 2);
    let users = snapshot(&stack);
    let id = stack.tenant_id.to_string();
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // A table, exit 0.
    let upn = &user(&users, &fresh[0]).user.user_principal_name;
    let created = dirsync(&stack, &["tenant", "provision", &id, upn]);
    assert_eq!(created.status.code(), Some(0), "{}", err(&created));
    for want in ["RESULT", "success", "created", upn.as_str(), "WEBEX ID"] {
        assert!(text(&created).contains(want), "{want}: {}", text(&created));
    }
    // Skipped is not an error; --json is the API's answer.
    let again = dirsync(&stack, &["tenant", "provision", &id, upn, "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", err(&again));
    let body: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(body["result"], "skipped");
    assert_eq!(body["reason"], UP_TO_DATE);
    // Failed: exit 1, the SCIM error shown.
    let taken = &user(&users, &fresh[1]).user;
    let other = stack.other_org_client().await.unwrap();
    create_scim_user(&other, &taken.user_principal_name)
        .await
        .unwrap();
    let failed = dirsync(&stack, &["tenant", "provision", &id, &taken.id]);
    assert_eq!(failed.status.code(), Some(1), "{}", err(&failed));
    assert!(text(&failed).contains("failed"), "{}", text(&failed));
    assert!(err(&failed).contains("failed"), "{}", err(&failed));
    // No such user: 5.
    let unknown = dirsync(
        &stack,
        &["tenant", "provision", &id, "nobody@contoso.example"],
    );
    assert_eq!(unknown.status.code(), Some(5), "{}", err(&unknown));
    stack.shutdown().await.unwrap();
}

/// The cycle's run: batches published and recorded.
async fn cycle_progress(stack: &Stack) -> Option<(RunId, i64, i64)> {
    sqlx::query_as::<_, (uuid::Uuid, i32, i64)>(
        "SELECT r.id, r.batches_published, \
         (SELECT count(*) FROM batch_results b WHERE b.run_id = r.id) \
         FROM runs r WHERE r.tenant_id = $1 AND r.kind <> 'on_demand' \
         ORDER BY r.started_at DESC LIMIT 1",
    )
    .bind(stack.tenant_id.0)
    .fetch_optional(&stack.env.pool)
    .await
    .unwrap()
    .map(|(id, published, recorded)| (RunId(id), i64::from(published), recorded))
}

async fn seq_count(stack: &Stack, run: RunId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM batch_results WHERE run_id = $1")
        .bind(run.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap()
}

async fn seq0_recorded(stack: &Stack, run: RunId) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM batch_results WHERE run_id = $1 AND seq = 0)")
        .bind(run.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provision_does_not_wait_behind_a_full_batch_queue() {
    // Slow single SCIM requests keep the one worker's prefetch busy for seconds while the
    // coordinator publishes the whole walk: the batch queue stays deep.
    let mut options = StackOptions::new("api_provision_lane", 8_000);
    options.scim_latency = Duration::from_millis(100);
    options.scim_bulk = false;
    let stack = Stack::start_with_workers(&options, 1).await.unwrap();
    let users = snapshot(&stack);
    let mut live: Vec<&SimUser> = users
        .iter()
        .filter(|u| u.state == UserState::Live && u.user.account_enabled)
        .collect();
    live.sort_by(|a, b| a.user.id.cmp(&b.user.id));
    // The walk goes in id order: the first users are in batch 0, the last in the last batch.
    // One without a manager, whose reference batch 0 may have deferred (a provision would
    // then patch it, rightly).
    let first = live[..50]
        .iter()
        .find(|u| u.user.manager_id.is_none())
        .expect("some users have no manager")
        .user
        .clone();
    let last = live[live.len() - 1].user.clone();

    let cycle = stack.cycle("initial", None);
    let during = async {
        // Batch 0 recorded, most of the walk still waiting in the queue.
        let run = loop {
            if let Some((run, published, recorded)) = cycle_progress(&stack).await
                && published - recorded > 16
                && seq0_recorded(&stack, run).await
            {
                break run;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut answers = Vec::new();
        for who in [&first, &last] {
            let body = provisioned(&stack, &who.id).await;
            let (_, published, recorded) = cycle_progress(&stack).await.unwrap();
            answers.push((body, published, recorded));
        }
        (run, answers)
    };
    let (report, (run, answers)) = tokio::join!(cycle, during);
    let report = report.unwrap();
    assert_eq!(report.run_id, run);
    for (body, published, recorded) in &answers {
        assert!(
            published - recorded > 0,
            "answered while the cycle still had unrecorded batches: {body} \
             ({recorded} of {published} recorded)"
        );
    }
    // Already recorded by the cycle: up to date. Not yet reached: created now.
    assert_eq!(answers[0].0["result"], "skipped", "{}", answers[0].0);
    assert_eq!(answers[0].0["reason"], UP_TO_DATE);
    assert_eq!(answers[1].0["result"], "success", "{}", answers[1].0);
    // The cycle is exact: the user it had seen and a provision then stamped was not taken
    // for gone, and the last user is there once.
    assert!(report.converged, "{:?}", report.verdict.problems);
    assert_eq!(report.kind, RunKind::Initial);
    assert!(webex_user(&stack, &first.user_principal_name).unwrap()["active"] == json!(true));
    let next = stack.cycle("incremental", None).await.unwrap();
    assert_eq!(next.kind, RunKind::Incremental);
    assert!(next.converged, "{:?}", next.verdict.problems);
    stack.shutdown().await.unwrap();
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Measurement, not a pass/fail check of speed: while a large initial cycle runs (100,000
/// users by default, `PROVISION_USERS`; `PROVISION_WORKERS` workers, default 2; the org's
/// SCIM budget `PROVISION_SCIM_RATE` requests a second, default 50 as deployed, 0 for none;
/// `PROVISION_SCIM_LATENCY_MS` added to each SCIM request), users new in Entra are
/// provisioned on demand one after another (`PROVISION_COUNT`, default 20, a second apart:
/// `PROVISION_SPACING_MS`); prints each
/// latency with how far the cycle was, then p50/p95/max. Afterwards an incremental cycle
/// converges.
///
/// `cargo nextest run --release -p dirsync-load-tests --test api_provision
///  --run-ignored only --no-capture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose, in release"]
async fn provision_latency() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (users, count, workers, rate, latency) = (
        env("PROVISION_USERS", 100_000),
        env("PROVISION_COUNT", 20),
        env("PROVISION_WORKERS", 2),
        env("PROVISION_SCIM_RATE", 50),
        env("PROVISION_SCIM_LATENCY_MS", 0),
    );
    // Provisions spread over the cycle rather than all at its start.
    let spacing = Duration::from_millis(env("PROVISION_SPACING_MS", 1_000) as u64);
    let mut options = StackOptions::new("provision_latency", users);
    // Webex's budget as deployed (DIRSYNC_SCIM_RATE_PER_ORG, 50 requests a second by
    // default): the workers, not the walk, are then the bottleneck and the queue fills.
    options.scim_rate = (rate > 0).then_some(rate as u32);
    options.scim_latency = Duration::from_millis(latency as u64);
    let stack = Stack::start_with_workers(&options, workers).await.unwrap();
    let amqp =
        lapin::Connection::connect(&stack.env.amqp_url, lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let probe = amqp.create_channel().await.unwrap();
    let topology = stack.env.topology();
    // Batches waiting in the batch queue (not yet delivered to a worker).
    let waiting = || async {
        probe
            .queue_declare(
                topology.batch_queue().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(0)
    };
    let cycle = stack.cycle("initial", None);
    let during = async {
        // The walk under way: batches published, the queue filling.
        while cycle_progress(&stack)
            .await
            .is_none_or(|(_, published, _)| published < 16)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut latencies = Vec::new();
        for i in 0..count {
            if i > 0 {
                tokio::time::sleep(spacing).await;
            }
            // A new user Webex must get: enabled (some new users are created disabled).
            let id = loop {
                let id = new_users(&stack, 1).remove(0);
                let enabled = stack
                    .graph
                    .with_users(&stack.entra_tenant, |users| {
                        users
                            .iter()
                            .any(|u| u.user.id == id && u.user.account_enabled)
                    })
                    .unwrap();
                if enabled {
                    break id;
                }
            };
            let (run, published, recorded) = cycle_progress(&stack).await.unwrap();
            let queued = waiting().await;
            let start = Instant::now();
            let body = provisioned(&stack, &id).await;
            let ms = start.elapsed().as_millis() as u64;
            let done = seq_count(&stack, run).await;
            println!(
                "provision {i:>2}: {ms:>5} ms, {} ({}); cycle {}: {queued} batches waiting in \
                 the queue, {recorded} of {published} published batches recorded (then {done})",
                body["result"], body["action"], run.0
            );
            assert_eq!(body["result"], "success", "{body}");
            latencies.push(ms);
        }
        latencies
    };
    let (report, mut latencies) = tokio::join!(cycle, during);
    let report = report.unwrap();
    latencies.sort_unstable();
    println!(
        "{{\"users\":{users},\"workers\":{workers},\"scim_rate\":{rate},\"scim_latency_ms\":{latency},\
         \"provisions\":{count},\"p50_ms\":{},\
         \"p95_ms\":{},\"max_ms\":{},\"cycle_wall_ms\":{},\"cycle_converged\":{}}}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        latencies[latencies.len() - 1],
        report.wall_ms,
        report.converged
    );
    let next = stack.cycle("incremental", None).await.unwrap();
    assert!(next.converged, "{:?}", next.verdict.problems);
    let _ = amqp.close(200, "measured".into()).await;
    stack.shutdown().await.unwrap();
}
