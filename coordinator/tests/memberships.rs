//! `MembershipStore` against a real PostgreSQL, one fresh database per test: rounds of
//! `groups/delta` applied in one transaction, nested groups (with a cycle) resolved
//! transitively, soft and hard group deletes, replays, tenant isolation, large rounds.

mod common;

use common::db::TestDb;
use std::collections::HashSet;

use serde_json::{Value, json};

use dirsync_coordinator::graph::groups::{GroupsDelta, MemberKind, parse_groups_page};
use dirsync_coordinator::memberships::{MembershipStore, StoredGroup};
use dirsync_proto::TenantId;

/// A member entry: `"u1"` a user, `"g:g2"` a group, a leading `-` a removal.
fn member(spec: &str) -> Value {
    let (removed, spec) = match spec.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let (ty, id) = match spec.strip_prefix("g:") {
        Some(g) => ("#microsoft.graph.group", g),
        None => ("#microsoft.graph.user", spec),
    };
    let mut e = json!({"@odata.type": ty, "id": id});
    if removed {
        e["@removed"] = json!({"reason": "deleted"});
    }
    e
}

fn group(id: &str, name: Option<&str>, members: &[&str]) -> Value {
    let mut g = json!({"id": id});
    if let Some(name) = name {
        g["displayName"] = json!(name);
    }
    if !members.is_empty() {
        g["members@delta"] = Value::Array(members.iter().map(|m| member(m)).collect());
    }
    g
}

fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// One round from pages of group entries (the last page carries the deltaLink).
fn round(pages: &[&[Value]]) -> GroupsDelta {
    let mut delta = GroupsDelta::new();
    for (i, entries) in pages.iter().enumerate() {
        let link = if i + 1 == pages.len() {
            "@odata.deltaLink"
        } else {
            "@odata.nextLink"
        };
        let body = json!({ link: format!("l{i}"), "value": entries });
        delta.apply(parse_groups_page(body.to_string().as_bytes()).unwrap());
    }
    delta
}

fn set(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn ids(groups: &[&str]) -> Vec<String> {
    groups.iter().map(|s| s.to_string()).collect()
}

async fn member_ids(store: &MembershipStore, tenant: TenantId, group: &str) -> Vec<String> {
    store
        .members(tenant, group)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, kind)| match kind {
            MemberKind::User => id,
            MemberKind::Group => format!("g:{id}"),
        })
        .collect()
}

/// g1 = {u1, u2, u3, g2}, g2 = {u4, g3}, g3 = {u5, g1}: a cycle g1 → g2 → g3 → g1.
fn nested_with_cycle() -> GroupsDelta {
    round(&[
        &[group("g1", Some("Eng-All"), &["u1", "u2"])],
        &[
            group("g2", Some("Eng-Platform"), &["u4"]),
            group("g1", None, &["u3", "g:g2"]),
        ],
        &[],
        &[
            group("g3", Some("Eng-Oncall"), &["g:g1", "u5"]),
            group("g2", None, &["g:g3"]),
        ],
    ])
}

#[tokio::test]
async fn nested_groups_with_a_cycle_resolve_transitively() {
    let db = TestDb::new("c_groups").await;
    let tenant = db.tenant().await;
    let store = MembershipStore::new(db.pool.clone());
    store.apply(tenant, &nested_with_cycle()).await.unwrap();

    assert_eq!(
        member_ids(&store, tenant, "g1").await,
        vec!["g:g2", "u1", "u2", "u3"]
    );
    assert_eq!(member_ids(&store, tenant, "g3").await, vec!["g:g1", "u5"]);
    assert_eq!(
        store
            .direct_user_members(tenant, &ids(&["g1"]))
            .await
            .unwrap(),
        set(&["u1", "u2", "u3"])
    );
    assert_eq!(
        store
            .direct_user_members(tenant, &ids(&["g2", "g3"]))
            .await
            .unwrap(),
        set(&["u4", "u5"])
    );
    let everyone = set(&["u1", "u2", "u3", "u4", "u5"]);
    for root in ["g1", "g2", "g3"] {
        assert_eq!(
            store
                .transitive_user_members(tenant, &ids(&[root]))
                .await
                .unwrap(),
            everyone,
            "from {root}, around the cycle"
        );
    }
    assert!(
        store
            .transitive_user_members(tenant, &ids(&["unknown"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.groups_of(tenant, "g1").await.unwrap(), vec!["g3"]);
    assert_eq!(store.groups_of(tenant, "u4").await.unwrap(), vec!["g2"]);
}

#[tokio::test]
async fn an_incremental_round_updates_names_and_members() {
    let db = TestDb::new("c_groups").await;
    let tenant = db.tenant().await;
    let store = MembershipStore::new(db.pool.clone());
    store.apply(tenant, &nested_with_cycle()).await.unwrap();

    // F4's shape: unchanged properties returned again, one member removed, one added; a
    // member added then removed within the round, and one removed then added back.
    let next = round(&[
        &[
            json!({"id": "g1", "displayName": "Eng-All", "description": "Engineering (updated)",
                   "members@delta": [member("-u2"), member("u6")]}),
            group("g3", None, &["u7"]),
        ],
        &[group("g3", None, &["-u7", "-u5", "u5"])],
        &[group("g2", Some("Platform"), &["-g:g3"])],
    ]);
    store.apply(tenant, &next).await.unwrap();
    assert_eq!(
        member_ids(&store, tenant, "g1").await,
        vec!["g:g2", "u1", "u3", "u6"]
    );
    assert_eq!(member_ids(&store, tenant, "g3").await, vec!["g:g1", "u5"]);
    assert_eq!(
        store.group(tenant, "g2").await.unwrap(),
        Some(StoredGroup {
            display_name: Some("Platform".into()),
            deleted: false
        })
    );
    assert_eq!(
        store
            .group(tenant, "g3")
            .await
            .unwrap()
            .unwrap()
            .display_name
            .as_deref(),
        Some("Eng-Oncall"),
        "a round without displayName keeps the stored one"
    );
    // The cycle is broken: g2 no longer nests g3.
    assert_eq!(
        store
            .transitive_user_members(tenant, &ids(&["g1"]))
            .await
            .unwrap(),
        set(&["u1", "u3", "u4", "u6"])
    );
    assert_eq!(
        store
            .transitive_user_members(tenant, &ids(&["g3"]))
            .await
            .unwrap(),
        set(&["u1", "u3", "u4", "u5", "u6"])
    );

    // A replay of the same round changes nothing.
    store.apply(tenant, &next).await.unwrap();
    assert_eq!(
        member_ids(&store, tenant, "g1").await,
        vec!["g:g2", "u1", "u3", "u6"]
    );
    assert_eq!(member_ids(&store, tenant, "g3").await, vec!["g:g1", "u5"]);
}

#[tokio::test]
async fn soft_deleted_groups_count_as_empty_until_restored_hard_deleted_lose_members() {
    let db = TestDb::new("c_groups").await;
    let tenant = db.tenant().await;
    let store = MembershipStore::new(db.pool.clone());
    store.apply(tenant, &nested_with_cycle()).await.unwrap();

    store
        .apply(tenant, &round(&[&[removed("g2", "changed")]]))
        .await
        .unwrap();
    assert!(store.group(tenant, "g2").await.unwrap().unwrap().deleted);
    assert_eq!(
        member_ids(&store, tenant, "g2").await,
        vec!["g:g3", "u4"],
        "kept for a restore"
    );
    assert_eq!(
        store
            .transitive_user_members(tenant, &ids(&["g1"]))
            .await
            .unwrap(),
        set(&["u1", "u2", "u3"]),
        "nesting stops at a deleted group"
    );
    assert!(
        store
            .direct_user_members(tenant, &ids(&["g2"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.groups_of(tenant, "u4").await.unwrap(),
        Vec::<String>::new()
    );

    // Restored: Graph returns the group again without an annotation.
    store
        .apply(tenant, &round(&[&[group("g2", Some("Eng-Platform"), &[])]]))
        .await
        .unwrap();
    assert_eq!(
        store
            .transitive_user_members(tenant, &ids(&["g1"]))
            .await
            .unwrap(),
        set(&["u1", "u2", "u3", "u4", "u5"])
    );

    store
        .apply(tenant, &round(&[&[removed("g3", "deleted")]]))
        .await
        .unwrap();
    assert!(member_ids(&store, tenant, "g3").await.is_empty());
    assert_eq!(
        store.group(tenant, "g3").await.unwrap(),
        Some(StoredGroup {
            display_name: Some("Eng-Oncall".into()),
            deleted: true
        })
    );
    assert_eq!(
        store
            .transitive_user_members(tenant, &ids(&["g2"]))
            .await
            .unwrap(),
        set(&["u4"])
    );
}

#[tokio::test]
async fn tenants_are_isolated() {
    let db = TestDb::new("c_groups").await;
    let (a, b) = (db.tenant().await, db.tenant().await);
    let store = MembershipStore::new(db.pool.clone());
    store.apply(a, &nested_with_cycle()).await.unwrap();
    store
        .apply(b, &round(&[&[group("g1", Some("Other"), &["x1"])]]))
        .await
        .unwrap();
    assert_eq!(
        store
            .transitive_user_members(b, &ids(&["g1"]))
            .await
            .unwrap(),
        set(&["x1"])
    );
    assert_eq!(
        store
            .transitive_user_members(a, &ids(&["g1"]))
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_round_is_applied_all_or_nothing() {
    let db = TestDb::new("c_groups").await;
    let tenant = db.tenant().await;
    let store = MembershipStore::new(db.pool.clone());
    store.apply(tenant, &nested_with_cycle()).await.unwrap();
    // Make the round's last statement (the member inserts) fail, after the group updates
    // and member removals already ran in the transaction.
    sqlx::query(
        "ALTER TABLE group_members ADD CONSTRAINT test_poison CHECK (member_id <> 'poison')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let bad = round(&[&[
        group("g1", Some("Renamed"), &["-u1"]),
        removed("g3", "deleted"),
        group("g2", None, &["poison"]),
    ]]);
    assert!(store.apply(tenant, &bad).await.is_err());
    assert_eq!(
        member_ids(&store, tenant, "g1").await,
        vec!["g:g2", "u1", "u2", "u3"]
    );
    assert_eq!(member_ids(&store, tenant, "g3").await, vec!["g:g1", "u5"]);
    assert_eq!(
        store
            .group(tenant, "g1")
            .await
            .unwrap()
            .unwrap()
            .display_name
            .as_deref(),
        Some("Eng-All")
    );
    assert!(!store.group(tenant, "g3").await.unwrap().unwrap().deleted);
}

#[tokio::test]
async fn a_large_group_over_many_slices_is_stored_whole() {
    let db = TestDb::new("c_groups").await;
    let tenant = db.tenant().await;
    let store = MembershipStore::new(db.pool.clone());
    // 25,000 members in slices of 500 (Graph's observed cap), more than two bulk chunks.
    let users: Vec<String> = (0..25_000).map(|i| format!("u{i:05}")).collect();
    let pages: Vec<Vec<Value>> = users
        .chunks(500)
        .map(|slice| {
            let refs: Vec<&str> = slice.iter().map(String::as_str).collect();
            vec![group("big", Some("Everyone"), &refs)]
        })
        .collect();
    let page_refs: Vec<&[Value]> = pages.iter().map(Vec::as_slice).collect();
    store.apply(tenant, &round(&page_refs)).await.unwrap();
    let got = store
        .direct_user_members(tenant, &ids(&["big"]))
        .await
        .unwrap();
    assert_eq!(got, users.iter().cloned().collect::<HashSet<_>>());
    // Removing every other member in one round.
    let removals: Vec<String> = users.iter().step_by(2).map(|u| format!("-{u}")).collect();
    let refs: Vec<&str> = removals.iter().map(String::as_str).collect();
    store
        .apply(tenant, &round(&[&[group("big", None, &refs)]]))
        .await
        .unwrap();
    let got = store
        .direct_user_members(tenant, &ids(&["big"]))
        .await
        .unwrap();
    assert_eq!(got.len(), 12_500);
    assert!(got.contains("u00001") && !got.contains("u00000"));
}

#[tokio::test]
async fn a_full_enumeration_replaces_what_it_does_not_mention() {
    let db = TestDb::new("c_groups").await;
    let tenant = db.tenant().await;
    let store = MembershipStore::new(db.pool.clone());
    store.apply(tenant, &nested_with_cycle()).await.unwrap();
    // A resync: g1 lost u2, u3 and its nested g2 while the deltaLink was unusable, g2 is
    // gone, g3 is unchanged.
    let full = round(&[
        &[group("g1", Some("Eng-All"), &["u1"])],
        &[group("g3", Some("Eng-Oncall"), &["u5", "g:g1"])],
    ]);
    store.apply_full(tenant, &full).await.unwrap();
    assert_eq!(member_ids(&store, tenant, "g1").await, vec!["u1"]);
    assert!(member_ids(&store, tenant, "g2").await.is_empty());
    assert!(store.group(tenant, "g2").await.unwrap().unwrap().deleted);
    assert!(!store.group(tenant, "g1").await.unwrap().unwrap().deleted);
    assert_eq!(
        store
            .transitive_user_members(tenant, &ids(&["g3"]))
            .await
            .unwrap(),
        set(&["u1", "u5"])
    );
    // The same round applied incrementally keeps the stale memberships.
    let other = db.tenant().await;
    store.apply(other, &nested_with_cycle()).await.unwrap();
    store.apply(other, &full).await.unwrap();
    assert_eq!(
        member_ids(&store, other, "g1").await,
        vec!["g:g2", "u1", "u2", "u3"]
    );
}
