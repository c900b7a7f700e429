//! Hostile Graph pages from the coordinator's parser to the worker's plan, without services:
//! what a page parses into is planned by the worker's real pipeline against a mirror. A
//! user may be deactivated or deleted only by a documented `@removed` reason; duplicate ids
//! in a page make one create; garbage makes a page error and no plan at all. Also hostile
//! SCIM filters for the simulator's parser (the `scim_filter` fuzz target's regressions).

use std::collections::HashMap;

use serde_json::{Value, json};

use dirsync_coordinator::CoordinatorError;
use dirsync_coordinator::graph::wire::parse_page;
use dirsync_load_tests::scim_sim::{parse_filter, parse_path};
use dirsync_worker::diff::{Action, MirrorUser};
use dirsync_worker::pipeline::{Planned, plan_batch};

fn page(objects: Value) -> Vec<u8> {
    json!({"@odata.deltaLink": "http://g/v1.0/users/delta?$deltatoken=d", "value": objects})
        .to_string()
        .into_bytes()
}

/// Ada as the mirror holds her after her create: active, in Webex as `w-ada`.
fn mirror_with_ada() -> HashMap<String, MirrorUser> {
    let users = parse_page(&page(json!([{
        "id": "ada", "userPrincipalName": "ada@contoso.example", "displayName": "Ada",
        "accountEnabled": true
    }])))
    .unwrap()
    .users;
    let Planned::Plan { plan, .. } = plan_batch(&users, &HashMap::new(), true).remove(0) else {
        panic!("ada is planned")
    };
    assert_eq!(plan.action, Action::Create);
    let mirror = MirrorUser {
        webex_id: "w-ada".into(),
        content_hash: plan.content_hash,
        active: true,
        attributes: plan.effective,
        deferred_manager: None,
    };
    HashMap::from([("ada".to_string(), mirror)])
}

/// The actions the worker would take for a page, or the page's error.
fn actions(body: &[u8], mirror: &HashMap<String, MirrorUser>) -> Result<Vec<Action>, String> {
    let page = parse_page(body).map_err(|e| match e {
        CoordinatorError::GraphPage(m) => m,
        other => panic!("not a page error: {other}"),
    })?;
    Ok(plan_batch(&page.users, mirror, true)
        .into_iter()
        .filter_map(|p| match p {
            Planned::Plan { plan, .. } => Some(plan.action),
            Planned::Superseded { .. } => None,
        })
        .collect())
}

fn is_removal(action: &Action) -> bool {
    matches!(action, Action::Deactivate { .. } | Action::Delete { .. })
}

#[test]
fn only_documented_removed_reasons_deactivate_or_delete() {
    let mirror = mirror_with_ada();
    // The documented meanings (graph.md §1.2, §7.3): changed → deactivate, deleted → delete.
    assert_eq!(
        actions(
            &page(json!([{"id": "ada", "@removed": {"reason": "changed"}}])),
            &mirror
        ),
        Ok(vec![Action::Deactivate {
            webex_id: "w-ada".into()
        }])
    );
    assert_eq!(
        actions(
            &page(json!([{"id": "ada", "@removed": {"reason": "deleted"}}])),
            &mirror
        ),
        Ok(vec![Action::Delete {
            webex_id: "w-ada".into()
        }])
    );
    // Anything else is a page error: no plan, so nothing is deactivated.
    for removed in [
        json!({"reason": "purged"}),
        json!({"reason": ""}),
        json!({"reason": null}),
        json!({"reason": ["deleted"]}),
        json!({}),
        json!("deleted"),
        json!(null),
        json!(true),
    ] {
        let body = page(json!([
            {"id": "bo", "userPrincipalName": "bo@contoso.example", "accountEnabled": true},
            {"id": "ada", "@removed": removed}
        ]));
        let got = actions(&body, &mirror);
        assert!(
            matches!(&got, Err(m) if m.contains("unknown @removed reason")),
            "{removed}: {got:?}"
        );
    }
}

#[test]
fn wrong_types_and_odd_strings_never_deactivate() {
    let mirror = mirror_with_ada();
    for attributes in [
        json!({"accountEnabled": "false"}),
        json!({"accountEnabled": 0}),
        json!({"accountEnabled": null}),
        json!({"accountEnabled": [false]}),
        json!({"displayName": "\u{1}\u{1b}[2J", "accountEnabled": "no"}),
        json!({"displayName": "A".repeat(1 << 20)}),
    ] {
        let mut user = attributes.clone();
        user["id"] = json!("ada");
        let got = actions(&page(json!([user])), &mirror).unwrap();
        assert!(!got.iter().any(is_removal), "{attributes}: {got:?}");
    }
}

#[test]
fn duplicate_ids_in_a_page_make_one_create() {
    let body = page(json!([
        {"id": "cy", "userPrincipalName": "cy@contoso.example", "displayName": "Cy", "accountEnabled": true},
        {"id": "di", "userPrincipalName": "di@contoso.example", "accountEnabled": true},
        {"id": "cy", "displayName": "Cy Again"},
        {"id": "cy", "userPrincipalName": "cy@contoso.example", "accountEnabled": true}
    ]));
    let planned = plan_batch(&parse_page(&body).unwrap().users, &HashMap::new(), true);
    let creates: Vec<&str> = planned
        .iter()
        .filter_map(|p| match p {
            Planned::Plan { entra_id, plan } if plan.action == Action::Create => {
                Some(entra_id.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(creates, ["di", "cy"]);
    let Some(Planned::Plan { plan, .. }) = planned.last() else {
        panic!("the last cy is planned")
    };
    assert_eq!(
        plan.effective.get("displayName"),
        Some(&json!("Cy Again")),
        "the entries are folded, not the first one taken"
    );
}

#[test]
fn a_tombstone_among_duplicates_decides_by_page_order() {
    let mirror = mirror_with_ada();
    // Restored after a soft delete, within one page: the user stays, nothing is removed.
    let body = page(json!([
        {"id": "ada", "@removed": {"reason": "changed"}},
        {"id": "ada", "userPrincipalName": "ada@contoso.example", "displayName": "Ada", "accountEnabled": true}
    ]));
    let got = actions(&body, &mirror).unwrap();
    assert!(!got.iter().any(is_removal), "{got:?}");
}

/// Hostile filters at the edges the `scim_filter` fuzz target explores (its crashes, should
/// it find any, are added here with what they must give).
#[test]
fn hostile_scim_filters_are_refused_without_panicking() {
    let cases: &[(&str, bool)] = &[
        ("userName eq \"ada@contoso.example\"", true),
        ("emails[type eq \"work\" and value ew \"@x\"]", true),
        ("emails[type eq \"work\"[value pr]]", false),
        (&"(".repeat(5000), false),
        ("urn:", false),
        ("\"\\u0000\" eq 1", false),
    ];
    for (input, ok) in cases {
        assert_eq!(parse_filter(input).is_ok(), *ok, "{input:?}");
        let _ = parse_path(input);
    }
}
