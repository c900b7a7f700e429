//! Dry runs through the admin API and the command line, against a running fleet: the report
//! has the seed's columns, says what the next sync then does (no more, no less), and the dry
//! run itself writes nothing to Webex or to the sync's state.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use clap::Parser;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use dirsync_coordinator::cli::Cli;
use dirsync_coordinator::dry_runs::{CSV_HEADER, DryRunView};
use dirsync_load_tests::fleet::{Stack, StackOptions, create_scim_user};
use dirsync_load_tests::synthetic::ChangeStep;

/// One row of the report: action and reason by Azure ID.
type Report = BTreeMap<String, (String, String)>;

/// Asks for a dry run and waits for it to end.
async fn dry_run(stack: &Stack) -> DryRunView {
    let base = format!("/tenants/{}/dry-runs", stack.tenant_id.0);
    let (status, body) = stack.api(Method::POST, &base, None).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let started: DryRunView = serde_json::from_value(body).unwrap();
    // The answer reads the row back after the request commits: a coordinator may have
    // claimed it in between.
    assert!(
        ["requested", "running"].contains(&started.status.as_str()),
        "{started:?}"
    );
    // A second one while the first is not finished is refused.
    let (status, body) = stack.api(Method::POST, &base, None).await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    wait(stack, &started).await
}

async fn wait(stack: &Stack, started: &DryRunView) -> DryRunView {
    let path = format!("/tenants/{}/dry-runs/{}", stack.tenant_id.0, started.id);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, body) = stack.api(Method::GET, &path, None).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let view: DryRunView = serde_json::from_value(body).unwrap();
        match view.status.as_str() {
            "completed" => return view,
            "failed" => panic!("dry run failed: {view:?}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "dry run still {view:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Parses the CSV report, checking its header and that each object has one row.
fn parse(csv_text: &str) -> (Report, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, CSV_HEADER);
    let mut report = Report::new();
    let mut rows = Vec::new();
    for record in reader.records() {
        let r: Vec<String> = record.unwrap().iter().map(str::to_string).collect();
        assert_eq!(r.len(), 6, "{r:?}");
        assert!(
            ["Matched", "Add", "Update", "Deactivate"].contains(&r[1].as_str()),
            "{r:?}"
        );
        assert!(!r[5].is_empty(), "every row says why: {r:?}");
        if r[0] == "user" {
            let before = report.insert(r[2].clone(), (r[1].clone(), r[5].clone()));
            assert!(before.is_none(), "{} twice in the report", r[2]);
        }
        rows.push(r);
    }
    (report, rows)
}

async fn download(stack: &Stack, view: &DryRunView) -> String {
    let path = format!("/tenants/{}/dry-runs/{}/report", stack.tenant_id.0, view.id);
    let (status, body) = stack.api(Method::GET, &path, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_str().expect("the report is text").to_string()
}

/// Everything a dry run must leave alone: the mirror, the deltaLink, the runs and results.
async fn sync_state(pool: &PgPool, stack: &Stack) -> (Option<String>, Option<String>, i64, i64) {
    let tenant = stack.tenant_id.0;
    let mirror: Option<String> = sqlx::query_scalar(
        "SELECT md5(string_agg(entra_id || webex_id || content_hash::text || active::text \
                               || attributes::text, ',' ORDER BY entra_id)) \
         FROM mirror_users WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap();
    let delta: Option<String> = sqlx::query_scalar("SELECT delta_link FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_one(pool)
        .await
        .unwrap();
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(pool)
        .await
        .unwrap();
    let results: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM batch_results b JOIN runs r ON r.id = b.run_id WHERE r.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap();
    (mirror, delta, runs, results)
}

fn count(report: &Report, action: &str) -> u64 {
    report.values().filter(|(a, _)| a == action).count() as u64
}

/// `dirsync <args>` in-process against the stack's API.
async fn cli(stack: &Stack, args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec![
        "dirsync".to_string(),
        "--api-url".into(),
        stack.api_url(),
        "--api-token".into(),
        stack.api_token.expose_secret().to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    dirsync_coordinator::cli::run(Cli::try_parse_from(argv)?, CancellationToken::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_says_what_the_sync_does_and_writes_nothing() {
    let stack = Stack::start_with_workers(&StackOptions::new("api_dry_run", 1500), 1)
        .await
        .unwrap();
    let pool = stack.env.pool.clone();
    let initial = stack.cycle("initial", None).await.unwrap();
    assert!(initial.converged, "{:?}", initial.verdict);
    // Soft deletes first, so that the next step can restore some.
    stack
        .change(&ChangeStep {
            soft_deletes: 10,
            ..ChangeStep::default()
        })
        .unwrap();
    assert!(stack.cycle("deletes", None).await.unwrap().converged);
    let change = stack
        .change(&ChangeStep {
            updates: 40,
            soft_deletes: 8,
            hard_deletes: 4,
            new_users: 20,
            restores: 4,
            disables: 5,
        })
        .unwrap();
    // One new Entra user is in Webex already, created by hand: the sync will adopt it.
    let adopted = change.new_ids[0].clone();
    let upn = stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .find(|u| u.user.id == adopted)
        .unwrap()
        .user
        .user_principal_name;
    create_scim_user(&stack.scim_client().await.unwrap(), &upn)
        .await
        .unwrap();

    let writes_before = stack.scim.counters(&stack.org_id).writes();
    let state_before = sync_state(&pool, &stack).await;
    let view = dry_run(&stack).await;
    let csv_text = download(&stack, &view).await;
    assert_eq!(
        stack.scim.counters(&stack.org_id).writes(),
        writes_before,
        "a dry run writes nothing to webex"
    );
    assert_eq!(
        sync_state(&pool, &stack).await,
        state_before,
        "a dry run changes no mirror row, deltaLink, run or batch result"
    );
    let (report, rows) = parse(&csv_text);
    assert!(
        rows.iter().all(|r| r[0] == "user"),
        "no group objects synced"
    );

    // Each change is in the report as the action the sync takes, and says why.
    let (action, reason) = &report[&adopted];
    assert_eq!(action, "Matched");
    assert!(reason.contains("links it"), "{reason}");
    for id in &change.new_ids[1..] {
        assert_eq!(report[id].0, "Add", "{id}");
    }
    // Restored users Webex has (deactivated) are reactivated; the others (disabled when
    // they were deleted, so never created) are added.
    let deactivated: HashSet<String> = sqlx::query_scalar(
        "SELECT entra_id FROM mirror_users WHERE tenant_id = $1 AND NOT active \
         AND entra_id = ANY($2)",
    )
    .bind(stack.tenant_id.0)
    .bind(&change.restored_ids)
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(!deactivated.is_empty(), "a restored user was deactivated");
    for id in &change.restored_ids {
        if deactivated.contains(id) {
            assert_eq!(report[id].0, "Update", "{id}");
            assert!(report[id].1.contains("reactivates"), "{:?}", report[id]);
        } else if let Some((action, reason)) = report.get(id) {
            assert_eq!(action, "Add", "{id}: {reason}");
        }
    }
    for id in &change.disabled_ids {
        assert_eq!(report[id].0, "Deactivate", "{id}");
        assert!(
            report[id].1.starts_with("disabled in Entra ID"),
            "{:?}",
            report[id]
        );
    }
    // Deleted users are no longer listed by Graph: the full walk finds them gone.
    let gone: HashSet<&String> = change
        .soft_deleted_ids
        .iter()
        .chain(&change.hard_deleted_ids)
        .collect();
    let newly_gone: Vec<&&String> = gone.iter().filter(|id| report.contains_key(**id)).collect();
    assert!(newly_gone.len() >= 8, "{newly_gone:?}");
    for id in newly_gone {
        assert_eq!(report[*id].0, "Deactivate", "{id}");
        assert!(
            report[*id].1.starts_with("not found in Entra ID"),
            "{:?}",
            report[*id]
        );
    }
    let updates = count(&report, "Update");
    assert!(
        updates > change.restored_ids.len() as u64,
        "attribute updates are reported"
    );
    for (id, (action, reason)) in &report {
        if action == "Update" && !change.restored_ids.contains(id) {
            assert!(change.updated_ids.contains(id), "{id}: {reason}");
            assert!(reason.starts_with("differs from Webex in "), "{reason}");
        }
    }

    // The summary counts the report.
    let summary = view.summary.clone().unwrap();
    assert_eq!(
        (
            summary.matched,
            summary.add,
            summary.update,
            summary.deactivate
        ),
        (
            count(&report, "Matched"),
            count(&report, "Add"),
            updates,
            count(&report, "Deactivate")
        )
    );
    assert_eq!(summary.failing, 0);
    assert!(summary.guard_hold.is_none(), "{summary:?}");
    assert!(view.users_read > 1000 && view.batches_reported == view.batches_published);

    // The sync does exactly that: every Add, Update and Deactivate, and the adoption.
    let incremental = stack.cycle("incremental", None).await.unwrap();
    let failed: Vec<(String, String)> =
        sqlx::query_as("SELECT entra_id, reason FROM failed_objects WHERE run_id = $1")
            .bind(incremental.run_id.0)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(failed.is_empty(), "{failed:?} {:?}", incremental.users);
    assert!(incremental.converged, "{:?}", incremental.verdict);
    assert_eq!(incremental.users.failed, 0);
    assert_eq!(
        incremental.users.synced,
        summary.add + summary.update + summary.deactivate + 1,
        "the sync writes what the report announced, and adopts the user found in webex"
    );

    // After it, a dry run by the command line finds nothing to do.
    let dir = std::env::temp_dir().join(format!("dirsync-dry-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.csv");
    let tenant = stack.tenant_id.0.to_string();
    cli(
        &stack,
        &[
            "tenant",
            "dry-run",
            &tenant,
            "--output",
            file.to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    let (after, _) = parse(&std::fs::read_to_string(&file).unwrap());
    let pending: Vec<_> = after.iter().filter(|(_, (a, _))| a != "Matched").collect();
    assert!(pending.is_empty(), "after the sync: {pending:?}");
    assert!(
        after.len() as u64 >= summary.matched,
        "every active user matches"
    );

    // The list shows both, newest first; an earlier report can be saved again.
    let (status, body) = stack
        .api(Method::GET, &format!("/tenants/{tenant}/dry-runs"), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<DryRunView> = serde_json::from_value(body).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].id, view.id);
    let again = dir.join("again.csv");
    let first = view.id.to_string();
    cli(
        &stack,
        &[
            "tenant",
            "dry-run",
            &tenant,
            "--report",
            &first,
            "--output",
            again.to_str().unwrap(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&again).unwrap(), csv_text);
    cli(&stack, &["--json", "tenant", "dry-runs", &tenant])
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    // Unknown dry runs and instances are 404s.
    let (status, _) = stack
        .api(
            Method::GET,
            &format!("/tenants/{tenant}/dry-runs/{}/report", uuid::Uuid::new_v4()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = stack
        .api(
            Method::POST,
            &format!("/tenants/{}/dry-runs", uuid::Uuid::new_v4()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);

    stack.shutdown().await.unwrap();
}

/// A scope narrowed to one group: the report deactivates everyone else as out of scope,
/// warns that the deletion guard would hold such a sync, and the sync is indeed held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_scope_is_reported_with_the_guard_verdict() {
    use dirsync_coordinator::scope::Scope;
    use dirsync_load_tests::graph_sim::UserState;
    use dirsync_load_tests::oracle::expected_scope;
    use dirsync_load_tests::synthetic::GroupSpec;

    let stack = Stack::start_with_workers(
        &StackOptions {
            groups: GroupSpec {
                count: 12,
                max_members: 30,
                nesting_depth: 1,
            },
            ..StackOptions::new("api_dry_run_scope", 400)
        },
        1,
    )
    .await
    .unwrap();
    let pool = stack.env.pool.clone();
    assert!(stack.cycle("initial", None).await.unwrap().converged);
    let groups = stack.graph.groups(&stack.entra_tenant).unwrap();
    let group = groups
        .iter()
        .find(|g| g.state == UserState::Live)
        .unwrap()
        .id
        .clone();
    let in_scope = expected_scope(&groups, &[], std::slice::from_ref(&group), false);
    stack
        .set_scope(Scope {
            all: false,
            groups: vec![group],
            ..Scope::default()
        })
        .await
        .unwrap();
    let members_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scope_members WHERE tenant_id = $1")
            .bind(stack.tenant_id.0)
            .fetch_one(&pool)
            .await
            .unwrap();

    let view = dry_run(&stack).await;
    let (report, _) = parse(&download(&stack, &view).await);
    let active: HashSet<String> =
        sqlx::query_scalar("SELECT entra_id FROM mirror_users WHERE tenant_id = $1 AND active")
            .bind(stack.tenant_id.0)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let leaving: Vec<&String> = active.iter().filter(|id| !in_scope.contains(*id)).collect();
    assert!(leaving.len() > 100, "{}", leaving.len());
    for id in &leaving {
        assert_eq!(
            report[*id],
            (
                "Deactivate".to_string(),
                "not in the sync scope: the sync deactivates it".to_string()
            ),
            "{id}"
        );
    }
    for id in active.iter().filter(|id| in_scope.contains(*id)) {
        assert_eq!(report[id].0, "Matched", "{id}");
    }
    let summary = view.summary.unwrap();
    assert_eq!(summary.deactivate, leaving.len() as u64);
    let hold = summary.guard_hold.expect("the guard would hold this sync");
    assert!(hold.contains("would wait for approval"), "{hold}");
    let members_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scope_members WHERE tenant_id = $1")
            .bind(stack.tenant_id.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        members_after, members_before,
        "the sync's scope is left alone"
    );

    // The sync agrees: the guard holds it for an operator.
    let held = stack.cycle("narrowed", None).await;
    let held = format!("{held:?}");
    assert!(
        held.contains(&format!(
            "would deactivate or delete {} of",
            summary.deactivate
        )),
        "the sync is held for the same deactivations: {held}"
    );
    stack.shutdown().await.unwrap();
}
