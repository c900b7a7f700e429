//! End-to-end: a full resync deactivates exactly the users Entra no longer has, an empty
//! read deactivates nobody, and the accidental-deletion guard holds a run until an operator
//! approves (the deactivations are pushed) or rejects it (they are not).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use dirsync_coordinator::CoordinatorError;
use dirsync_coordinator::guard::Thresholds;
use dirsync_coordinator::reconcile::{Deactivations, Decision};
use dirsync_coordinator::runs::RunKind;
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::graph_sim::ResetMode;
use dirsync_load_tests::synthetic::ChangeStep;
use dirsync_proto::RunId;

fn worker_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo"))
}

async fn stack(opts: StackOptions) -> Stack {
    let stack = Stack::start(&opts).await.unwrap();
    stack.spawn_worker(&worker_exe()).unwrap();
    stack
}

/// (state, decision, decided_by) of a run.
async fn run_row(stack: &Stack, run: RunId) -> (String, Option<String>, Option<String>) {
    sqlx::query_as("SELECT state, decision, decided_by FROM runs WHERE id = $1")
        .bind(run.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap()
}

/// The run a cycle left held by the guard.
fn held_run(result: anyhow::Result<impl std::fmt::Debug>) -> RunId {
    let err = result.expect_err("the run should be held");
    match err.downcast_ref::<CoordinatorError>() {
        Some(CoordinatorError::AwaitingApproval { run, .. }) => run.parse().unwrap(),
        _ => panic!("expected a held run, got {err:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_deactivates_exactly_the_users_entra_no_longer_has() {
    // Deactivated rather than deleted, so the oracle accepts hard-deleted users inactive.
    let stack = stack(StackOptions {
        allow_hard_delete: false,
        ..StackOptions::new("reconcile_resync", 600)
    })
    .await;
    let initial = stack.cycle("initial", None).await.unwrap();
    assert!(initial.converged, "{:?}", initial.verdict);
    let (active_before, inactive_before) = stack.webex_users();
    assert!(inactive_before.is_empty());

    // Users leave while the deltaLink is lost: no tombstone will ever tell.
    let change = stack
        .change(&ChangeStep {
            hard_deletes: 7,
            soft_deletes: 5,
            ..Default::default()
        })
        .unwrap();
    stack
        .graph
        .reset(&stack.entra_tenant, ResetMode::SyncStateNotFound)
        .unwrap();
    let gone: BTreeSet<String> = change
        .hard_deleted_ids
        .iter()
        .chain(&change.soft_deleted_ids)
        .filter(|id| active_before.contains(*id))
        .cloned()
        .collect();
    assert!(!gone.is_empty());

    let resync = stack.cycle("resync", None).await.unwrap();
    assert_eq!(resync.kind, RunKind::Initial);
    assert!(resync.converged, "{:?}", resync.verdict);
    let (active_after, inactive_after) = stack.webex_users();
    assert_eq!(
        inactive_after, gone,
        "exactly the gone users are deactivated"
    );
    assert_eq!(
        active_after,
        active_before.difference(&gone).cloned().collect(),
        "nobody else changed"
    );
    assert_eq!(
        resync.scim_writes,
        gone.len() as u64,
        "one PATCH active=false per gone user"
    );

    let next = stack.cycle("after resync", None).await.unwrap();
    assert_eq!(next.kind, RunKind::Incremental);
    assert!(next.converged);
    assert_eq!(next.scim_writes, 0);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_read_of_a_tenant_with_users_deactivates_nobody() {
    let stack = stack(StackOptions::new("reconcile_empty", 300)).await;
    assert!(stack.cycle("initial", None).await.unwrap().converged);
    let (active_before, _) = stack.webex_users();
    let writes_before = stack.scim.counters(&stack.org_id).writes();

    // Every user vanishes and the delta state is lost: the full read comes back empty.
    stack
        .change(&ChangeStep {
            hard_deletes: 10_000,
            ..Default::default()
        })
        .unwrap();
    stack
        .graph
        .reset(&stack.entra_tenant, ResetMode::GoneWithoutLocation)
        .unwrap();
    let err = stack
        .cycle("empty read", None)
        .await
        .expect_err("an empty read must fail the run");
    assert!(format!("{err:#}").contains("no users"), "{err:#}");

    assert_eq!(stack.webex_users().0, active_before, "nobody deactivated");
    assert_eq!(stack.scim.counters(&stack.org_id).writes(), writes_before);
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE state = 'failed'")
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    assert_eq!(failed, 1);
    let delta_link: Option<String> =
        sqlx::query_scalar("SELECT delta_link FROM tenants WHERE id = $1")
            .bind(stack.tenant_id.0)
            .fetch_one(&stack.env.pool)
            .await
            .unwrap();
    assert_eq!(delta_link, None, "the next run reads everything again");
    stack.shutdown().await.unwrap();
}

/// A tenant whose guard allows 20 deactivations, after its initial cycle, and the change
/// step that deactivates or deletes more (with a few harmless updates).
async fn over_the_threshold(label: &str) -> (Stack, BTreeSet<String>, BTreeSet<String>) {
    let stack = stack(StackOptions {
        guard: Some(Thresholds {
            max_count: 20,
            max_percent: 100,
        }),
        ..StackOptions::new(label, 300)
    })
    .await;
    assert!(stack.cycle("initial", None).await.unwrap().converged);
    let (active_before, _) = stack.webex_users();
    let change = stack
        .change(&ChangeStep {
            soft_deletes: 15,
            hard_deletes: 15,
            disables: 5,
            updates: 10,
            ..Default::default()
        })
        .unwrap();
    let touched: HashSet<&String> = change
        .soft_deleted_ids
        .iter()
        .chain(&change.hard_deleted_ids)
        .chain(&change.disabled_ids)
        .collect();
    let doomed: BTreeSet<String> = active_before
        .iter()
        .filter(|id| touched.contains(id))
        .cloned()
        .collect();
    assert!(doomed.len() > 20, "{} users to deactivate", doomed.len());
    (stack, active_before, doomed)
}

/// The percent rule needs the tenant's active users, which the coordinator counts only for a
/// run with deactivations: the count must be there when it matters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_the_percent_threshold_is_held_with_the_active_count() {
    let stack = stack(StackOptions {
        guard: Some(Thresholds {
            max_count: 1_000,
            max_percent: 5,
        }),
        ..StackOptions::new("reconcile_percent", 300)
    })
    .await;
    assert!(stack.cycle("initial", None).await.unwrap().converged);
    let (active_before, _) = stack.webex_users();
    // An unchanged cycle has no deactivation to judge, and passes.
    let unchanged = stack.cycle("unchanged", None).await.unwrap();
    assert_eq!(unchanged.scim_writes, 0);
    stack
        .change(&ChangeStep {
            soft_deletes: 25,
            ..Default::default()
        })
        .unwrap();
    let run = held_run(stack.cycle("held", None).await);
    let (count, reason): (Option<i32>, Option<String>) =
        sqlx::query_as("SELECT deactivations, hold_reason FROM runs WHERE id = $1")
            .bind(run.0)
            .fetch_one(&stack.env.pool)
            .await
            .unwrap();
    let count = count.expect("the run's deactivations are decided");
    assert!(count > 10, "{count} deactivations");
    let reason = reason.expect("a held run says why");
    let expected = format!("{count} of {} active users", active_before.len());
    assert!(
        reason.contains(&expected),
        "{reason:?} should name {expected:?}"
    );
    assert_eq!(
        stack.webex_users().0,
        active_before,
        "nothing deactivated while held"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_pushes_its_deactivations_once_approved() {
    let (stack, active_before, _) = over_the_threshold("reconcile_approve").await;
    let run = held_run(stack.cycle("held", None).await);
    assert_eq!(
        stack.webex_users().0,
        active_before,
        "nothing deactivated or deleted while held"
    );
    assert_eq!(run_row(&stack, run).await.0, "awaiting_approval");
    let status: String = sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1")
        .bind(stack.tenant_id.0)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap();
    assert_eq!(status, "Quarantine");
    // Without a decision the tenant is not synced further.
    assert_eq!(held_run(stack.cycle("still held", None).await), run);
    assert_eq!(stack.webex_users().0, active_before);

    let deactivations = Deactivations::new(stack.env.pool.clone());
    deactivations
        .decide(run, Decision::Approved, "alice")
        .await
        .unwrap();
    assert!(
        deactivations
            .decide(run, Decision::Rejected, "bob")
            .await
            .is_err(),
        "a decision is taken once"
    );
    let done = stack.cycle("approved", None).await.unwrap();
    assert_eq!(done.run_id, run, "the held run itself completes");
    assert!(done.converged, "{:?}", done.verdict);
    assert_eq!(
        run_row(&stack, run).await,
        (
            "completed".to_string(),
            Some("approved".into()),
            Some("alice".into())
        )
    );
    let next = stack.cycle("after", None).await.unwrap();
    assert_eq!((next.kind, next.scim_writes), (RunKind::Incremental, 0));
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_run_completes_without_its_deactivations() {
    let (stack, active_before, doomed) = over_the_threshold("reconcile_reject").await;
    let run = held_run(stack.cycle("held", None).await);
    let deactivations = Deactivations::new(stack.env.pool.clone());
    deactivations
        .decide(run, Decision::Rejected, "bob")
        .await
        .unwrap();
    let writes_before = stack.scim.counters(&stack.org_id).writes();
    let done = stack.cycle("rejected", None).await.unwrap();
    assert_eq!(done.run_id, run);
    assert_eq!(
        stack.scim.counters(&stack.org_id).writes(),
        writes_before,
        "nothing pushed"
    );
    assert_eq!(
        stack.webex_users().0,
        active_before,
        "the held users stay active"
    );
    assert_eq!(
        run_row(&stack, run).await,
        (
            "completed".to_string(),
            Some("rejected".into()),
            Some("bob".into())
        )
    );
    let record = deactivations.show(run).await.unwrap();
    let listed: BTreeSet<String> = record.users.into_iter().collect();
    assert!(
        doomed.is_subset(&listed),
        "the run's record lists the held users"
    );
    assert!(record.held);
    let next = stack.cycle("after", None).await.unwrap();
    assert_eq!(
        (next.kind, next.scim_writes),
        (RunKind::Incremental, 0),
        "the deltaLink advanced past the rejected changes"
    );
    stack.shutdown().await.unwrap();
}

/// A decided run's deactivation batches, built one at a time from PostgreSQL: users in the
/// order of their first entry, 200 to a batch, each user's entries together and in order,
/// every user in exactly one batch; a rejected run leaves out tombstones (and the users that
/// had nothing else) and `accountEnabled: false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_batches_are_built_a_batch_at_a_time() {
    use dirsync_proto::{RemovedReason, SourceUser};
    use serde_json::{Map, Value, json};

    let stack = Stack::start(&StackOptions::new("reconcile_batches", 10))
        .await
        .unwrap();
    let pool = &stack.env.pool;
    let entry = |id: &str, removed: Option<RemovedReason>, enabled: Option<bool>| {
        let mut attributes = Map::new();
        if let Some(enabled) = enabled {
            attributes.insert("accountEnabled".into(), Value::Bool(enabled));
            attributes.insert("displayName".into(), json!(format!("user {id}")));
        }
        SourceUser {
            id: id.into(),
            removed,
            attributes,
        }
    };
    // 450 disabled users; the first 10 enabled again later in the run; 5 deleted users.
    let mut entries: Vec<SourceUser> = (0..450)
        .map(|i| entry(&format!("u{i:03}"), None, Some(false)))
        .collect();
    entries.extend((0..5).map(|i| entry(&format!("t{i}"), Some(RemovedReason::Deleted), None)));
    entries.extend((0..10).map(|i| entry(&format!("u{i:03}"), None, Some(true))));

    for (label, rejected) in [("approved", false), ("rejected", true)] {
        let run = RunId::new();
        sqlx::query(
            // Not open: the stack's tenant may have its own open run.
            "INSERT INTO runs (id, tenant_id, kind, state, deactivations, held, decision) \
             VALUES ($1, $2, 'initial', 'completed', $3, $4, $5)",
        )
        .bind(run.0)
        .bind(stack.tenant_id.0)
        .bind(entries.len() as i32)
        .bind(rejected)
        .bind(rejected.then_some("rejected"))
        .execute(pool)
        .await
        .unwrap();
        for (idx, e) in entries.iter().enumerate() {
            sqlx::query(
                "INSERT INTO run_deactivations (run_id, page, idx, entra_id, entry) \
                 VALUES ($1, 'p', $2, $3, $4)",
            )
            .bind(run.0)
            .bind(idx as i32)
            .bind(&e.id)
            .bind(sqlx::types::Json(e))
            .execute(pool)
            .await
            .unwrap();
        }
        let plan = Deactivations::new(pool.clone())
            .batches(run, stack.tenant_id, RunKind::Initial, 7)
            .await
            .unwrap();
        assert_eq!(
            plan.seqs(),
            7..10,
            "{label}: 455 or 450 users, 200 to a batch"
        );
        let mut seen = Vec::new();
        for seq in plan.seqs() {
            let batch = plan.batch(seq).await.unwrap();
            assert_eq!((batch.seq, batch.run_id), (seq, run), "{label}");
            let mut users: Vec<&str> = batch.users.iter().map(|u| u.id.as_str()).collect();
            users.dedup();
            assert!(
                users.len() <= 200,
                "{label}: batch {seq} holds {}",
                users.len()
            );
            let distinct: HashSet<&str> = users.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                users.len(),
                "{label}: a user's entries are together"
            );
            seen.extend(users.iter().map(|u| u.to_string()));
            for u in &batch.users {
                if rejected {
                    assert!(u.removed.is_none(), "{label}: no tombstone is pushed");
                    assert_ne!(u.bool_attr("accountEnabled"), Some(false), "{label}");
                }
            }
            // A user's entries in the order they came (u000 disabled, then enabled).
            if seq == 7 && !rejected {
                let u0: Vec<Option<bool>> = batch
                    .users
                    .iter()
                    .filter(|u| u.id == "u000")
                    .map(|u| u.bool_attr("accountEnabled"))
                    .collect();
                assert_eq!(u0, [Some(false), Some(true)]);
            }
            assert_eq!(
                plan.batch(seq).await.unwrap(),
                batch,
                "{label}: rebuilt identically"
            );
        }
        let mut expected: Vec<String> = (0..450).map(|i| format!("u{i:03}")).collect();
        if !rejected {
            expected.extend((0..5).map(|i| format!("t{i}")));
        }
        assert_eq!(
            seen, expected,
            "{label}: every user once, in first-entry order"
        );
    }
    stack.shutdown().await.unwrap();
}
