//! The pure part of a batch: fold repeated entries, map each user, diff it against the
//! mirror.
//!
//! Graph may return the same user twice in one page (a later slice of changes); the mirror
//! can hold one row per user, so the entries are folded into the last one and the earlier
//! ones count as skipped. That keeps synced + skipped + failed equal to the entries seen.
//!
//! The tenant's policy adds what the bare mapping cannot know: the paths to clear ("clear
//! attributes") and the manager reference. The mirror records the manager by its Entra id;
//! Webex must get its Webex id, so the reference is resolved after the diff, and a manager
//! not in Webex yet is deferred (the user waits for it in `deferred_refs`), never a failure.
//! A user created before its manager is thus recorded right the first time; once the
//! manager is in Webex the reference alone is sent, and the mirror row is not written again.

use std::borrow::Cow;
use std::collections::HashMap;

use dirsync_proto::{RemovedReason, SourceUser};

use serde_json::Value;

use crate::diff::{Action, MirrorUser, Plan, SkipReason, diff};
use crate::map::{MANAGER, ScimAttributes, UserMapping, map_user_with};
use dirsync_proto::mapping::Mapping;

/// One entry of the batch with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// An earlier entry of a user that appears again later in the batch.
    Superseded {
        entra_id: String,
    },
    Plan {
        entra_id: String,
        plan: Plan,
    },
}

/// A tenant's mapping policy and what the batch knows about the users it refers to.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow_hard_delete: bool,
    /// "Clear attributes": a property that becomes null removes the Webex value.
    pub clear_attributes: bool,
    /// Webex ids of the users in Webex from dirsync, by Entra id, for the managers the
    /// batch names.
    pub managers: HashMap<String, String>,
    /// The tenant's own attribute mapping; `None`: the default mapping.
    pub mapping: Option<std::sync::Arc<Mapping>>,
}

/// A manager reference that cannot be applied yet: the manager is not in Webex. The user
/// is provisioned without it; a later pass applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub entra_id: String,
    pub manager_id: String,
}

/// Plans every entry of a batch with only the hard-delete policy (no clearing, no
/// managers known).
pub fn plan_batch(
    users: &[SourceUser],
    mirror: &HashMap<String, MirrorUser>,
    allow_hard_delete: bool,
) -> Vec<Planned> {
    let policy = Policy {
        allow_hard_delete,
        ..Policy::default()
    };
    plan_batch_with(users, mirror, &policy).0
}

/// Plans every entry of a batch (one item per input entry), and lists the manager
/// references it had to defer.
pub fn plan_batch_with(
    users: &[SourceUser],
    mirror: &HashMap<String, MirrorUser>,
    policy: &Policy,
) -> (Vec<Planned>, Vec<Deferred>) {
    let mut deferred = Vec::new();
    let mut last_index: HashMap<&str, usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        last_index.insert(user.id.as_str(), i);
    }
    let mut folded: HashMap<&str, SourceUser> = HashMap::new();
    let mut out = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        // Borrowed unless folded: no copy of every user's attributes (benches/pipeline.rs).
        let merged: Cow<'_, SourceUser> = match folded.remove(user.id.as_str()) {
            Some(earlier) => Cow::Owned(fold(earlier, user)),
            None => Cow::Borrowed(user),
        };
        if last_index.get(user.id.as_str()) != Some(&i) {
            folded.insert(user.id.as_str(), merged.into_owned());
            out.push(Planned::Superseded {
                entra_id: user.id.clone(),
            });
            continue;
        }
        let UserMapping {
            always: mut mapped,
            on_create,
            cleared,
            error,
        } = map_user_with(&merged, policy.mapping.as_deref(), policy.clear_attributes);
        if let Some(reason) = error {
            out.push(Planned::Plan {
                entra_id: user.id.clone(),
                plan: Plan::failed(reason, mapped),
            });
            continue;
        }
        if policy.clear_attributes && merged.removed.is_none() {
            for path in cleared {
                mapped.insert(path, Value::Null);
            }
        }
        let row = mirror.get(&user.id);
        if row.is_none() && merged.is_partial() {
            // A follow-up entry (a reference, a photo) for a user no longer mirrored:
            // nothing to create a user from.
            out.push(Planned::Plan {
                entra_id: user.id.clone(),
                plan: diff(Some(RemovedReason::Changed), mapped, None, false),
            });
            continue;
        }
        if row.is_none() {
            for (path, value) in on_create {
                mapped.entry(path).or_insert(value);
            }
        }
        if merged.removed.is_none() {
            let waits_for = row.and_then(|m| m.deferred_manager.as_deref());
            // The manager as the mirror records it, its Entra id: the entry's, or, when
            // the entry says nothing of it, the one the user still waits for. A follow-up
            // entry names the manager the user waited for when the pass read it: if the
            // user waits for another one now, a later batch has decided since.
            let manager = match merged.str_attr("manager") {
                Some(manager) if merged.is_partial() && waits_for != Some(manager) => None,
                Some(manager) => Some(manager),
                None if !merged.attributes.contains_key("manager") => waits_for,
                None => {
                    // Removed in Entra while Webex never got it: the mirror forgets it too
                    // (a PATCH `remove`), even without "clear attributes", so that mirror
                    // and Webex agree once the user stops waiting.
                    if waits_for.is_some() {
                        mapped.insert(MANAGER.to_string(), Value::Null);
                    }
                    None
                }
            };
            if let Some(manager) = manager {
                mapped.insert(MANAGER.to_string(), Value::String(manager.to_string()));
            }
        }
        let mut plan = diff(merged.removed, mapped, row, policy.allow_hard_delete);
        if let Some(manager_id) = resolve_manager(&mut plan, row, &policy.managers) {
            deferred.push(Deferred {
                entra_id: user.id.clone(),
                manager_id,
            });
        }
        out.push(Planned::Plan {
            entra_id: user.id.clone(),
            plan,
        });
    }
    (out, deferred)
}

/// Makes the plan's manager, an Entra id as the mirror records it, the Webex id Webex gets,
/// and decides whether this push sends it: with a create, with a change of manager, and
/// whenever the user waits for its manager (`deferred_refs`: Webex does not have it), even
/// if nothing else changed. A manager not in Webex yet is left out of what is sent (a patch
/// that had nothing else to send becomes a skip) and returned: the user waits for it.
/// `plan.json` is untouched: the mirror records the manager the user should have.
fn resolve_manager(
    plan: &mut Plan,
    row: Option<&MirrorUser>,
    webex_ids: &HashMap<String, String>,
) -> Option<String> {
    let waits_for = row.and_then(|m| m.deferred_manager.clone());
    let Some(Value::String(manager)) = plan.effective.get(MANAGER) else {
        // No manager now (removed, cleared): nothing to wait for.
        return None;
    };
    let manager = manager.clone();
    let webex_id = webex_ids.get(&manager).cloned();
    match &webex_id {
        Some(id) => plan
            .effective
            .insert(MANAGER.to_string(), Value::String(id.clone())),
        None => plan.effective.remove(MANAGER),
    };
    let send = match &plan.action {
        Action::Create => true,
        Action::Patch { changes, .. } => waits_for.is_some() || changes.contains_key(MANAGER),
        Action::Skip(SkipReason::Unchanged) => waits_for.is_some() && plan.active(),
        _ => false,
    };
    if !send {
        if matches!(plan.action, Action::Delete { .. }) {
            return None;
        }
        // A deactivated user keeps waiting (a restore sends the reference); a user patched
        // while its manager is not in Webex waits for it too, should the patch find the
        // user gone and create it again without one.
        let patched = matches!(plan.action, Action::Patch { .. }) && webex_id.is_none();
        return waits_for.or_else(|| patched.then_some(manager));
    }
    match (webex_id, &mut plan.action) {
        (Some(id), Action::Patch { changes, .. }) => {
            changes.insert(MANAGER.to_string(), Value::String(id));
        }
        (Some(id), Action::Skip(_)) => {
            let webex_id = row.map(|m| m.webex_id.clone()).unwrap_or_default();
            plan.action = Action::Patch {
                webex_id,
                changes: ScimAttributes::from([(MANAGER.to_string(), Value::String(id))]),
            };
        }
        (Some(_), _) => {}
        (None, Action::Patch { changes, .. }) => {
            changes.remove(MANAGER);
            if changes.is_empty() {
                plan.action = Action::Skip(SkipReason::Unchanged);
            }
            return Some(manager);
        }
        (None, _) => return Some(manager),
    }
    None
}

/// The managers (Entra ids) a batch refers to, to look up in the mirror: those its entries
/// name, and for a user whose entry names none, the one it waits for or has (a patch of a
/// user deleted in Webex re-creates it with its manager).
pub fn managers_named(users: &[SourceUser], mirror: &HashMap<String, MirrorUser>) -> Vec<String> {
    let mut ids: Vec<String> = users
        .iter()
        .filter_map(|u| {
            u.str_attr("manager").map(str::to_string).or_else(|| {
                let row = mirror.get(&u.id)?;
                row.deferred_manager.clone().or_else(|| {
                    row.attributes
                        .get(MANAGER)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
            })
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A later entry on top of an earlier one: a tombstone wins outright; otherwise the later
/// properties overlay the earlier ones (a later minimal entry lacks unchanged properties).
fn fold(earlier: SourceUser, later: &SourceUser) -> SourceUser {
    if later.removed.is_some() || earlier.removed.is_some() {
        return later.clone();
    }
    let mut attributes = earlier.attributes;
    for (k, v) in &later.attributes {
        attributes.insert(k.clone(), v.clone());
    }
    SourceUser {
        id: later.id.clone(),
        removed: None,
        attributes,
    }
}

impl Planned {
    pub fn entra_id(&self) -> &str {
        match self {
            Planned::Superseded { entra_id } | Planned::Plan { entra_id, .. } => entra_id,
        }
    }

    /// Why the entry needs no write, if it needs none.
    pub fn skip_reason(&self) -> Option<SkipReason> {
        match self {
            Planned::Superseded { .. } => Some(SkipReason::Superseded),
            Planned::Plan { plan, .. } => match plan.action {
                crate::diff::Action::Skip(reason) => Some(reason),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
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
}
