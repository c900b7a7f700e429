//! The record step: one transaction, exactly once per batch.

use std::collections::BTreeMap;

use dirsync_proto::Counts;
use dirsync_worker::hash::{content_hash, to_db};
use dirsync_worker::map::ScimAttributes;
use dirsync_worker::mirror::load_mirror;
use dirsync_worker::outcome::{MirrorChange, Status, UserResult};
use dirsync_worker::record::{BatchKey, record_batch, stored_counts};
use serde_json::json;

use crate::common::TestDb;

pub(crate) fn attrs(name: &str, active: bool) -> ScimAttributes {
    BTreeMap::from([
        ("userName".to_string(), json!(format!("{name}@x.com"))),
        ("displayName".to_string(), json!(name)),
        ("active".to_string(), json!(active)),
    ])
}

pub(crate) fn upsert(id: &str, webex: &str, active: bool) -> UserResult {
    let attributes = attrs(id, active);
    UserResult {
        entra_id: id.into(),
        status: Status::Synced,
        mirror: Some(MirrorChange::Upsert {
            webex_id: webex.into(),
            content_hash: content_hash(&attributes),
            active,
            attributes_json: serde_json::to_string(&attributes).unwrap(),
            created: false,
        }),
    }
}

/// The result of a user the batch created (no mirror row when planned).
pub(crate) fn created(id: &str, webex: &str, active: bool) -> UserResult {
    let mut result = upsert(id, webex, active);
    if let Some(MirrorChange::Upsert { created, .. }) = &mut result.mirror {
        *created = true;
    }
    result
}

#[tokio::test]
async fn recording_twice_keeps_one_result_and_the_first_effects() {
    let db = TestDb::new().await;
    let (tenant, run) = db.seed("http://scim.invalid/v2", "tok", true).await;

    // A user already in the mirror, to be deleted by the batch.
    let gone = attrs("gone", true);
    sqlx::query(
        "INSERT INTO mirror_users (tenant_id, entra_id, webex_id, content_hash, active, attributes) \
         VALUES ($1, 'gone', 'w-gone', $2, true, $3)",
    )
    .bind(tenant.0)
    .bind(to_db(content_hash(&gone)))
    .bind(sqlx::types::Json(&gone))
    .execute(&db.pool)
    .await
    .unwrap();

    let key = BatchKey {
        tenant,
        run,
        seq: 3,
    };
    let first = vec![
        upsert("a", "w-a", true),
        upsert("b", "w-b", false),
        UserResult {
            entra_id: "gone".into(),
            status: Status::Synced,
            mirror: Some(MirrorChange::Remove),
        },
        UserResult::skipped("s"),
        UserResult::failed("f", "scim 400: bad"),
        UserResult::failed("f2", "scim 403: forbidden"),
    ];
    assert_eq!(stored_counts(&db.pool, run, 3).await.unwrap(), None);
    let recorded = record_batch(&db.pool, key, &first).await.unwrap();
    let expected = Counts {
        synced: 3,
        skipped: 1,
        failed: 2,
    };
    assert!(recorded.newly_recorded);
    assert_eq!(recorded.counts, expected);

    // A second delivery with different outcomes changes nothing and reports the stored counts.
    let second = vec![
        upsert("a", "w-other", false),
        upsert("c", "w-c", true),
        UserResult::failed("g", "x"),
    ];
    let again = record_batch(&db.pool, key, &second).await.unwrap();
    assert!(!again.newly_recorded);
    assert_eq!(again.counts, expected);
    assert_eq!(
        stored_counts(&db.pool, run, 3).await.unwrap(),
        Some(expected)
    );

    let results: i64 = sqlx::query_scalar("SELECT count(*) FROM batch_results WHERE run_id = $1")
        .bind(run.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(results, 1);

    let ids: Vec<String> = ["a", "b", "c", "gone"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mirror = load_mirror(&db.pool, tenant, &ids).await.unwrap();
    assert_eq!(
        mirror.len(),
        2,
        "a and b only: gone deleted, c never recorded"
    );
    assert_eq!(mirror["a"].webex_id, "w-a");
    assert!(mirror["a"].active);
    assert_eq!(mirror["a"].attributes, attrs("a", true));
    assert_eq!(mirror["a"].content_hash, content_hash(&attrs("a", true)));
    assert_eq!(mirror["b"].webex_id, "w-b");
    assert!(!mirror["b"].active);

    assert_eq!(
        db.failed_objects(run).await,
        vec![
            ("f".into(), "scim 400: bad".into()),
            ("f2".into(), "scim 403: forbidden".into())
        ]
    );
}

#[tokio::test]
async fn a_later_batch_updates_mirror_rows() {
    let db = TestDb::new().await;
    let (tenant, run) = db.seed("http://scim.invalid/v2", "tok", true).await;
    record_batch(
        &db.pool,
        BatchKey {
            tenant,
            run,
            seq: 0,
        },
        &[upsert("a", "w-a", true)],
    )
    .await
    .unwrap();
    record_batch(
        &db.pool,
        BatchKey {
            tenant,
            run,
            seq: 1,
        },
        &[upsert("a", "w-a", false)],
    )
    .await
    .unwrap();
    let mirror = load_mirror(&db.pool, tenant, &["a".to_string()])
        .await
        .unwrap();
    assert!(!mirror["a"].active);
    assert_eq!(mirror["a"].attributes, attrs("a", false));
}

#[tokio::test]
async fn a_batch_of_an_unknown_run_is_a_permanent_error() {
    let db = TestDb::new().await;
    let (tenant, _run) = db.seed("http://scim.invalid/v2", "tok", true).await;
    let key = BatchKey {
        tenant,
        run: dirsync_proto::RunId::new(),
        seq: 0,
    };
    let err = record_batch(&db.pool, key, &[UserResult::skipped("a")])
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

/// Two batches recording the same rows at once, listed in opposite orders, must both
/// commit: rows are locked in one order (entra id), so neither waits for the other in a
/// cycle (PostgreSQL would abort one with 40P01).
#[tokio::test]
async fn concurrent_batches_over_the_same_rows_do_not_deadlock() {
    const ROWS: usize = 2000;
    let db = TestDb::new().await;
    let (tenant, run) = db.seed("http://scim.invalid/v2", "tok", true).await;
    let ids: Vec<String> = (0..ROWS).map(|i| format!("u{i:05}")).collect();
    // Existing rows, so both upserts take row locks on conflict.
    let seed: Vec<UserResult> = ids.iter().map(|id| upsert(id, "w", true)).collect();
    let key = move |seq| BatchKey { tenant, run, seq };
    record_batch(&db.pool, key(0), &seed).await.unwrap();

    for round in 0..3u32 {
        let forward: Vec<UserResult> = ids.iter().map(|id| upsert(id, "w1", false)).collect();
        let backward: Vec<UserResult> = ids.iter().rev().map(|id| upsert(id, "w2", true)).collect();
        let (pool_a, pool_b) = (db.pool.clone(), db.pool.clone());
        let (seq_a, seq_b) = (1 + 2 * round, 2 + 2 * round);
        let a = tokio::spawn(async move { record_batch(&pool_a, key(seq_a), &forward).await });
        let b = tokio::spawn(async move { record_batch(&pool_b, key(seq_b), &backward).await });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a.is_ok(), "round {round}: {:?}", a.err());
        assert!(b.is_ok(), "round {round}: {:?}", b.err());
    }
}

/// Created users' rows are inserted; a row that another batch inserted in the meantime (the
/// same user in two pages) is upserted instead, without failing the batch.
#[tokio::test]
async fn created_users_are_inserted_and_one_another_batch_created_meanwhile_is_upserted() {
    let db = TestDb::new().await;
    let (tenant, run) = db.seed("http://scim.invalid/v2", "tok", true).await;
    let key = move |seq| BatchKey { tenant, run, seq };
    let first = record_batch(
        &db.pool,
        key(0),
        &[created("a", "w-a", true), created("b", "w-b", true)],
    )
    .await
    .unwrap();
    assert_eq!(first.counts.synced, 2);

    let second = record_batch(
        &db.pool,
        key(1),
        &[created("b", "w-b2", false), created("c", "w-c", true)],
    )
    .await
    .unwrap();
    assert!(second.newly_recorded);
    assert_eq!(second.counts.synced, 2);

    let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let mirror = load_mirror(&db.pool, tenant, &ids).await.unwrap();
    assert_eq!(mirror.len(), 3);
    assert_eq!(mirror["a"].webex_id, "w-a");
    assert_eq!(mirror["b"].webex_id, "w-b2");
    assert!(!mirror["b"].active);
    assert_eq!(mirror["b"].attributes, attrs("b", false));
    assert_eq!(mirror["c"].webex_id, "w-c");
    // Inserted and upserted rows are stamped alike, with the batch that wrote them last.
    let stamps: Vec<(String, Option<uuid::Uuid>, Option<i32>)> = sqlx::query_as(
        "SELECT entra_id, last_seen_run, last_seen_seq FROM mirror_users \
         WHERE tenant_id = $1 ORDER BY entra_id",
    )
    .bind(tenant.0)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        stamps,
        vec![
            ("a".to_string(), Some(run.0), Some(0)),
            ("b".to_string(), Some(run.0), Some(1)),
            ("c".to_string(), Some(run.0), Some(1)),
        ]
    );
}

/// Two batches that both created the same users record at once: one inserts, the other
/// waits for it, finds the rows and upserts them. Both commit.
#[tokio::test]
async fn concurrent_batches_creating_the_same_users_both_commit() {
    const ROWS: usize = 2000;
    let db = TestDb::new().await;
    let (tenant, run) = db.seed("http://scim.invalid/v2", "tok", true).await;
    let ids: Vec<String> = (0..ROWS).map(|i| format!("u{i:05}")).collect();
    let key = move |seq| BatchKey { tenant, run, seq };
    let forward: Vec<UserResult> = ids.iter().map(|id| created(id, "w1", true)).collect();
    let backward: Vec<UserResult> = ids.iter().rev().map(|id| created(id, "w2", true)).collect();
    let (pool_a, pool_b) = (db.pool.clone(), db.pool.clone());
    let a = tokio::spawn(async move { record_batch(&pool_a, key(1), &forward).await });
    let b = tokio::spawn(async move { record_batch(&pool_b, key(2), &backward).await });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.unwrap().counts.synced, ROWS as u64);
    assert_eq!(b.unwrap().counts.synced, ROWS as u64);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_users WHERE tenant_id = $1")
        .bind(tenant.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, ROWS as i64);
}
