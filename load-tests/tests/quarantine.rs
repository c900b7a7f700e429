//! End-to-end quarantine: a Webex token refused quarantines the tenant at once (the run
//! stops waiting and resumes once the token works again); a run with too many failed
//! objects quarantines it by Entra's thresholds (scaled for small tenants); a quarantined
//! tenant backs off up to daily, a clean run lifts it, and after 4 weeks auto-sync is off.
//! Thresholds configured for the deployment and the tenant quarantine below Entra's.

use std::time::Duration;

use secrecy::ExposeSecret;

use dirsync_coordinator::CoordinatorError;
use dirsync_coordinator::quarantine;
use dirsync_load_tests::fleet::{Stack, StackOptions, create_scim_user};
use dirsync_load_tests::graph_sim::UserState;
use dirsync_load_tests::synthetic::ChangeStep;
use dirsync_worker::tenant::TenantCache;

/// (status, quarantine_kind, quarantine_reason, seconds until next_run_at, auto_sync)
async fn state(stack: &Stack) -> (String, Option<String>, Option<String>, f64, bool) {
    sqlx::query_as(
        "SELECT status, quarantine_kind, quarantine_reason, \
         extract(epoch FROM next_run_at - now())::float8, auto_sync FROM tenants WHERE id = $1",
    )
    .bind(stack.tenant_id.0)
    .fetch_one(&stack.env.pool)
    .await
    .unwrap()
}

async fn scim_token(stack: &Stack) -> String {
    let tenant = TenantCache::new(Duration::from_secs(1), Some(stack.env.secrets_key.clone()))
        .get(&stack.env.pool, stack.tenant_id)
        .await
        .unwrap()
        .unwrap();
    tenant.scim_token.expose_secret().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_webex_token_quarantines_at_once_and_a_clean_run_lifts_it() {
    let stack = Stack::start_with_workers(&StackOptions::new("quarantine_token", 200), 1)
        .await
        .unwrap();
    assert!(stack.cycle("initial", None).await.unwrap().converged);
    assert_eq!(state(&stack).await.0, "Active");

    let token = scim_token(&stack).await;
    stack.scim.add_org(&stack.org_id, "revoked-token");
    stack
        .change(&ChangeStep {
            updates: 20,
            ..ChangeStep::default()
        })
        .unwrap();
    let err = stack.cycle("refused", None).await.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<CoordinatorError>(),
            Some(CoordinatorError::Quarantined(_))
        ),
        "{err:#}"
    );
    let (status, kind, reason, next_in, auto_sync) = state(&stack).await;
    assert_eq!(status, "Quarantine");
    assert_eq!(kind.as_deref(), Some("credentials"));
    assert!(
        reason.unwrap().contains("401"),
        "the reason says what was refused"
    );
    // Backed off: twice the 40-minute cycle.
    assert!(next_in > 4_700.0 && next_in <= 4_800.0, "{next_in}");
    assert!(auto_sync);

    // The token works again: the open run resumes, completes, and lifts the quarantine.
    stack.scim.add_org(&stack.org_id, &token);
    let resumed = stack.cycle("token fixed", None).await.unwrap();
    assert!(resumed.converged, "{:?}", resumed.verdict);
    let (status, kind, reason, _, _) = state(&stack).await;
    assert_eq!((status.as_str(), kind, reason), ("Active", None, None));
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_failed_objects_quarantine_and_backoff_doubles_up_to_daily() {
    let mut stack = Stack::start_with_workers(&StackOptions::new("quarantine_failures", 40), 1)
        .await
        .unwrap();
    // 25 users' userNames are taken in another org: they fail (of about 40: over 40 %).
    let other = stack.other_org_client().await.unwrap();
    let mut squatters = Vec::new();
    for u in stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .filter(|u| u.state == UserState::Live && u.user.account_enabled)
        .take(25)
    {
        squatters.push(
            create_scim_user(&other, &u.user.user_principal_name)
                .await
                .unwrap(),
        );
    }
    let failing = stack.cycle("failing", None).await.unwrap();
    assert_eq!(failing.users.failed, 25);
    let (status, kind, reason, _, _) = state(&stack).await;
    assert_eq!(status, "Quarantine");
    assert_eq!(kind.as_deref(), Some("failures"));
    assert!(reason.unwrap().contains("25 of"));

    // The conflicts are resolved and the escrow retries at once: a clean run lifts it.
    for id in &squatters {
        other.delete_user(id).await.unwrap();
    }
    stack.runner = stack.runner.clone().with_escrow_retry(&[0]);
    let clean = stack.cycle("clean", None).await.unwrap();
    assert_eq!(clean.users.failed, 0);
    assert_eq!(clean.users.synced, 25);
    assert_eq!(state(&stack).await.0, "Active");
    assert!(stack.verdict().unwrap().converged);

    // Backoff doubles from twice the cycle up to a day; 4 weeks in, auto-sync goes off.
    let mut backoffs = Vec::new();
    for _ in 0..7 {
        quarantine::quarantine(&stack.env.pool, stack.tenant_id, "failures", "test")
            .await
            .unwrap();
        backoffs.push(state(&stack).await.3.round() as i64);
    }
    assert_eq!(
        backoffs,
        [4_800, 9_600, 19_200, 38_400, 76_800, 86_400, 86_400]
    );
    assert!(state(&stack).await.4, "auto-sync stays on within 4 weeks");
    sqlx::query("UPDATE tenants SET quarantined_since = now() - interval '29 days' WHERE id = $1")
        .bind(stack.tenant_id.0)
        .execute(&stack.env.pool)
        .await
        .unwrap();
    quarantine::quarantine(&stack.env.pool, stack.tenant_id, "failures", "test")
        .await
        .unwrap();
    assert!(
        !state(&stack).await.4,
        "auto-sync off after 4 weeks in quarantine"
    );
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_graph_secret_quarantines_at_once() {
    let stack = Stack::start_with_workers(&StackOptions::new("quarantine_graph", 20), 1)
        .await
        .unwrap();
    sqlx::query("UPDATE tenants SET client_secret = 'wrong-secret' WHERE id = $1")
        .bind(stack.tenant_id.0)
        .execute(&stack.env.pool)
        .await
        .unwrap();
    let err = stack.cycle("refused", None).await.unwrap_err();
    assert!(
        err.downcast_ref::<CoordinatorError>()
            .is_some_and(CoordinatorError::is_credential_failure),
        "{err:#}"
    );
    let (status, kind, reason, next_in, _) = state(&stack).await;
    assert_eq!(status, "Quarantine");
    assert_eq!(kind.as_deref(), Some("credentials"));
    assert!(
        reason.unwrap().contains("token"),
        "the reason names the token request"
    );
    assert!(next_in > 4_700.0);
    stack.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_thresholds_quarantine_below_entras() {
    let mut stack = Stack::start_with_workers(&StackOptions::new("quarantine_configured", 40), 1)
        .await
        .unwrap();
    // 5 users of about 40 fail: under Entra's thresholds (the small floor is 20 failures) ...
    let other = stack.other_org_client().await.unwrap();
    for u in stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .filter(|u| u.state == UserState::Live && u.user.account_enabled)
        .take(5)
    {
        create_scim_user(&other, &u.user.user_principal_name)
            .await
            .unwrap();
    }
    // ... but this deployment judges from 5 failures, and this tenant quarantines above 10 %.
    let deployment = quarantine::Thresholds {
        min_failures: 5,
        ..quarantine::Thresholds::ENTRA
    };
    stack.runner = stack.runner.clone().with_quarantine(deployment);
    quarantine::set_thresholds(
        &stack.env.pool,
        stack.tenant_id,
        Some(quarantine::Overrides {
            max_percent: Some(10),
            ..quarantine::Overrides::default()
        }),
        deployment,
    )
    .await
    .unwrap();
    let failing = stack.cycle("failing", None).await.unwrap();
    let (failed, total) = (failing.users.failed, failing.users.total());
    assert_eq!(failed, 5);
    assert!(
        quarantine::judge(quarantine::Thresholds::ENTRA, failed, total).is_none()
            && quarantine::judge(deployment, failed, total).is_none(),
        "neither Entra's nor the deployment's thresholds alone quarantine {failed} of {total}"
    );
    let (status, kind, reason, _, _) = state(&stack).await;
    assert_eq!(status, "Quarantine");
    assert_eq!(kind.as_deref(), Some("failures"));
    let reason = reason.unwrap();
    assert!(
        reason.contains(&format!("5 of {total}")) && reason.contains("more than 10%"),
        "{reason}"
    );
    stack.shutdown().await.unwrap();
}
