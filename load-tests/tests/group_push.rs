//! The worker's group push against the Webex SCIM simulator: large member lists in chunks of
//! 500, a redelivered create that adopts the group it made instead of making a second one,
//! removals in chunks, and deletion.

use dirsync_load_tests::fleet::{Stack, StackOptions};
use dirsync_proto::{RemovedReason, RunId, SourceGroup};
use dirsync_worker::group_sync::{GroupOutcome, record_groups, sync_groups};
use dirsync_worker::record::BatchKey;
use dirsync_worker::scim::user_resource;
use serde_json::json;

const MEMBERS: usize = 1_201;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_pushed_in_chunks_adopted_on_redelivery_and_deleted() {
    let stack = Stack::start(&StackOptions::new("group_push", 1))
        .await
        .unwrap();
    let pool = stack.env.pool.clone();
    let client = stack.scim_client().await.unwrap();

    // 1,201 users in Webex from dirsync (mirror rows), members of one Entra group.
    let mut entra = Vec::new();
    for i in 0..MEMBERS {
        let attrs = [
            ("userName", json!(format!("m{i}@contoso.example"))),
            (
                "emails[type eq \"work\"].value",
                json!(format!("m{i}@contoso.example")),
            ),
            ("externalId", json!(format!("e{i}"))),
            ("userType", json!("user")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let created = client
            .create_user(&user_resource(&attrs).unwrap())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO mirror_users (tenant_id, entra_id, webex_id, content_hash, active, attributes) \
             VALUES ($1, $2, $3, 0, true, '{}')",
        )
        .bind(stack.tenant_id.0)
        .bind(format!("e{i}"))
        .bind(&created.id)
        .execute(&pool)
        .await
        .unwrap();
        entra.push(format!("e{i}"));
    }
    let run = RunId::new();
    sqlx::query("INSERT INTO runs (id, tenant_id, kind) VALUES ($1, $2, 'incremental')")
        .bind(run.0)
        .bind(stack.tenant_id.0)
        .execute(&pool)
        .await
        .unwrap();
    let key = |seq| BatchKey {
        tenant: stack.tenant_id,
        run,
        seq,
    };
    let group = |members: &[String], removed| SourceGroup {
        id: "g-entra".into(),
        removed,
        display_name: Some("All Staff".into()),
        // An Entra member that is not in Webex leaves the group to be synced.
        members: members
            .iter()
            .cloned()
            .chain(["not-synced".into()])
            .collect(),
    };
    let counters = || stack.scim.counters(&stack.org_id);
    let members_in_webex = || {
        let groups = stack.scim.groups(&stack.org_id);
        assert_eq!(groups.len(), 1, "exactly one webex group");
        let id = groups[0]["id"].as_str().unwrap().to_string();
        stack
            .scim
            .group_member_ids(&stack.org_id, &id)
            .unwrap()
            .len()
    };

    let created = sync_groups(&pool, &client, stack.tenant_id, &[group(&entra, None)])
        .await
        .unwrap();
    assert_eq!(created[0].outcome, GroupOutcome::Pending);
    assert_eq!(counters().group_create, 1);
    assert_eq!(counters().group_patch, 2, "500 in the POST, then 500 + 201");
    assert_eq!(members_in_webex(), MEMBERS);

    // The batch is redelivered before its result was recorded: no second group.
    let again = sync_groups(&pool, &client, stack.tenant_id, &[group(&entra, None)])
        .await
        .unwrap();
    assert_eq!(again[0].mirror, created[0].mirror);
    assert_eq!(
        counters().group_create,
        1,
        "the group made before is adopted"
    );
    assert!(
        record_groups(&pool, key(0), &again)
            .await
            .unwrap()
            .newly_recorded
    );
    assert!(
        !record_groups(&pool, key(0), &again)
            .await
            .unwrap()
            .newly_recorded
    );

    // 600 members leave: two removal PATCHes, nothing else.
    let before = counters();
    let kept = &entra[600..];
    let shrunk = sync_groups(&pool, &client, stack.tenant_id, &[group(kept, None)])
        .await
        .unwrap();
    record_groups(&pool, key(1), &shrunk).await.unwrap();
    assert_eq!(counters().group_patch - before.group_patch, 2);
    assert_eq!(counters().group_put, 0);
    assert_eq!(members_in_webex(), MEMBERS - 600);

    // Deleted in Entra: deleted in Webex, and forgotten.
    let gone = sync_groups(
        &pool,
        &client,
        stack.tenant_id,
        &[group(&[], Some(RemovedReason::Deleted))],
    )
    .await
    .unwrap();
    record_groups(&pool, key(2), &gone).await.unwrap();
    assert!(stack.scim.groups(&stack.org_id).is_empty());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror_groups WHERE tenant_id = $1")
        .bind(stack.tenant_id.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    stack.shutdown().await.unwrap();
}
