//! End-to-end escrow: a user whose push fails for a reason of its own (its userName is taken
//! in another Webex org) is failed, not the batch; it waits in escrow, is read again by id
//! only once its retry is due, and is released when a retry succeeds.

use dirsync_coordinator::escrow::{self, EscrowEntry};
use dirsync_load_tests::fleet::{Stack, StackOptions, create_scim_user};
use dirsync_load_tests::graph_sim::UserState;

async fn entries(stack: &Stack) -> Vec<EscrowEntry> {
    escrow::list(&stack.env.pool, stack.tenant_id, &[0])
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_user_waits_in_escrow_and_is_retried_when_due() {
    let mut stack = Stack::start_with_workers(&StackOptions::new("escrow", 100), 1)
        .await
        .unwrap();
    let victim = stack
        .graph
        .snapshot(&stack.entra_tenant)
        .unwrap()
        .into_iter()
        .filter(|u| u.state == UserState::Live && u.user.account_enabled)
        .min_by(|a, b| a.user.id.cmp(&b.user.id))
        .unwrap()
        .user;

    // Another org already has a user with the victim's userName (unique across Webex).
    let other = stack.other_org_client().await.unwrap();
    let squatter = create_scim_user(&other, &victim.user_principal_name)
        .await
        .unwrap();

    let initial = stack.cycle("initial", None).await.unwrap();
    assert_eq!(
        initial.users.failed, 1,
        "one user failed, the batch did not"
    );
    let held = entries(&stack).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].entra_id, victim.id);
    assert_eq!(held[0].attempts, 1);
    assert!(!held[0].reason.is_empty());

    // Not due yet (Entra's 6 h): the next run leaves it alone.
    let reads = || {
        stack
            .graph
            .requests(&stack.entra_tenant)
            .unwrap()
            .filtered_reads
    };
    let before = reads();
    stack.cycle("not due", None).await.unwrap();
    assert_eq!(reads(), before, "not read again before its retry is due");
    assert_eq!(entries(&stack).await[0].attempts, 1);

    // Due at once: read by id, fails again, one more attempt.
    stack.runner = stack.runner.clone().with_escrow_retry(&[0]);
    let retried = stack.cycle("due", None).await.unwrap();
    assert_eq!(reads(), before + 1);
    assert_eq!(retried.users.failed, 1);
    assert_eq!(entries(&stack).await[0].attempts, 2);

    // The conflict is gone: the retry succeeds and the user leaves escrow.
    other.delete_user(&squatter).await.unwrap();
    let fixed = stack.cycle("fixed", None).await.unwrap();
    assert_eq!(fixed.users.failed, 0);
    assert_eq!(fixed.users.synced, 1);
    assert!(entries(&stack).await.is_empty());
    assert!(stack.verdict().unwrap().converged);
    stack.shutdown().await.unwrap();
}
