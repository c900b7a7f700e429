//! Data-driven tests of the batch pipeline: folding, mapping, managers and their deferral,
//! follow-up (reference and avatar) entries, clearing.

use super::*;
use crate::diff::Action;
use dirsync_proto::RemovedReason;
use serde_json::{Value, json};

fn user(id: &str, removed: Option<RemovedReason>, v: Value) -> SourceUser {
    SourceUser {
        id: id.into(),
        removed,
        attributes: v.as_object().cloned().unwrap_or_default(),
    }
}

fn action(p: &Planned) -> Option<&Action> {
    match p {
        Planned::Plan { plan, .. } => Some(&plan.action),
        Planned::Superseded { .. } => None,
    }
}

#[test]
fn one_output_per_entry_and_repeats_are_folded() {
    let users = vec![
        user(
            "a",
            None,
            json!({"userPrincipalName": "a@x.com", "displayName": "A", "accountEnabled": true}),
        ),
        user(
            "b",
            None,
            json!({"userPrincipalName": "b@x.com", "accountEnabled": true}),
        ),
        user("a", None, json!({"displayName": "A2"})),
        user(
            "c",
            None,
            json!({"userPrincipalName": "c@x.com", "accountEnabled": true}),
        ),
        user("c", Some(RemovedReason::Changed), json!({})),
    ];
    let planned = plan_batch(&users, &HashMap::new(), true);
    assert_eq!(planned.len(), users.len());
    let ids: Vec<&str> = planned.iter().map(Planned::entra_id).collect();
    assert_eq!(ids, ["a", "b", "a", "c", "c"]);
    assert_eq!(
        planned[0],
        Planned::Superseded {
            entra_id: "a".into()
        }
    );
    assert_eq!(planned[3].skip_reason(), Some(SkipReason::Superseded));
    // the folded "a" keeps the earlier userName and takes the later displayName
    let Planned::Plan { plan, .. } = &planned[2] else {
        panic!()
    };
    assert_eq!(plan.action, Action::Create);
    assert_eq!(plan.effective.get("userName"), Some(&json!("a@x.com")));
    assert_eq!(plan.effective.get("displayName"), Some(&json!("A2")));
    assert_eq!(action(&planned[1]), Some(&Action::Create));
    // created then soft-deleted within the page: an unknown tombstone
    assert_eq!(planned[4].skip_reason(), Some(SkipReason::UnknownTombstone));
}

#[test]
fn fold_cases() {
    let full = user("a", None, json!({"displayName": "A", "surname": "S"}));
    let cases = vec![
        (
            "minimal overlays full",
            full.clone(),
            user("a", None, json!({"surname": null})),
            user("a", None, json!({"displayName": "A", "surname": null})),
        ),
        (
            "tombstone wins",
            full.clone(),
            user("a", Some(RemovedReason::Deleted), json!({})),
            user("a", Some(RemovedReason::Deleted), json!({})),
        ),
        (
            "restore after tombstone starts over",
            user("a", Some(RemovedReason::Changed), json!({})),
            user("a", None, json!({"accountEnabled": true})),
            user("a", None, json!({"accountEnabled": true})),
        ),
    ];
    for (name, earlier, later, expected) in cases {
        assert_eq!(fold(earlier, &later), expected, "case {name}");
    }
}

fn mirrored(attributes: Value) -> MirrorUser {
    let attributes: crate::map::ScimAttributes = attributes
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    MirrorUser {
        webex_id: "w-a".into(),
        content_hash: crate::hash::content_hash(&attributes),
        active: true,
        attributes,
        deferred_manager: None,
    }
}

#[test]
fn managers_resolve_to_webex_ids_or_are_deferred() {
    let users = vec![
        user(
            "a",
            None,
            json!({"userPrincipalName": "a@x.com", "manager": "boss"}),
        ),
        user(
            "b",
            None,
            json!({"userPrincipalName": "b@x.com", "manager": "absent"}),
        ),
        user(
            "c",
            Some(RemovedReason::Deleted),
            json!({"manager": "absent"}),
        ),
    ];
    let policy = Policy {
        managers: HashMap::from([("boss".to_string(), "w-boss".to_string())]),
        ..Policy::default()
    };
    let (planned, deferred) = plan_batch_with(&users, &HashMap::new(), &policy);
    let Planned::Plan { plan, .. } = &planned[0] else {
        panic!()
    };
    assert_eq!(plan.effective.get(MANAGER), Some(&json!("w-boss")));
    let Planned::Plan { plan, .. } = &planned[1] else {
        panic!()
    };
    assert_eq!(plan.action, Action::Create, "provisioned all the same");
    assert_eq!(plan.effective.get(MANAGER), None);
    assert_eq!(
        deferred,
        [Deferred {
            entra_id: "b".into(),
            manager_id: "absent".into()
        }]
    );
    assert_eq!(managers_named(&users, &HashMap::new()), ["absent", "boss"]);
}

/// What the pipeline does with a user's manager, against its mirror row.
#[test]
fn the_manager_is_recorded_by_entra_id_and_sent_by_webex_id_when_webex_lacks_it() {
    let base = json!({"userName": "a@x.com", "externalId": "a", "userType": "user",
                      "emails[type eq \"work\"].value": "a@x.com", "active": true});
    let with = |manager: &str, active: bool| {
        let mut v = base.clone();
        v[MANAGER] = json!(manager);
        v["active"] = json!(active);
        v
    };
    let row = |attributes: Value, waits_for: Option<&str>| {
        let mut m = mirrored(attributes);
        m.active = m.attributes.get("active") == Some(&json!(true));
        m.deferred_manager = waits_for.map(str::to_string);
        m
    };
    let upn = json!({"userPrincipalName": "a@x.com", "accountEnabled": true});
    let named = |manager: Value| {
        let mut v = upn.clone();
        v["manager"] = manager;
        v
    };
    let patch = |changes: Value| Action::Patch {
        webex_id: "w-a".into(),
        changes: crate::map::test_support::attrs(changes),
    };
    let skip = Action::Skip(SkipReason::Unchanged);
    // (case, entry, mirror row, action, recorded, waits for afterwards)
    type Case = (
        &'static str,
        SourceUser,
        Option<MirrorUser>,
        Action,
        bool,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "a create whose manager is not in Webex waits for it",
            user("a", None, named(json!("absent"))),
            None,
            Action::Create,
            false,
            Some("absent"),
        ),
        (
            "unchanged, waiting, manager now in Webex: the reference alone, no mirror write",
            user("a", None, named(json!("boss"))),
            Some(row(with("boss", true), Some("boss"))),
            patch(json!({MANAGER: "w-boss"})),
            true,
            None,
        ),
        (
            "the same from an entry that says nothing of the manager",
            user("a", None, upn.clone()),
            Some(row(with("boss", true), Some("boss"))),
            patch(json!({MANAGER: "w-boss"})),
            true,
            None,
        ),
        (
            "unchanged, waiting, manager still missing: waits again",
            user("a", None, named(json!("absent"))),
            Some(row(with("absent", true), Some("absent"))),
            skip.clone(),
            true,
            Some("absent"),
        ),
        (
            "an inactive user keeps waiting",
            user(
                "a",
                None,
                json!({"accountEnabled": false, "manager": "boss"}),
            ),
            Some(row(with("boss", false), Some("boss"))),
            skip.clone(),
            true,
            Some("boss"),
        ),
        (
            "waiting for another manager than recorded: patched and recorded",
            user("a", None, upn.clone()),
            Some(row(with("old", true), Some("boss"))),
            patch(json!({MANAGER: "w-boss"})),
            false,
            None,
        ),
        (
            "a new manager not in Webex: nothing else to send, it waits",
            user("a", None, named(json!("absent"))),
            Some(row(with("boss", true), None)),
            skip.clone(),
            false,
            Some("absent"),
        ),
        (
            "unchanged and not waiting: nothing",
            user("a", None, named(json!("boss"))),
            Some(row(with("boss", true), None)),
            skip.clone(),
            true,
            None,
        ),
        (
            "no manager any more while waiting: the mirror forgets it too",
            user("a", None, named(Value::Null)),
            Some(row(with("absent", true), Some("absent"))),
            patch(json!({MANAGER: null})),
            false,
            None,
        ),
        (
            "a stale follow-up entry: the manager it waits for now is sent",
            user(
                "a",
                None,
                json!({"manager": "old", "dirsync.partial": true}),
            ),
            Some(row(with("boss", true), Some("boss"))),
            patch(json!({MANAGER: "w-boss"})),
            true,
            None,
        ),
        (
            "a follow-up entry for a user no longer mirrored creates nobody",
            user(
                "a",
                None,
                json!({"manager": "boss", "dirsync.partial": true}),
            ),
            None,
            Action::Skip(SkipReason::UnknownTombstone),
            false,
            None,
        ),
        (
            "patched while its recorded manager is not in Webex: it waits for it",
            user("a", None, json!({"jobTitle": "Boss"})),
            Some(row(with("absent", true), None)),
            patch(json!({"title": "Boss"})),
            false,
            Some("absent"),
        ),
        (
            "deleted: nothing to wait for",
            user("a", Some(RemovedReason::Deleted), json!({})),
            Some(row(with("absent", true), Some("absent"))),
            Action::Delete {
                webex_id: "w-a".into(),
            },
            false,
            None,
        ),
    ];
    let policy = Policy {
        managers: HashMap::from([
            ("boss".to_string(), "w-boss".to_string()),
            ("old".to_string(), "w-old".to_string()),
        ]),
        allow_hard_delete: true,
        ..Policy::default()
    };
    for (case, entry, row, want, recorded, waits) in cases {
        let mirror: HashMap<String, MirrorUser> =
            row.into_iter().map(|r| ("a".to_string(), r)).collect();
        let (planned, deferred) = plan_batch_with(&[entry], &mirror, &policy);
        let Planned::Plan { plan, .. } = &planned[0] else {
            panic!("{case}")
        };
        assert_eq!(plan.action, want, "{case}");
        assert_eq!(plan.recorded, recorded, "{case}");
        let waiting: Vec<&str> = deferred.iter().map(|d| d.manager_id.as_str()).collect();
        assert_eq!(waiting, waits.into_iter().collect::<Vec<_>>(), "{case}");
        // Sent by Webex id (or not at all), recorded by Entra id.
        let sent = plan.effective.get(MANAGER).and_then(Value::as_str);
        assert!(sent.is_none_or(|m| m.starts_with("w-")), "{case}: {sent:?}");
        if want == Action::Create {
            assert!(plan.json.contains("\"absent\""), "{case}: {}", plan.json);
        }
    }
}

/// A deferral from before migration 23: the mirror row lacks the manager it waits for.
#[test]
fn a_partial_pass_entry_patches_only_the_manager() {
    let mut row = mirrored(
        json!({"userName": "a@x.com", "externalId": "a", "userType": "room",
                    "active": true}),
    );
    row.deferred_manager = Some("boss".into());
    let mirror = HashMap::from([("a".to_string(), row)]);
    let entry = user(
        "a",
        None,
        json!({"manager": "boss", "dirsync.partial": true}),
    );
    let policy = Policy {
        managers: HashMap::from([("boss".to_string(), "w-boss".to_string())]),
        ..Policy::default()
    };
    let (planned, _) = plan_batch_with(&[entry], &mirror, &policy);
    let want = crate::map::test_support::attrs(json!({MANAGER: "w-boss"}));
    assert_eq!(
        action(&planned[0]),
        Some(&Action::Patch {
            webex_id: "w-a".into(),
            changes: want
        })
    );
}

#[test]
fn an_avatar_entry_adds_replaces_keeps_or_removes_the_photo() {
    use crate::map::PHOTO;
    let base = json!({"userName": "a@x.com", "externalId": "a", "userType": "user",
                      "active": true});
    let mut with_photo = base.clone();
    with_photo[PHOTO] = json!("https://d/avatars/t/a/1");
    let entry = |photo: Value| {
        user(
            "a",
            None,
            json!({"dirsync.photo": photo, "dirsync.partial": true}),
        )
    };
    let plan = |mirror: &Value, photo: Value| {
        let mirror = HashMap::from([("a".to_string(), mirrored(mirror.clone()))]);
        let (planned, _) = plan_batch_with(&[entry(photo)], &mirror, &Policy::default());
        action(&planned[0]).cloned()
    };
    let patch = |changes: Value| {
        Some(Action::Patch {
            webex_id: "w-a".into(),
            changes: crate::map::test_support::attrs(changes),
        })
    };
    // No photo in Webex yet: a new entry of `photos`, sent as an add.
    assert_eq!(
        plan(&base, json!("https://d/avatars/t/a/1")),
        patch(json!({"photos": [{"type": "photo", "value": "https://d/avatars/t/a/1"}]}))
    );
    // A new photo (another tag): the entry's value is replaced.
    assert_eq!(
        plan(&with_photo, json!("https://d/avatars/t/a/2")),
        patch(json!({PHOTO: "https://d/avatars/t/a/2"}))
    );
    assert!(matches!(
        plan(&with_photo, json!("https://d/avatars/t/a/1")),
        Some(Action::Skip(_))
    ));
    // Removed in Entra: removed in Webex, without "clear attributes".
    assert_eq!(plan(&with_photo, Value::Null), patch(json!({PHOTO: null})));
    assert!(matches!(plan(&base, Value::Null), Some(Action::Skip(_))));
}

#[test]
fn clearing_is_opt_in_and_becomes_null_changes() {
    let mirror = HashMap::from([(
        "a".to_string(),
        mirrored(
            json!({"userName": "a@x.com", "externalId": "a", "userType": "user",
                        "title": "Analyst", "active": true}),
        ),
    )]);
    let entry = user("a", None, json!({"jobTitle": null}));
    let (kept, _) = plan_batch_with(std::slice::from_ref(&entry), &mirror, &Policy::default());
    assert!(
        matches!(action(&kept[0]), Some(Action::Skip(_))),
        "by default a null never clears"
    );
    let clear = Policy {
        clear_attributes: true,
        ..Policy::default()
    };
    let (cleared, _) = plan_batch_with(&[entry], &mirror, &clear);
    let want = crate::map::test_support::attrs(json!({"title": null}));
    assert_eq!(
        action(&cleared[0]),
        Some(&Action::Patch {
            webex_id: "w-a".into(),
            changes: want
        })
    );
    let Planned::Plan { plan, .. } = &cleared[0] else {
        panic!()
    };
    assert!(
        !plan.effective.contains_key("title"),
        "the mirror forgets it"
    );
    // Creating a user clears nothing.
    let new = user(
        "n",
        None,
        json!({"userPrincipalName": "n@x.com", "jobTitle": null}),
    );
    let (created, _) = plan_batch_with(&[new], &HashMap::new(), &clear);
    let Planned::Plan { plan, .. } = &created[0] else {
        panic!()
    };
    assert_eq!(plan.action, Action::Create);
    assert!(plan.effective.values().all(|v| !v.is_null()));
}

#[test]
fn a_mapping_that_fails_on_the_data_fails_the_user() {
    use dirsync_proto::mapping::{Mapping, MappingRule};
    let rules: Vec<MappingRule> = serde_json::from_value(json!([
        {"target": "userName", "kind": "direct", "attribute": "userPrincipalName"},
        {"target": "title", "kind": "expression", "expression": "Left([jobTitle], [level])"}
    ]))
    .unwrap();
    let policy = Policy {
        mapping: Some(std::sync::Arc::new(Mapping::compile(rules).unwrap())),
        ..Policy::default()
    };
    let users = vec![
        user(
            "ok",
            None,
            json!({"userPrincipalName": "o@x.com", "jobTitle": "Analyst", "level": "3"}),
        ),
        user(
            "bad",
            None,
            json!({"userPrincipalName": "b@x.com", "jobTitle": "Analyst", "level": "three"}),
        ),
    ];
    let (planned, _) = plan_batch_with(&users, &HashMap::new(), &policy);
    let Planned::Plan { plan, .. } = &planned[0] else {
        panic!()
    };
    assert_eq!(plan.action, Action::Create);
    assert_eq!(plan.effective.get("title"), Some(&json!("Ana")));
    match action(&planned[1]) {
        Some(Action::Fail(reason)) => assert!(reason.contains("title"), "{reason}"),
        other => panic!("expected a failed user, got {other:?}"),
    }
}
