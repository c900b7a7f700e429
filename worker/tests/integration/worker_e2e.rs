//! The whole worker against RabbitMQ, PostgreSQL, Redis and the fake SCIM server: create
//! with a 429 honoured, 409 adoption, foreign accounts, skips, patches, deactivation, hard
//! delete, redelivery of a committed batch, and rejection of batches that cannot succeed.

use std::time::Duration;

use dirsync_proto::{Counts, RemovedReason, RunId, TenantId};
use dirsync_worker::WorkerSettings;
use dirsync_worker::mirror::load_mirror;
use lapin::options::QueueDeclareOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{TestDb, TopologyGuard, amqp_url, unique_topology};
use crate::fake_scim::{FakeScim, TOKEN};
use crate::harness::{
    RunningWorker, batch, next_event, publish_raw, results_consumer, run_counts, tombstone, user,
};

#[tokio::test]
async fn worker_end_to_end() {
    let db = TestDb::new().await;
    let fake = FakeScim::start().await;
    let topology = unique_topology();
    let (tenant, run) = db.seed(&fake.base_url, TOKEN, true).await;
    let _guard = TopologyGuard {
        topology: topology.clone(),
        runs: vec![run],
    };
    let pre_id = fake.insert(
        [
            ("userName".to_string(), json!("pre@x.com")),
            ("displayName".to_string(), json!("Old")),
        ]
        .into(),
    );
    {
        let mut s = fake.state.lock().unwrap();
        s.foreign.insert("foreign@x.com".into());
        s.throttle_once.insert("ada@x.com".into());
    }

    let settings = WorkerSettings {
        prefetch: 4,
        scim_concurrency: 4,
        requeue_delay: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(30),
        ..WorkerSettings::default()
    };
    let mut worker = RunningWorker::start(db.pool.clone(), &topology, settings).await;
    let channel = &worker.channel;
    let mut events = results_consumer(channel, &topology, run).await;

    // Batch 0: create (after a 429), adopt on 409, foreign account, disabled, unknown tombstone.
    let batch0 = batch(
        tenant,
        run,
        0,
        vec![
            user(
                "e-ada",
                json!({"userPrincipalName": "ada@x.com", "displayName": "Ada", "givenName": "Ada",
                                "surname": "Lovelace", "accountEnabled": true}),
            ),
            user(
                "e-pre",
                json!({"userPrincipalName": "PRE@x.com", "displayName": "Pre", "accountEnabled": true}),
            ),
            user(
                "e-foreign",
                json!({"userPrincipalName": "foreign@x.com", "accountEnabled": true}),
            ),
            user(
                "e-dis",
                json!({"userPrincipalName": "dis@x.com", "accountEnabled": false}),
            ),
            tombstone("e-unknown", RemovedReason::Deleted),
        ],
    );
    publish_raw(channel, &topology, &batch0.encode()).await;
    let event = next_event(&mut events).await;
    let counts0 = Counts {
        synced: 2,
        skipped: 2,
        failed: 1,
    };
    assert_eq!(
        (event.tenant_id, event.run_id, event.seq, event.counts),
        (tenant, run, 0, counts0)
    );

    let (ada_id, adopted_id) = {
        let s = fake.state.lock().unwrap();
        let (ada_id, ada) = s.by_user_name("ada@x.com").expect("ada created");
        assert_eq!(ada["externalId"], json!("e-ada"));
        assert_eq!(ada["name.familyName"], json!("Lovelace"));
        assert_eq!(ada["emails[type eq \"work\"].value"], json!("ada@x.com"));
        let ada_posts: Vec<_> = s
            .posts
            .iter()
            .filter(|(n, _, _)| n == "ada@x.com")
            .collect();
        assert_eq!(
            ada_posts.iter().map(|p| p.2).collect::<Vec<_>>(),
            [429, 201]
        );
        assert!(
            ada_posts[1].1 - ada_posts[0].1 >= Duration::from_millis(300),
            "Retry-After honoured"
        );
        let (adopted_id, pre) = s.by_user_name("pre@x.com").expect("pre still there");
        assert_eq!(
            pre["externalId"],
            json!("e-pre"),
            "adopted user gets our externalId"
        );
        assert_eq!(pre["displayName"], json!("Pre"));
        assert!(
            s.by_user_name("dis@x.com").is_none(),
            "disabled users are never created"
        );
        (ada_id.clone(), adopted_id.clone())
    };
    assert_eq!(adopted_id, pre_id, "no duplicate user on 409");

    let ids: Vec<String> = ["e-ada", "e-pre", "e-foreign", "e-dis"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mirror = load_mirror(&db.pool, tenant, &ids).await.unwrap();
    assert_eq!(mirror.len(), 2);
    assert_eq!(mirror["e-ada"].webex_id, ada_id);
    assert_eq!(mirror["e-pre"].webex_id, pre_id);
    assert_eq!(
        db.failed_objects(run).await,
        vec![(
            "e-foreign".to_string(),
            "userName taken by an account outside this org".to_string()
        )]
    );

    // Batch 1: a minimal change is patched, a soft delete deactivates. Then batch 0 again.
    let posts_before = fake.state.lock().unwrap().count("POST");
    let batch1 = batch(
        tenant,
        run,
        1,
        vec![
            user("e-ada", json!({"displayName": "Ada K"})),
            tombstone("e-pre", RemovedReason::Changed),
        ],
    );
    publish_raw(channel, &topology, &batch1.encode()).await;
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.seq, event.counts),
        (
            1,
            Counts {
                synced: 2,
                skipped: 0,
                failed: 0
            }
        )
    );
    publish_raw(channel, &topology, &batch0.encode()).await;
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.seq, event.counts),
        (0, counts0),
        "a redelivered batch reports its stored counts"
    );
    {
        let s = fake.state.lock().unwrap();
        assert_eq!(
            s.count("POST"),
            posts_before,
            "a redelivered batch is not pushed again"
        );
        assert_eq!(s.users[&ada_id]["displayName"], json!("Ada K"));
        assert_eq!(
            s.users[&ada_id]["name.givenName"],
            json!("Ada"),
            "absent values are kept"
        );
        assert_eq!(s.users[&pre_id]["active"], json!(false));
    }
    let counts = run_counts(&mut worker.redis, &topology, run).await;
    assert_eq!(
        (counts["synced"], counts["skipped"], counts["failed"]),
        (4, 2, 1),
        "batch 0 counted once despite its redelivery"
    );

    // Garbage and a batch of an unknown tenant are rejected, not requeued; then a hard delete.
    publish_raw(channel, &topology, b"not a batch").await;
    let stray = batch(
        TenantId::new(),
        RunId::new(),
        0,
        vec![user("x", json!({"userPrincipalName": "x@x.com"}))],
    );
    publish_raw(channel, &topology, &stray.encode()).await;
    let batch2 = batch(
        tenant,
        run,
        2,
        vec![tombstone("e-pre", RemovedReason::Deleted)],
    );
    publish_raw(channel, &topology, &batch2.encode()).await;
    let event = next_event(&mut events).await;
    assert_eq!(
        (event.seq, event.counts),
        (
            2,
            Counts {
                synced: 1,
                skipped: 0,
                failed: 0
            }
        )
    );
    assert!(
        !fake.state.lock().unwrap().users.contains_key(&pre_id),
        "hard delete reached Webex"
    );
    let mirror = load_mirror(&db.pool, tenant, &ids).await.unwrap();
    assert!(!mirror.contains_key("e-pre"));
    assert!(mirror["e-ada"].active);

    // Shutdown: the worker stops cleanly; nothing is left in (or returned to) the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        worker.stop().await,
        0,
        "every delivery was acked or rejected without requeue"
    );
}

#[tokio::test]
async fn run_connects_migrates_and_stops_when_cancelled() {
    let db = TestDb::new().await;
    let topology = unique_topology();
    let _guard = TopologyGuard {
        topology: topology.clone(),
        runs: vec![],
    };
    let config = dirsync_worker::WorkerConfig {
        amqp_url: amqp_url(),
        database_url: db.url(),
        redis_url: crate::common::redis_url(),
        prefix: topology.prefix().to_string(),
        delivery_limit: topology.delivery_limit(),
        prefetch: 2,
        priority_prefetch: 1,
        scim_concurrency: 2,
        scim_rate_per_org: 50.0,
        scim_burst_per_org: 10,
        secrets_key: Some(crate::common::secrets_key()),
        // Any free port: the endpoint starts and stops with the worker.
        http_addr: "127.0.0.1:0".parse().unwrap(),
        // The SCIM server of the test is on the loopback interface.
        allowed_hosts: vec!["127.0.0.1".into()],
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dirsync_worker::run(config, shutdown.clone()));
    let amqp = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    // The worker declares the queue; wait until it exists (a passive declare of a missing
    // queue closes the channel, so each try uses a new one).
    let mut declared = false;
    for _ in 0..50 {
        let probe = amqp.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let queue = ShortString::from(topology.batch_queue());
        if probe
            .queue_declare(queue, passive, FieldTable::default())
            .await
            .is_ok()
        {
            declared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(declared, "the worker declared its queue");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(channel);
    let _ = amqp.close(200, ShortString::from("done")).await;
}
