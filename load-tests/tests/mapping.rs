//! End-to-end mapping: the seed's attribute table (checked by the oracle on every user),
//! manager references by Webex id, deferred while the manager is not in Webex and applied
//! by the run's reference pass, and "clear attributes", which is opt-in.

use std::path::PathBuf;

use dirsync_coordinator::TenantStore;
use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_load_tests::synthetic::ChangeStep;

fn worker_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_demo"))
}

async fn stack(label: &str, users: usize) -> Stack {
    let stack = Stack::start(&StackOptions::new(label, users))
        .await
        .unwrap();
    stack.spawn_worker(&worker_exe()).unwrap();
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_are_referenced_by_webex_id_once_they_are_provisioned() {
    let stack = stack("mapping_managers", 400).await;
    let initial = stack.cycle("initial", None).await.unwrap();
    // The oracle checks every mapped attribute, and that each manager in Webex is
    // referenced by its Webex id.
    assert!(initial.converged, "{:?}", initial.verdict);
    assert_eq!(
        initial.users.failed, 0,
        "a missing manager never fails a user"
    );
    let patches = stack.scim.counters(&stack.org_id).patch;
    assert!(
        patches > 0,
        "managers created after their reports came in the reference pass"
    );
    // What is still deferred waits for a manager that is not in Webex (disabled, deleted).
    let waiting: Vec<(String, bool)> = sqlx::query_as(
        "SELECT d.manager_id, EXISTS (SELECT 1 FROM mirror_users m \
                 WHERE m.tenant_id = d.tenant_id AND m.entra_id = d.manager_id) \
         FROM deferred_refs d WHERE d.tenant_id = $1",
    )
    .bind(stack.tenant_id.0)
    .fetch_all(&stack.env.pool)
    .await
    .unwrap();
    assert!(
        waiting.iter().all(|(_, in_webex)| !in_webex),
        "no reference left behind whose manager is in webex: {waiting:?}"
    );
    // Nothing changed: no reference pass, no write.
    let next = stack.cycle("unchanged", None).await.unwrap();
    assert_eq!(next.scim_writes, 0);
    assert!(next.converged);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_attributes_is_opt_in() {
    let step = ChangeStep {
        updates: 150,
        ..ChangeStep::default()
    };
    // By default Webex keeps a value Entra cleared.
    let keeping = stack("mapping_keep", 300).await;
    assert!(keeping.cycle("initial", None).await.unwrap().converged);
    keeping.change(&step).unwrap();
    let kept = keeping.cycle("updates", None).await.unwrap();
    assert!(kept.converged, "{:?}", kept.verdict);
    let stale = keeping.verdict_clearing().unwrap();
    assert!(
        !stale.converged,
        "some cleared values were kept in webex (else this test proves nothing)"
    );
    keeping.shutdown().await.unwrap();

    // Opted in: the same changes clear the Webex values.
    let clearing = stack("mapping_clear", 300).await;
    TenantStore::new(clearing.env.pool.clone())
        .set_clear_attributes(clearing.tenant_id, true)
        .await
        .unwrap();
    assert!(clearing.cycle("initial", None).await.unwrap().converged);
    clearing.change(&step).unwrap();
    let cleared = clearing.cycle("updates", None).await.unwrap();
    assert_eq!(cleared.users.failed, 0);
    let verdict = clearing.verdict_clearing().unwrap();
    assert!(verdict.converged, "{verdict:?}");
    clearing.shutdown().await.unwrap();
}
