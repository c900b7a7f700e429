//! Tenant isolation in the worker: a batch reaches only the Webex org of the tenant it names,
//! with that tenant's credentials from PostgreSQL, and only when its run is that tenant's.
//!
//! A worker takes the org (SCIM base URL) and the token from the tenant the message names
//! and records into the run the message names. A forged message naming tenant A with a run
//! of tenant B would push B's run's users into A's org and record them in B's run: B's real
//! batch with that sequence number would then be taken as done and never pushed. Such a
//! batch is refused for good (`WorkerError::ForeignRun`): nothing is sent to either org and
//! nothing recorded. Claims about the org, its URL or a token inside a message are not part
//! of the wire format and change nothing. Two real tenants, real runs, the real broker,
//! PostgreSQL and Redis; the batches go straight to `BatchProcessor::process`, the code
//! behind every delivery of both lanes.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_proto::{BatchMessage, RunId, SourceUser, TenantId, WIRE_VERSION};
use dirsync_worker::{Worker, WorkerError, WorkerSettings};

/// A user entry as a Graph page carries it.
fn user(id: &str, upn: &str) -> SourceUser {
    serde_json::from_value(json!({
        "id": id,
        "attributes": {
            "userPrincipalName": upn,
            "displayName": "Forged User",
            "givenName": "Forged",
            "surname": "User",
            "mail": upn,
            "accountEnabled": true
        }
    }))
    .unwrap()
}

fn batch(tenant: TenantId, run: RunId, seq: u32, users: Vec<SourceUser>) -> BatchMessage {
    BatchMessage {
        version: WIRE_VERSION,
        tenant_id: tenant,
        run_id: run,
        seq,
        users,
        groups: Vec::new(),
        dry_run: false,
    }
}

async fn recorded(stack: &Stack, run: RunId, seq: u32) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM batch_results WHERE run_id = $1 AND seq = $2)")
        .bind(run.0)
        .bind(seq as i32)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap()
}

async fn mirrored(stack: &Stack, entra_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM mirror_users WHERE entra_id = $1")
        .bind(entra_id)
        .fetch_one(&stack.env.pool)
        .await
        .unwrap()
}

fn has_user(stack: &Stack, org: &str, user_name: &str) -> bool {
    stack
        .scim
        .users(org)
        .iter()
        .any(|u| u["userName"].as_str() == Some(user_name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cannot_cross_tenants() {
    let stack = Stack::start(&StackOptions::new("isolation", 30))
        .await
        .unwrap();
    let b = stack.add_tenant("Tenant B", 30, 7).await.unwrap();
    let amqp = lapin::Connection::connect(&stack.env.amqp_url, Default::default())
        .await
        .unwrap();
    let settings = WorkerSettings {
        secrets: Some(stack.env.secrets_key.clone()),
        ..WorkerSettings::default()
    };

    // Both tenants synced once by a worker: real runs, real mirrors, real orgs.
    let worker = Worker::new(
        stack.env.pool.clone(),
        redis::aio::ConnectionManager::new(
            redis::Client::open(stack.env.redis_url.as_str()).unwrap(),
        )
        .await
        .unwrap(),
        &amqp,
        stack.env.topology(),
        settings.clone(),
    )
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let worker = tokio::spawn(worker.run(stop.clone()));
    let run_a = stack.cycle("tenant a", None).await.unwrap().run_id;
    let run_b = stack
        .runner
        .sync_tenant(b.tenant_id, None, &CancellationToken::new())
        .await
        .unwrap()
        .run_id;
    stop.cancel();
    worker.await.unwrap().unwrap();
    let (a, org_a, org_b) = (stack.tenant_id, stack.org_id.clone(), b.org_id.clone());
    assert!(!stack.scim.users(&org_a).is_empty() && !stack.scim.users(&org_b).is_empty());

    let processor = stack.env.batch_processor(&amqp, settings).await.unwrap();
    let requests = |org: &str| stack.scim.counters(org).requests();
    let (before_a, before_b) = (requests(&org_a), requests(&org_b));

    // Forged: one tenant's id with the other's run, both ways round.
    let seq = 90_000;
    let forged = [
        (a, run_b, "forged-1", "forged1@contoso.example"),
        (b.tenant_id, run_a, "forged-2", "forged2@tenant7.example"),
    ];
    for (tenant, run, id, upn) in forged {
        let error = processor
            .process(&batch(tenant, run, seq, vec![user(id, upn)]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, WorkerError::ForeignRun { tenant: t, run: r, .. } if *t == tenant && *r == run),
            "{error}"
        );
        assert!(!error.is_retryable(), "a forged batch is never requeued");
        assert!(
            !recorded(&stack, run, seq).await,
            "recorded into the other tenant's run"
        );
        assert_eq!(mirrored(&stack, id).await, 0, "{id} has a mirror row");
        for org in [&org_a, &org_b] {
            assert!(!has_user(&stack, org, upn), "{upn} reached org {org}");
        }
    }
    assert_eq!(requests(&org_a), before_a, "a forged batch reached org A");
    assert_eq!(requests(&org_b), before_b, "a forged batch reached org B");

    // A message claiming another org, URL or token (not wire fields) still goes to the
    // named tenant's own org with its own token: here tenant A and A's run, so it is pushed,
    // which also shows the same call does push when the tenants match.
    let mut claims = serde_json::to_value(batch(
        a,
        run_a,
        seq,
        vec![user("claims-1", "claims1@contoso.example")],
    ))
    .unwrap();
    let scim_url = format!("{}/identity/scim/{org_b}/v2", stack.scim_sim_url());
    claims["org_id"] = json!(org_b);
    claims["scim_base_url"] = json!(scim_url);
    claims["scim_token"] = json!("not-a-token");
    claims["users"][0]["attributes"]["scim_base_url"] = json!(scim_url);
    let message = BatchMessage::decode(&serde_json::to_vec(&claims).unwrap()).unwrap();
    let counts = processor.process(&message).await.unwrap();
    assert_eq!(counts.synced, 1, "{counts:?}");
    assert!(has_user(&stack, &org_a, "claims1@contoso.example"));
    assert!(!has_user(&stack, &org_b, "claims1@contoso.example"));
    assert!(recorded(&stack, run_a, seq).await);
    assert_eq!(requests(&org_b), before_b, "org B was contacted");

    stack.shutdown().await.unwrap();
}
