//! Deferred manager references on the mirror rows: the write that records a user sets,
//! keeps or clears its deferral, whatever else the batch does to the row.

use dirsync_proto::{PARTIAL_ATTRIBUTE, RunId, SourceUser, TenantId};
use dirsync_worker::outcome::UserResult;
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
    let refs = RefChanges::of_batch(entries, deferred);
    record_batch_with(pool, key, results, &refs).await.unwrap();
}

/// (user, deferred manager) of every row, `''` read as none.
async fn deferrals(pool: &PgPool, tenant: TenantId) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "SELECT entra_id, NULLIF(deferred_manager, '') FROM mirror_users \
         WHERE tenant_id = $1 ORDER BY entra_id",
    )
    .bind(tenant.0)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn rows(expected: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    expected
        .iter()
        .map(|(id, m)| (id.to_string(), m.map(str::to_string)))
        .collect()
}

#[tokio::test]
async fn a_deferral_is_set_kept_moved_and_cleared_with_the_row() {
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
    assert_eq!(
        deferrals(&db.pool, ids.0).await,
        rows(&[("a", Some("m1")), ("b", None), ("c", None)])
    );

    // a changes without a word about its manager: its deferral stays. b is unchanged
    // (no mirror write) but now waits for m2. c's manager is gone (null): nothing waits.
    record(
        &db.pool,
        ids,
        1,
        &[
            entry("a", json!({"displayName": "renamed"})),
            entry("b", json!({"manager": "m2"})),
            entry("c", json!({"manager": null})),
        ],
        vec![waits("b", "m2")],
        &[
            upsert("a", "w-a", true),
            UserResult::skipped("b"),
            UserResult::skipped("c"),
        ],
    )
    .await;
    assert_eq!(
        deferrals(&db.pool, ids.0).await,
        rows(&[("a", Some("m1")), ("b", Some("m2")), ("c", None)])
    );

    // The reference pass applies a's manager and finds b's still missing; a failed
    // attempt for b keeps it waiting.
    let pass = [partial("a", "m1"), partial("b", "m2")];
    record(
        &db.pool,
        ids,
        2,
        &pass,
        vec![waits("b", "m2")],
        &[upsert("a", "w-a", true), UserResult::failed("b", "boom")],
    )
    .await;
    assert_eq!(
        deferrals(&db.pool, ids.0).await,
        rows(&[("a", None), ("b", Some("m2")), ("c", None)])
    );
}
