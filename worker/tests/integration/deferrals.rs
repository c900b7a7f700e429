//! Deferred manager references (`deferred_refs`): the write that records a batch sets,
//! moves or deletes them, and applying one leaves the user's mirror row alone.

use dirsync_proto::{PARTIAL_ATTRIBUTE, RunId, SourceUser, TenantId};
use dirsync_worker::mirror::load_mirror;
use dirsync_worker::outcome::{Status, UserResult};
use dirsync_worker::pipeline::Deferred;
use dirsync_worker::record::{BatchKey, RefChanges, record_batch_with};
use serde_json::{Map, Value, json};
use sqlx::PgPool;

use crate::common::TestDb;
use crate::record::upsert;

fn entry(id: &str, attributes: Value) -> SourceUser {
    let attributes: Map<String, Value> = serde_json::from_value(attributes).unwrap();
    SourceUser {
        id: id.into(),
        removed: None,
        attributes,
    }
}

/// A reference pass entry: only the reference.
fn partial(id: &str, manager: &str) -> SourceUser {
    let mut e = entry(id, json!({ "manager": manager }));
    e.attributes
        .insert(PARTIAL_ATTRIBUTE.into(), Value::Bool(true));
    e
}

fn waits(user: &str, manager: &str) -> Deferred {
    Deferred {
        entra_id: user.into(),
        manager_id: manager.into(),
    }
}

async fn record(
    pool: &PgPool,
    (tenant, run): (TenantId, RunId),
    seq: u32,
    entries: &[SourceUser],
    deferred: Vec<Deferred>,
    results: &[UserResult],
) {
    let key = BatchKey { tenant, run, seq };
    // The deferrals the batch settles are those its mirror read shows.
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    let mirror = load_mirror(pool, tenant, &ids).await.unwrap();
    let refs = RefChanges::of_batch(entries, &mirror, deferred);
    record_batch_with(pool, key, results, &refs).await.unwrap();
}

/// (user, manager it waits for) of every deferral of the tenant.
async fn deferrals(pool: &PgPool, tenant: TenantId) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT entra_id, manager_id FROM deferred_refs WHERE tenant_id = $1 ORDER BY entra_id",
    )
    .bind(tenant.0)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn rows(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(id, m)| (id.to_string(), m.to_string()))
        .collect()
}

/// The text of a user's mirror row and when it was last written.
async fn mirror_row(pool: &PgPool, tenant: TenantId, id: &str) -> (String, String) {
    sqlx::query_as(
        "SELECT attributes::text, updated_at::text FROM mirror_users \
         WHERE tenant_id = $1 AND entra_id = $2",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_deferral_is_set_kept_moved_and_settled_without_rewriting_the_row() {
    let db = TestDb::new().await;
    let ids = db.seed("http://scim.invalid/v2", "tok", true).await;

    // a waits for m1; b's manager is in Webex (applied); c names no manager.
    record(
        &db.pool,
        ids,
        0,
        &[
            entry("a", json!({"manager": "m1"})),
            entry("b", json!({"manager": "m0"})),
            entry("c", json!({"displayName": "c"})),
        ],
        vec![waits("a", "m1")],
        &[
            upsert("a", "w-a", true),
            upsert("b", "w-b", true),
            upsert("c", "w-c", true),
        ],
    )
    .await;
    assert_eq!(deferrals(&db.pool, ids.0).await, rows(&[("a", "m1")]));

    // a changes without a word about its manager: it waits again (the pipeline defers it
    // once more). b is unchanged (no mirror write) but now waits for m2. c waited for
    // nothing and still does.
    record(
        &db.pool,
        ids,
        1,
        &[
            entry("a", json!({"displayName": "renamed"})),
            entry("b", json!({"manager": "m2"})),
            entry("c", json!({"manager": null})),
        ],
        vec![waits("a", "m1"), waits("b", "m2")],
        &[
            upsert("a", "w-a", true),
            UserResult::skipped("b"),
            UserResult::skipped("c"),
        ],
    )
    .await;
    assert_eq!(
        deferrals(&db.pool, ids.0).await,
        rows(&[("a", "m1"), ("b", "m2")])
    );

    // The reference pass sends a's manager (its mirror row already records it: no mirror
    // write) and finds b's still missing; a failed attempt for b keeps it waiting.
    let before = mirror_row(&db.pool, ids.0, "a").await;
    let pass = [partial("a", "m1"), partial("b", "m2")];
    let sent = UserResult {
        entra_id: "a".into(),
        status: Status::Synced,
        mirror: None,
    };
    record(
        &db.pool,
        ids,
        2,
        &pass,
        vec![waits("b", "m9")],
        &[sent, UserResult::failed("b", "boom")],
    )
    .await;
    assert_eq!(deferrals(&db.pool, ids.0).await, rows(&[("b", "m2")]));
    assert_eq!(mirror_row(&db.pool, ids.0, "a").await, before);
}

#[tokio::test]
async fn a_deferral_another_batch_wrote_meanwhile_is_kept() {
    let db = TestDb::new().await;
    let ids = db.seed("http://scim.invalid/v2", "tok", true).await;
    let (tenant, run) = ids;
    record(
        &db.pool,
        ids,
        0,
        &[entry("b", json!({"manager": "m2"}))],
        vec![waits("b", "m2")],
        &[upsert("b", "w-b", true)],
    )
    .await;

    // This batch reads b waiting for m2 and sends it; before it records, another batch
    // makes b wait for m7.
    let mirror = load_mirror(&db.pool, tenant, &["b".to_string()])
        .await
        .unwrap();
    let entries = [partial("b", "m2")];
    let refs = RefChanges::of_batch(&entries, &mirror, Vec::new());
    sqlx::query("UPDATE deferred_refs SET manager_id = 'm7' WHERE entra_id = 'b'")
        .execute(&db.pool)
        .await
        .unwrap();
    let sent = UserResult {
        entra_id: "b".into(),
        status: Status::Synced,
        mirror: None,
    };
    let key = BatchKey {
        tenant,
        run,
        seq: 1,
    };
    record_batch_with(&db.pool, key, &[sent], &refs)
        .await
        .unwrap();
    assert_eq!(deferrals(&db.pool, tenant).await, rows(&[("b", "m7")]));
}
