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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_mapping_of_every_kind_is_applied() {
    use dirsync_coordinator::CoordinatorError;
    use dirsync_load_tests::graph_sim::UserState;
    use dirsync_proto::mapping::MappingRule;
    use std::collections::HashMap;

    let stack = stack("mapping_custom", 120).await;
    let store = TenantStore::new(stack.env.pool.clone());
    let rules = |v: serde_json::Value| -> Vec<MappingRule> { serde_json::from_value(v).unwrap() };
    // A broken expression is refused when saved, with where it breaks.
    let err = store
        .set_mapping(
            stack.tenant_id,
            Some(rules(serde_json::json!([
                {"target": "userName", "kind": "direct", "attribute": "userPrincipalName"},
                {"target": "displayName", "kind": "expression", "expression": "Join(\", \" [surname])"}
            ]))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoordinatorError::Mapping(m)
            if m.target == "displayName" && m.rule == 1 && m.position == Some(10)),
        "{err}"
    );
    store
        .set_mapping(
            stack.tenant_id,
            Some(rules(serde_json::json!([
                {"target": "userName", "kind": "direct", "attribute": "userPrincipalName"},
                {"target": "emails[type eq \"work\"].value", "kind": "direct", "attribute": "userPrincipalName"},
                {"target": "displayName", "kind": "expression",
                 "expression": "Join(\", \", [surname], [givenName])"},
                {"target": "title", "kind": "constant", "value": "Staff", "create_only": true},
                {"target": "name.familyName", "kind": "direct", "attribute": "surname",
                 "default_if_null": "(none)"},
                {"target": "name.givenName", "kind": "none"}
            ]))),
        )
        .await
        .unwrap();

    let initial = stack.cycle("initial", None).await.unwrap();
    assert_eq!(initial.users.failed, 0);
    let check = |stack: &Stack| {
        let entra: HashMap<String, _> = stack
            .graph
            .snapshot(&stack.entra_tenant)
            .unwrap()
            .into_iter()
            .filter(|u| u.state == UserState::Live && u.user.account_enabled)
            .map(|u| (u.user.id.clone(), u.user))
            .collect();
        let webex = stack.scim.users(&stack.org_id);
        assert_eq!(webex.len(), entra.len());
        for w in webex {
            let u = &entra[w["externalId"].as_str().unwrap()];
            let parts: Vec<&str> = [u.surname.as_deref(), u.given_name.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect();
            if !parts.is_empty() {
                assert_eq!(w["displayName"], parts.join(", "), "{w}");
            }
            assert_eq!(w["title"], "Staff", "constant, written on create");
            assert_eq!(
                w["name"]["familyName"],
                u.surname.as_deref().unwrap_or("(none)"),
                "direct, with a default on create"
            );
            assert!(w["name"].get("givenName").is_none(), "not synced: {w}");
        }
    };
    check(&stack);
    // Updates change job titles and names: the create-only title stays.
    stack
        .change(&ChangeStep {
            updates: 60,
            ..ChangeStep::default()
        })
        .unwrap();
    let updated = stack.cycle("updates", None).await.unwrap();
    assert_eq!(updated.users.failed, 0);
    check(&stack);
    stack.shutdown().await.unwrap();
}
