//! A tenant whose SCIM token is refused mid-batch: nothing of the batch is recorded while
//! it lasts, the batch comes back, and once the token works it is recorded exactly once,
//! with exact counts, no duplicate users, and only the truly failed user failed.

use std::time::Duration;

use axum::http::StatusCode;
use dirsync_proto::{Counts, RemovedReason};
use dirsync_worker::WorkerSettings;
use dirsync_worker::hash::{content_hash, to_db};
use dirsync_worker::map::ScimAttributes;
use dirsync_worker::mirror::load_mirror;
use futures_util::StreamExt;
use serde_json::json;
use sqlx::PgPool;

use crate::common::{TestDb, TopologyGuard, unique_topology};
use crate::fake_scim::{FakeScim, Fault, TOKEN};
use crate::harness::{
    RunningWorker, batch, next_event, publish_raw, results_consumer, run_counts, tombstone, user,
};

/// A user pushed by an earlier run: in Webex and in the mirror.
async fn managed(
    db: &TestDb,
    fake: &FakeScim,
    tenant: dirsync_proto::TenantId,
    id: &str,
) -> String {
    let attributes: ScimAttributes = [
        ("userName".to_string(), json!(format!("{id}@x.com"))),
        ("externalId".to_string(), json!(id)),
        ("displayName".to_string(), json!("Old")),
        ("active".to_string(), json!(true)),
    ]
    .into();
    let webex_id = fake.insert(attributes.clone());
    sqlx::query(
        "INSERT INTO mirror_users (tenant_id, entra_id, webex_id, content_hash, active, attributes) \
         VALUES ($1, $2, $3, $4, true, $5)",
    )
    .bind(tenant.0)
    .bind(id)
    .bind(&webex_id)
    .bind(to_db(content_hash(&attributes)))
    .bind(sqlx::types::Json(&attributes))
    .execute(&db.pool)
    .await
    .unwrap();
    webex_id
}

async fn batch_rows(pool: &PgPool, run: dirsync_proto::RunId) -> Vec<(i32, i32, i32, i32)> {
    sqlx::query_as("SELECT seq, synced, skipped, failed FROM batch_results WHERE run_id = $1")
        .bind(run.0)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refused_token_defers_the_batch_instead_of_failing_users() {
    let db = TestDb::new().await;
    let fake = FakeScim::start().await;
    let topology = unique_topology();
    let (tenant, run) = db.seed(&fake.base_url, TOKEN, true).await;
    let _guard = TopologyGuard {
        topology: topology.clone(),
        runs: vec![run],
    };
    let patched_id = managed(&db, &fake, tenant, "e-pat").await;
    let gone_id = managed(&db, &fake, tenant, "e-gone").await;
    let pre_id = fake.insert([("userName".to_string(), json!("pre@x.com"))].into());
    fake.state
        .lock()
        .unwrap()
        .foreign
        .insert("foreign@x.com".into());

    // One request at a time, so the first attempt is in batch order: POST new, PATCH pat,
    // DELETE gone, POST foreign + GET (a per-user failure), then the token is refused from
    // the POST of late onwards, after three writes already reached Webex.
    fake.state.lock().unwrap().fault = Some(Fault {
        status: StatusCode::UNAUTHORIZED,
        requests: 5..usize::MAX,
    });
    let settings = WorkerSettings {
        prefetch: 1,
        scim_concurrency: 1,
        requeue_delay: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(30),
        ..WorkerSettings::default()
    };
    let mut worker = RunningWorker::start(db.pool.clone(), &topology, settings).await;
    let channel = &worker.channel;
    let mut events = results_consumer(channel, &topology, run).await;

    let batch0 = batch(
        tenant,
        run,
        0,
        vec![
            user(
                "e-new",
                json!({"userPrincipalName": "new@x.com", "accountEnabled": true}),
            ),
            user("e-pat", json!({"displayName": "New name"})),
            tombstone("e-gone", RemovedReason::Deleted),
            user(
                "e-foreign",
                json!({"userPrincipalName": "foreign@x.com", "accountEnabled": true}),
            ),
            user(
                "e-late",
                json!({"userPrincipalName": "late@x.com", "accountEnabled": true}),
            ),
            user(
                "e-pre",
                json!({"userPrincipalName": "pre@x.com", "accountEnabled": true}),
            ),
        ],
    );
    publish_raw(channel, &topology, &batch0.encode()).await;

    // The token stays refused until the batch has come back at least twice.
    tokio::time::timeout(Duration::from_secs(30), async {
        while fake.state.lock().unwrap().answered(401) < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the batch is redelivered while the token is refused");
    assert_eq!(
        batch_rows(&db.pool, run).await,
        vec![],
        "nothing recorded meanwhile"
    );
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM failed_objects WHERE run_id = $1")
        .bind(run.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(failed, 0);
    let ids: Vec<String> = ["e-new", "e-pat", "e-gone", "e-foreign", "e-late", "e-pre"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mirror = load_mirror(&db.pool, tenant, &ids).await.unwrap();
    assert_eq!(mirror.len(), 2, "only the rows of the earlier run");
    assert_eq!(mirror["e-pat"].attributes["displayName"], json!("Old"));
    assert!(mirror.contains_key("e-gone"));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), events.next())
            .await
            .is_err(),
        "no result event while the batch is deferred"
    );
    {
        let s = fake.state.lock().unwrap();
        assert_eq!(
            s.named("new@x.com"),
            1,
            "the first attempt's writes reached Webex"
        );
        assert!(!s.users.contains_key(&gone_id));
    }

    // The token works again: the next delivery pushes the batch in full, once.
    fake.state.lock().unwrap().fault = None;
    let event = next_event(&mut events).await;
    let expected = Counts {
        synced: 5,
        skipped: 0,
        failed: 1,
    };
    assert_eq!((event.seq, event.counts), (0, expected));
    assert_eq!(batch_rows(&db.pool, run).await, vec![(0, 5, 0, 1)]);
    assert_eq!(
        db.failed_objects(run).await,
        vec![(
            "e-foreign".to_string(),
            "userName taken by an account outside this org".to_string()
        )]
    );
    let counts = run_counts(&mut worker.redis, &topology, run).await;
    assert_eq!(
        (counts["synced"], counts["skipped"], counts["failed"]),
        (5, 0, 1)
    );

    let (new_id, late_id) = {
        let s = fake.state.lock().unwrap();
        for name in ["new@x.com", "late@x.com", "pre@x.com"] {
            assert_eq!(s.named(name), 1, "no duplicate {name}");
        }
        let new_posts: Vec<u16> = s
            .posts
            .iter()
            .filter(|(n, _, _)| n == "new@x.com")
            .map(|p| p.2)
            .collect();
        assert_eq!(new_posts, [201, 409], "created once, adopted on the redo");
        assert_eq!(s.users[&patched_id]["displayName"], json!("New name"));
        assert!(!s.users.contains_key(&gone_id));
        assert_eq!(s.users[&pre_id]["externalId"], json!("e-pre"));
        let new_id = s.by_user_name("new@x.com").unwrap().0.clone();
        let late_id = s.by_user_name("late@x.com").unwrap().0.clone();
        (new_id, late_id)
    };
    let mirror = load_mirror(&db.pool, tenant, &ids).await.unwrap();
    let mut rows: Vec<(&str, &str)> = mirror
        .iter()
        .map(|(k, v)| (k.as_str(), v.webex_id.as_str()))
        .collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        vec![
            ("e-late", late_id.as_str()),
            ("e-new", new_id.as_str()),
            ("e-pat", patched_id.as_str()),
            ("e-pre", pre_id.as_str()),
        ]
    );
    assert_eq!(mirror["e-pat"].attributes["displayName"], json!("New name"));

    // One event only, and the queue is empty: acked once, after the one recorded attempt.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "a single result event"
    );
    assert_eq!(worker.stop().await, 0);
}
