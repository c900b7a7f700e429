//! Delta rounds: initial paging, incremental changes, `Prefer: return=minimal`, `$select`,
//! `$deltatoken=latest`, and a large tenant.

use std::collections::{HashMap, HashSet};

use dirsync_load_tests::graph_sim::{GraphSimConfig, SimUser, UserState};
use dirsync_load_tests::synthetic::{ChangeStep, Prop, PropSet};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, assert_represents, by_id, ids, spec};

#[tokio::test]
async fn initial_round_pages_every_live_user_exactly_once() {
    let tenant = spec("paging", 1, 1_050);
    let h = Harness::start(GraphSimConfig::default(), std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;

    // `$top` is ignored: Graph picks the page size.
    let (first_status, first) = h
        .get(&h.url("/v1.0/users/delta?$top=5"), &token, false)
        .await;
    assert_eq!(first_status, StatusCode::OK);
    assert_eq!(first["@odata.context"], h.url("/v1.0/$metadata#users"));
    assert_eq!(first["value"].as_array().unwrap().len(), 200);

    let (entries, sizes, _) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let snapshot = h.sim.snapshot("paging").unwrap();
    let live: Vec<&SimUser> = snapshot
        .iter()
        .filter(|u| u.state == UserState::Live)
        .collect();
    assert_eq!(
        live.len(),
        1_050 - 6,
        "1,050 users start with 6 soft-deleted"
    );
    let pages = live.len().div_ceil(200);
    assert_eq!(sizes.len(), pages, "{sizes:?}");
    assert!(sizes[..pages - 1].iter().all(|&s| s == 200), "{sizes:?}");

    let listed = ids(&entries);
    assert_eq!(
        listed.len(),
        listed.iter().collect::<HashSet<_>>().len(),
        "a user listed twice"
    );
    let expected: HashSet<&str> = live.iter().map(|u| u.user.id.as_str()).collect();
    assert_eq!(
        listed.iter().map(String::as_str).collect::<HashSet<_>>(),
        expected
    );

    let truth = by_id(&snapshot);
    for entry in &entries {
        assert_represents(
            entry,
            truth[entry["id"].as_str().unwrap()],
            PropSet::default_selection(),
        );
    }
    // Never-set names are omitted, not null, and non-ASCII survives the wire.
    assert!(
        entries
            .iter()
            .any(|e| e.get("givenName").is_none() && e.get("surname").is_none())
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.get("givenName").is_some_and(Value::is_null))
    );
    assert!(
        entries
            .iter()
            .any(|e| !e["displayName"].as_str().unwrap().is_ascii())
    );
    assert!(entries.iter().any(|e| e["accountEnabled"] == json!(false)));

    let counts = h.sim.requests("paging").unwrap();
    assert_eq!(
        (
            counts.tokens_issued,
            counts.delta_rounds,
            counts.delta_pages
        ),
        (1, 2, 1 + pages as u64)
    );
    assert_eq!(counts.objects_returned, 200 + live.len() as u64);
}

#[tokio::test]
async fn incremental_round_returns_exactly_the_changes() {
    let tenant = spec("changes", 2, 3_000);
    let h = Harness::start(
        GraphSimConfig {
            page_size: 97,
            ..GraphSimConfig::default()
        },
        std::slice::from_ref(&tenant),
    )
    .await;
    let token = h.token(&tenant).await;
    // Everything selected: an update may touch only `manager`, which the default selection does
    // not track (that case is covered by the `$select` test).
    let all: Vec<&str> = Prop::ALL.iter().map(|p| p.wire_name()).collect();
    let url = h.url(&format!(
        "/v1.0/users/microsoft.graph.delta?$select={}",
        all.join(",")
    ));
    let (_, _, delta_link) = h.round(&url, &token, false).await;

    let step = ChangeStep {
        updates: 150,
        soft_deletes: 20,
        hard_deletes: 10,
        new_users: 15,
        restores: 5,
        disables: 8,
    };
    let report = h.sim.apply_changes("changes", &step).unwrap();
    assert_eq!(report.restores, 5, "3,000 users start with 15 soft-deleted");
    let (entries, sizes, next_delta) = h.round(&delta_link, &token, false).await;
    assert!(sizes.iter().all(|&s| s <= 97));

    let kinds: [(&Vec<String>, &str); 6] = [
        (&report.updated_ids, "live"),
        (&report.disabled_ids, "live"),
        (&report.new_ids, "live"),
        (&report.restored_ids, "live"),
        (&report.soft_deleted_ids, "changed"),
        (&report.hard_deleted_ids, "deleted"),
    ];
    let expected: HashMap<&str, &str> = kinds
        .iter()
        .flat_map(|(ids, kind)| ids.iter().map(|id| (id.as_str(), *kind)))
        .collect();
    let listed = ids(&entries);
    assert_eq!(
        listed.len(),
        expected.len(),
        "missing or duplicated entries"
    );
    let snapshot = h.sim.snapshot("changes").unwrap();
    let truth = by_id(&snapshot);
    for entry in &entries {
        let id = entry["id"].as_str().unwrap();
        match expected.get(id) {
            Some(&"live") => assert_represents(entry, truth[id], PropSet::all()),
            Some(reason) => assert_eq!(entry, &json!({"id": id, "@removed": {"reason": reason}})),
            None => panic!("unchanged user {id} returned"),
        }
    }
    for id in &report.disabled_ids {
        let entry = entries.iter().find(|e| e["id"] == json!(id)).unwrap();
        assert_eq!(entry["accountEnabled"], json!(false));
    }
    // Some updates cleared a property: it comes back as an explicit null.
    assert!(
        entries
            .iter()
            .any(|e| e.as_object().unwrap().values().any(Value::is_null)),
        "no null in any update"
    );

    // Nothing changed since: an empty round with a fresh deltaLink.
    let (status, empty) = h.get(&next_delta, &token, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["value"], json!([]));
    assert!(
        empty["@odata.deltaLink"]
            .as_str()
            .is_some_and(|l| l.contains("$deltatoken="))
    );
    assert!(empty.get("@odata.nextLink").is_none());

    // A deltaLink can be followed again: it replays the same changes.
    let (again, _, _) = h.round(&delta_link, &token, false).await;
    assert_eq!(
        ids(&again).into_iter().collect::<HashSet<_>>(),
        listed.into_iter().collect::<HashSet<_>>()
    );
}

#[tokio::test]
async fn minimal_representation_lists_only_changed_properties() {
    let tenant = spec("minimal", 3, 500);
    let h = Harness::start(GraphSimConfig::default(), std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let (_, _, delta_link) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let report = h
        .sim
        .apply_changes(
            "minimal",
            &ChangeStep {
                disables: 5,
                new_users: 2,
                ..ChangeStep::default()
            },
        )
        .unwrap();
    let (entries, _, _) = h.round(&delta_link, &token, true).await;
    assert_eq!(entries.len(), 7);
    let truth = h.sim.snapshot("minimal").unwrap();
    for entry in &entries {
        let id = entry["id"].as_str().unwrap();
        if report.disabled_ids.iter().any(|d| d == id) {
            assert_eq!(entry, &json!({"id": id, "accountEnabled": false}));
        } else {
            // New users come in full.
            assert_represents(entry, by_id(&truth)[id], PropSet::default_selection());
        }
    }
}

#[tokio::test]
async fn select_is_honoured_and_tracks_only_selected_properties() {
    let tenant = spec("select", 4, 800);
    let h = Harness::start(GraphSimConfig::default(), std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let select: PropSet = [Prop::DisplayName, Prop::GivenName, Prop::Manager]
        .into_iter()
        .collect();

    let url = h.url("/v1.0/users/delta?$select=displayName,givenName,manager");
    let (status, first) = h.get(&url, &token, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        first["@odata.context"],
        h.url("/v1.0/$metadata#users(displayName,givenName,manager)")
    );
    let (entries, _, delta_select) = h.round(&url, &token, false).await;
    let (_, _, delta_all) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let snapshot = h.sim.snapshot("select").unwrap();
    for entry in &entries {
        assert_represents(
            entry,
            by_id(&snapshot)[entry["id"].as_str().unwrap()],
            select,
        );
    }
    assert!(entries.iter().any(|e| e.get("manager@delta").is_some()));

    // Disabling touches accountEnabled only: invisible through the narrow selection.
    let report = h
        .sim
        .apply_changes(
            "select",
            &ChangeStep {
                disables: 6,
                ..ChangeStep::default()
            },
        )
        .unwrap();
    assert_eq!(report.disables, 6);
    let (narrow, _, _) = h.round(&delta_select, &token, false).await;
    let (wide, _, _) = h.round(&delta_all, &token, false).await;
    assert!(narrow.is_empty(), "{narrow:?}");
    assert_eq!(
        ids(&wide).into_iter().collect::<HashSet<_>>(),
        report.disabled_ids.into_iter().collect::<HashSet<_>>()
    );

    let (status, body) = h
        .get(
            &h.url("/v1.0/users/delta?$select=displayName,skills"),
            &token,
            false,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'skills'")
    );
}

#[tokio::test]
async fn latest_delta_token_starts_from_now() {
    let tenant = spec("latest", 5, 300);
    let h = Harness::start(GraphSimConfig::default(), std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let (status, page) = h
        .get(
            &h.url("/v1.0/users/delta?$deltatoken=latest"),
            &token,
            false,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["value"], json!([]));
    let delta_link = page["@odata.deltaLink"].as_str().unwrap().to_owned();
    let report = h
        .sim
        .apply_changes(
            "latest",
            &ChangeStep {
                updates: 4,
                ..ChangeStep::default()
            },
        )
        .unwrap();
    let (entries, _, _) = h.round(&delta_link, &token, false).await;
    assert_eq!(
        ids(&entries).into_iter().collect::<HashSet<_>>(),
        report.updated_ids.into_iter().collect::<HashSet<_>>()
    );
}

/// 300,000 users: generation and a full initial round over HTTP, then an incremental round.
/// Ignored by default (memory- and CPU-heavy); run with `--ignored --nocapture` to see timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: 300k users"]
async fn large_tenant_generates_and_pages_quickly() {
    let tenant = spec("large", 11, 300_000);
    let started = std::time::Instant::now();
    let h = Harness::start(GraphSimConfig::default(), std::slice::from_ref(&tenant)).await;
    let generated = started.elapsed();
    let token = h.token(&tenant).await;

    let started = std::time::Instant::now();
    let (entries, sizes, delta_link) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let paged = started.elapsed();
    assert_eq!(entries.len(), 300_000 - 1_500);
    assert_eq!(sizes.len(), (300_000 - 1_500_usize).div_ceil(200));

    let step = ChangeStep {
        updates: 5_000,
        soft_deletes: 500,
        hard_deletes: 500,
        new_users: 1_000,
        restores: 500,
        disables: 500,
    };
    let started = std::time::Instant::now();
    let report = h.sim.apply_changes("large", &step).unwrap();
    let applied = started.elapsed();
    let started = std::time::Instant::now();
    let (changed, _, _) = h.round(&delta_link, &token, false).await;
    let incremental = started.elapsed();
    let total = report.updates
        + report.soft_deletes
        + report.hard_deletes
        + report.new_users
        + report.restores
        + report.disables;
    // Default selection: updates touching only `manager` do not surface.
    assert!(
        changed.len() <= total && changed.len() > total * 9 / 10,
        "{} of {total}",
        changed.len()
    );
    println!(
        "generate {generated:?}; initial round {} pages in {paged:?} ({:?}/page); step {applied:?}; incremental round {} entries in {incremental:?}",
        sizes.len(),
        paged / sizes.len() as u32,
        changed.len()
    );
}
