//! The reference pass's pages (`references::pending`) against a real PostgreSQL: which
//! waiting users are sent, with and without looking their manager up, and how the pages
//! follow one another.

mod common;

use std::collections::BTreeMap;

use common::db::TestDb;

use dirsync_coordinator::references::pending;
use dirsync_proto::{PARTIAL_ATTRIBUTE, RunId, TenantId};

/// A mirror row: `user`, active or not, waiting for `deferred` (None or `""`: for
/// nobody) since a batch of `deferred_by`.
async fn mirror_row(
    db: &TestDb,
    tenant: TenantId,
    user: &str,
    active: bool,
    deferred: Option<&str>,
    deferred_by: Option<RunId>,
) {
    sqlx::query(
        "INSERT INTO mirror_users (tenant_id, entra_id, webex_id, content_hash, active, attributes, \
         last_seen_run, last_seen_seq) VALUES ($1, $2, 'w-' || $2, 0, $3, '{}', $4, 0)",
    )
    .bind(tenant.0)
    .bind(user)
    .bind(active)
    .bind(deferred_by.map(|r| r.0))
    .execute(&db.pool)
    .await
    .unwrap();
    if let Some(manager) = deferred.filter(|m| !m.is_empty()) {
        sqlx::query(
            "INSERT INTO deferred_refs (tenant_id, entra_id, manager_id, run_id) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant.0)
        .bind(user)
        .bind(manager)
        .bind(deferred_by.map(|r| r.0))
        .execute(&db.pool)
        .await
        .unwrap();
    }
}

/// Every page of `run`'s pass, as user -> manager, and the number of pages read.
async fn whole_pass(
    db: &TestDb,
    tenant: TenantId,
    run: RunId,
    limit: usize,
) -> (BTreeMap<String, String>, usize) {
    let mut sent = BTreeMap::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let (entries, next) = pending(&db.pool, tenant, run, after.as_deref(), limit)
            .await
            .unwrap();
        pages += 1;
        for entry in entries {
            assert_eq!(entry.attributes[PARTIAL_ATTRIBUTE], true);
            assert_eq!(entry.attributes.len(), 2, "only the reference: {entry:?}");
            let manager = entry.attributes["manager"].as_str().unwrap().to_string();
            assert!(
                sent.insert(entry.id.clone(), manager).is_none(),
                "sent twice"
            );
        }
        match next {
            Some(next) => after = Some(next),
            None => return (sent, pages),
        }
    }
}

#[tokio::test]
async fn the_pass_sends_this_runs_deferrals_and_older_ones_whose_manager_is_in_webex() {
    let db = TestDb::new("references_pass").await;
    let tenant = db.tenant().await;
    let other = db.tenant().await;
    let (run, earlier) = (RunId::new(), RunId::new());

    // Deferred during this run's walk: sent without a look-up, even if the manager is
    // still missing (the worker defers those again).
    mirror_row(
        &db,
        tenant,
        "a-fresh-present",
        true,
        Some("m-present"),
        Some(run),
    )
    .await;
    mirror_row(
        &db,
        tenant,
        "b-fresh-missing",
        true,
        Some("m-missing"),
        Some(run),
    )
    .await;
    // Deferred by an earlier run: sent only once the manager is in Webex.
    mirror_row(
        &db,
        tenant,
        "c-old-present",
        true,
        Some("m-present"),
        Some(earlier),
    )
    .await;
    mirror_row(
        &db,
        tenant,
        "d-old-missing",
        true,
        Some("m-missing"),
        Some(earlier),
    )
    .await;
    mirror_row(&db, tenant, "e-never-seen", true, Some("m-missing"), None).await;
    mirror_row(
        &db,
        tenant,
        "f-never-seen-present",
        true,
        Some("m-present"),
        None,
    )
    .await;
    // Deferred by this run but inactive: sent (the worker keeps it waiting); an older
    // one would not be.
    mirror_row(
        &db,
        tenant,
        "g-inactive",
        false,
        Some("m-present"),
        Some(run),
    )
    .await;
    // Not waiting: never sent.
    mirror_row(&db, tenant, "h-settled", true, Some(""), Some(run)).await;
    mirror_row(&db, tenant, "i-no-deferral", true, None, Some(run)).await;
    mirror_row(&db, tenant, "m-present", true, None, Some(earlier)).await;
    // The same ids in another tenant change nothing.
    mirror_row(
        &db,
        other,
        "d-old-missing",
        true,
        Some("m-missing"),
        Some(run),
    )
    .await;
    mirror_row(&db, other, "m-missing", true, None, Some(run)).await;

    let expected: BTreeMap<String, String> = [
        ("a-fresh-present", "m-present"),
        ("b-fresh-missing", "m-missing"),
        ("c-old-present", "m-present"),
        ("f-never-seen-present", "m-present"),
        ("g-inactive", "m-present"),
    ]
    .into_iter()
    .map(|(u, m)| (u.to_string(), m.to_string()))
    .collect();
    for limit in [1, 2, 3, 100] {
        let (sent, pages) = whole_pass(&db, tenant, run, limit).await;
        assert_eq!(sent, expected, "pages of {limit}");
        // Seven waiting users, then one empty page.
        assert_eq!(pages, 7_usize.div_ceil(limit) + 1, "pages of {limit}");
    }

    // For another run, the same deferrals are all older ones: only the active users whose
    // manager is in Webex are sent.
    let (sent, _) = whole_pass(&db, tenant, RunId::new(), 100).await;
    let older: Vec<&str> = sent.keys().map(String::as_str).collect();
    assert_eq!(
        older,
        ["a-fresh-present", "c-old-present", "f-never-seen-present"]
    );
}
