//! Decides what to do with one mapped user, given what the mirror says Webex holds.
//!
//! Pure: no I/O. The rules, in order:
//! - not in the mirror: a tombstone or a disabled user is skipped (a disabled user is
//!   never created), anything else is created;
//! - a hard delete (`@removed: deleted`) is a DELETE where the tenant allows it, else a
//!   deactivation, like a soft delete (`@removed: changed`);
//! - otherwise the *effective* attributes are the mirror's overlaid with the new non-null
//!   values (a null or absent value never clears a Webex value); if their hash equals the
//!   mirror's, nothing changed; else the changed paths are patched (only `active=false`
//!   changing is a deactivation; a restore is a patch of `active=true`).

use dirsync_proto::RemovedReason;
use serde_json::{Map, Value};

use crate::scim::path::parse_path;

use crate::hash::hashed_json;
use crate::map::{ACTIVE, ScimAttributes, WORK_EMAIL, active_of};

/// What the mirror says dirsync last wrote to Webex for one Entra user.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorUser {
    pub webex_id: String,
    pub content_hash: u64,
    pub active: bool,
    /// The attributes as recorded: the manager (`map::MANAGER`) as the manager's Entra id.
    pub attributes: ScimAttributes,
    /// The manager (Entra id) the user waits for: Webex does not have it yet.
    pub deferred_manager: Option<String>,
}

/// Why a user needs no SCIM write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Effective attributes equal what Webex already holds.
    Unchanged,
    /// A disabled user that Webex does not have: never created.
    DisabledNotCreated,
    /// A tombstone for a user Webex does not have.
    UnknownTombstone,
    /// Another entry for the same user later in the same batch supersedes this one.
    Superseded,
}

/// The SCIM write one user needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// POST the plan's effective attributes.
    Create,
    /// PATCH replace of the changed paths only.
    Patch {
        webex_id: String,
        changes: ScimAttributes,
    },
    /// PATCH replace `active` = false.
    Deactivate {
        webex_id: String,
    },
    /// DELETE the user.
    Delete {
        webex_id: String,
    },
    Skip(SkipReason),
    /// Nothing can be pushed: the tenant's mapping failed on this user's data (the reason).
    Fail(String),
}

/// The decision for one user and the state Webex will hold once the action succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub action: Action,
    /// What the mirror records after success: mirror attributes overlaid with new values.
    /// The manager is the manager's Entra id here until the pipeline resolves it
    /// (`pipeline::resolve_manager`): from then on these are the attributes Webex gets.
    pub effective: ScimAttributes,
    pub content_hash: u64,
    /// `effective` as the canonical JSON `content_hash` hashes: the mirror row's text. Made
    /// with `effective` by [`diff`], before the manager is resolved: the mirror records the
    /// manager by Entra id, so that a user created before its manager is recorded once.
    pub json: String,
    /// The mirror row already holds `json`: a push of this plan records nothing (the
    /// manager reference of an unchanged user, sent once its manager is in Webex).
    pub recorded: bool,
}

impl Plan {
    /// Whether the user is active once the plan is carried out.
    pub fn active(&self) -> bool {
        active_of(&self.effective).unwrap_or(true)
    }

    /// A user the tenant's mapping failed on: nothing is pushed nor recorded.
    pub fn failed(reason: String, effective: ScimAttributes) -> Self {
        Plan {
            action: Action::Fail(reason),
            effective,
            content_hash: 0,
            json: String::new(),
            recorded: false,
        }
    }

    /// Nothing to write for the reason given.
    pub fn skip(reason: SkipReason, effective: ScimAttributes) -> Self {
        Plan::new(Action::Skip(reason), effective)
    }

    fn new(action: Action, effective: ScimAttributes) -> Self {
        let (content_hash, json) = hashed_json(&effective);
        Plan {
            action,
            effective,
            content_hash,
            json,
            recorded: false,
        }
    }
}

/// Decides the action for one user. `mapped` is the output of [`crate::map::map_user`],
/// with null values for the paths to clear (see [`crate::map::cleared_paths`]).
pub fn diff(
    removed: Option<RemovedReason>,
    mapped: ScimAttributes,
    mirror: Option<&MirrorUser>,
    allow_hard_delete: bool,
) -> Plan {
    let Some(mirror) = mirror else {
        if removed.is_some() {
            return Plan::skip(SkipReason::UnknownTombstone, mapped);
        }
        if active_of(&mapped) == Some(false) {
            return Plan::skip(SkipReason::DisabledNotCreated, mapped);
        }
        let mut effective = mapped;
        // Nothing to clear in a user that does not exist yet.
        effective.retain(|_, value| !value.is_null());
        // Recorded explicitly so that a later `accountEnabled: true` is not seen as a change.
        effective
            .entry(ACTIVE.to_string())
            .or_insert(Value::Bool(true));
        return Plan::new(Action::Create, effective);
    };

    if removed == Some(RemovedReason::Deleted) && allow_hard_delete {
        let action = Action::Delete {
            webex_id: mirror.webex_id.clone(),
        };
        return Plan::new(action, mirror.attributes.clone());
    }

    let mut effective = mirror.attributes.clone();
    if removed.is_some() {
        // A tombstone only says "gone": its other properties, if any, are not pushed.
        effective.insert(ACTIVE.to_string(), Value::Bool(false));
    } else {
        for (path, value) in mapped {
            // Null asks to clear the attribute ("clear attributes"); the mapping produces
            // it only for a tenant that opted in.
            if value.is_null() {
                effective.remove(&path);
            } else {
                effective.insert(path, value);
            }
        }
    }

    let (hash, json) = hashed_json(&effective);
    if hash == mirror.content_hash {
        return Plan {
            action: Action::Skip(SkipReason::Unchanged),
            effective,
            content_hash: hash,
            json,
            recorded: true,
        };
    }
    // Changed and added paths, and removed ones as null (a PATCH `remove`).
    let changes: ScimAttributes = effective
        .iter()
        .filter(|(path, value)| mirror.attributes.get(*path) != Some(*value))
        .map(|(path, value)| (path.clone(), value.clone()))
        .chain(
            mirror
                .attributes
                .keys()
                .filter(|path| !effective.contains_key(*path))
                .map(|path| (path.clone(), Value::Null)),
        )
        .collect();
    let changes = entries_to_add(changes, &mirror.attributes);
    let webex_id = mirror.webex_id.clone();
    let action = if changes.is_empty() {
        // Only reachable when the stored hash is stale (e.g. computed by another version).
        Action::Skip(SkipReason::Unchanged)
    } else if changes.len() == 1 && changes.get(ACTIVE) == Some(&Value::Bool(false)) {
        Action::Deactivate { webex_id }
    } else {
        Action::Patch { webex_id, changes }
    };
    Plan {
        action,
        effective,
        content_hash: hash,
        json,
        recorded: false,
    }
}

/// Regroups the changes that create an entry of a multi-valued attribute Webex does not
/// have yet (`phoneNumbers[type eq "mobile"].value` when the user has no mobile number):
/// they become one array value under the attribute's own path (`phoneNumbers`), which the
/// PATCH body sends as an `add`. A `replace` through a filter that matches no entry is
/// refused by Webex (`noTarget`); a sub-attribute of an entry that exists is replaced as is.
pub fn entries_to_add(changes: ScimAttributes, mirror: &ScimAttributes) -> ScimAttributes {
    // The entries Webex has: (attribute path with its schema, filter) of every mirror path.
    // Parsed only if a change names an entry: most changes (a manager reference, a new
    // title) have no filter, and parsing every mirror path was a tenth of a worker's CPU
    // in a reference pass.
    let mut existing: Option<std::collections::HashSet<(String, (String, String))>> = None;
    let mut out = ScimAttributes::new();
    let mut new_entries: std::collections::BTreeMap<String, Vec<Map<String, Value>>> =
        Default::default();
    for (path, value) in changes {
        if !path.contains('[') {
            out.insert(path, value);
            continue;
        }
        let parsed = match parse_path(&path) {
            // Webex makes the work email itself (equal to userName) on every create.
            Ok(parsed) if !value.is_null() && path != WORK_EMAIL => parsed,
            _ => {
                out.insert(path, value);
                continue;
            }
        };
        let (Some((key, wanted)), Some(sub)) = (parsed.filter.clone(), parsed.sub) else {
            out.insert(path, value);
            continue;
        };
        let (key, wanted, sub) = (key.to_string(), wanted.into_owned(), sub.to_string());
        let attr = entry_attr(&parsed);
        let existing = existing.get_or_insert_with(|| {
            mirror
                .keys()
                .filter_map(|p| parse_path(p).ok())
                .filter_map(|p| {
                    let (key, value) = p.filter.as_ref()?;
                    Some((entry_attr(&p), (key.to_string(), value.to_string())))
                })
                .collect()
        });
        if existing.contains(&(attr.clone(), (key.clone(), wanted.clone()))) {
            out.insert(path, value);
            continue;
        }
        let entries = new_entries.entry(attr).or_default();
        let entry = match entries
            .iter_mut()
            .position(|e| e.get(&key).and_then(Value::as_str) == Some(wanted.as_str()))
        {
            Some(i) => &mut entries[i],
            None => {
                let mut e = Map::new();
                e.insert(key.clone(), Value::String(wanted.clone()));
                entries.push(e);
                entries.last_mut().expect("just pushed")
            }
        };
        entry.insert(sub, value);
    }
    for (attr, entries) in new_entries {
        out.insert(
            attr,
            Value::Array(entries.into_iter().map(Value::Object).collect()),
        );
    }
    out
}

/// An attribute's path without filter or sub-attribute, with its schema URN if any.
fn entry_attr(p: &crate::scim::path::ScimPath<'_>) -> String {
    match &p.schema {
        Some(urn) => format!("{urn}:{}", p.attr),
        None => p.attr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::content_hash;
    use crate::map::map_user;
    use crate::map::test_support::attrs;
    use dirsync_proto::SourceUser;
    use serde_json::json;

    fn source(removed: Option<RemovedReason>, v: Value) -> SourceUser {
        SourceUser {
            id: "e1".into(),
            removed,
            attributes: v.as_object().cloned().unwrap_or_default(),
        }
    }

    /// A mirror row as the worker would have written it after pushing `v`.
    fn mirror(v: Value) -> MirrorUser {
        let attributes = attrs(v);
        MirrorUser {
            webex_id: "w1".into(),
            content_hash: content_hash(&attributes),
            active: active_of(&attributes).unwrap_or(true),
            attributes,
            deferred_manager: None,
        }
    }

    fn ada_mirror(active: bool) -> MirrorUser {
        mirror(
            json!({"userName": "ada@x.com", "emails[type eq \"work\"].value": "ada@x.com",
                      "displayName": "Ada", "name.givenName": "Ada", "name.familyName": "L",
                      "externalId": "e1", "active": active, "userType": "user"}),
        )
    }

    fn ada_source(extra: Value) -> Value {
        let mut base = json!({"userPrincipalName": "ada@x.com", "displayName": "Ada",
                              "givenName": "Ada", "surname": "L", "accountEnabled": true});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    struct Case {
        name: &'static str,
        removed: Option<RemovedReason>,
        source: Value,
        mirror: Option<MirrorUser>,
        allow_hard_delete: bool,
        expected: Action,
    }

    fn patch(changes: Value) -> Action {
        Action::Patch {
            webex_id: "w1".into(),
            changes: attrs(changes),
        }
    }

    #[test]
    fn actions() {
        let cases = vec![
            Case {
                name: "new active user is created",
                removed: None,
                source: ada_source(json!({})),
                mirror: None,
                allow_hard_delete: true,
                expected: Action::Create,
            },
            Case {
                name: "new user without accountEnabled is created",
                removed: None,
                source: json!({"userPrincipalName": "n@x.com"}),
                mirror: None,
                allow_hard_delete: true,
                expected: Action::Create,
            },
            Case {
                name: "disabled user is never created",
                removed: None,
                source: ada_source(json!({"accountEnabled": false})),
                mirror: None,
                allow_hard_delete: true,
                expected: Action::Skip(SkipReason::DisabledNotCreated),
            },
            Case {
                name: "soft-delete tombstone of unknown user",
                removed: Some(RemovedReason::Changed),
                source: json!({}),
                mirror: None,
                allow_hard_delete: true,
                expected: Action::Skip(SkipReason::UnknownTombstone),
            },
            Case {
                name: "hard-delete tombstone of unknown user",
                removed: Some(RemovedReason::Deleted),
                source: json!({}),
                mirror: None,
                allow_hard_delete: true,
                expected: Action::Skip(SkipReason::UnknownTombstone),
            },
            Case {
                name: "nothing changed (hash equal)",
                removed: None,
                source: ada_source(json!({})),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: Action::Skip(SkipReason::Unchanged),
            },
            Case {
                name: "changed paths only",
                removed: None,
                source: ada_source(json!({"displayName": "Ada K", "surname": "King"})),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: patch(json!({"displayName": "Ada K", "name.familyName": "King"})),
            },
            Case {
                name: "nulls never clear",
                removed: None,
                source: ada_source(json!({"displayName": null, "givenName": null})),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: Action::Skip(SkipReason::Unchanged),
            },
            Case {
                name: "absent values (minimal delta) never clear, changed one is patched",
                removed: None,
                source: json!({"surname": "King"}),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: patch(json!({"name.familyName": "King"})),
            },
            Case {
                name: "upn change patches userName and work email",
                removed: None,
                source: ada_source(json!({"userPrincipalName": "ada.k@x.com"})),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: patch(json!({"userName": "ada.k@x.com",
                                       "emails[type eq \"work\"].value": "ada.k@x.com"})),
            },
            Case {
                name: "accountEnabled false deactivates",
                removed: None,
                source: ada_source(json!({"accountEnabled": false})),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: Action::Deactivate {
                    webex_id: "w1".into(),
                },
            },
            Case {
                name: "accountEnabled false with other changes patches both",
                removed: None,
                source: ada_source(json!({"accountEnabled": false, "displayName": "A"})),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: patch(json!({"active": false, "displayName": "A"})),
            },
            Case {
                name: "disabled and mirror already inactive",
                removed: None,
                source: ada_source(json!({"accountEnabled": false})),
                mirror: Some(ada_mirror(false)),
                allow_hard_delete: true,
                expected: Action::Skip(SkipReason::Unchanged),
            },
            Case {
                name: "soft delete deactivates",
                removed: Some(RemovedReason::Changed),
                source: json!({}),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: Action::Deactivate {
                    webex_id: "w1".into(),
                },
            },
            Case {
                name: "soft delete of an inactive user is skipped",
                removed: Some(RemovedReason::Changed),
                source: json!({}),
                mirror: Some(ada_mirror(false)),
                allow_hard_delete: true,
                expected: Action::Skip(SkipReason::Unchanged),
            },
            Case {
                name: "tombstone properties are not pushed",
                removed: Some(RemovedReason::Changed),
                source: json!({"displayName": "Renamed"}),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: Action::Deactivate {
                    webex_id: "w1".into(),
                },
            },
            Case {
                name: "hard delete where allowed",
                removed: Some(RemovedReason::Deleted),
                source: json!({}),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: true,
                expected: Action::Delete {
                    webex_id: "w1".into(),
                },
            },
            Case {
                name: "hard delete of an inactive user where allowed",
                removed: Some(RemovedReason::Deleted),
                source: json!({}),
                mirror: Some(ada_mirror(false)),
                allow_hard_delete: true,
                expected: Action::Delete {
                    webex_id: "w1".into(),
                },
            },
            Case {
                name: "hard delete not allowed deactivates",
                removed: Some(RemovedReason::Deleted),
                source: json!({}),
                mirror: Some(ada_mirror(true)),
                allow_hard_delete: false,
                expected: Action::Deactivate {
                    webex_id: "w1".into(),
                },
            },
            Case {
                name: "hard delete not allowed, already inactive",
                removed: Some(RemovedReason::Deleted),
                source: json!({}),
                mirror: Some(ada_mirror(false)),
                allow_hard_delete: false,
                expected: Action::Skip(SkipReason::Unchanged),
            },
            Case {
                name: "restore (no annotation, enabled) patches active=true",
                removed: None,
                source: ada_source(json!({})),
                mirror: Some(ada_mirror(false)),
                allow_hard_delete: true,
                expected: patch(json!({"active": true})),
            },
            Case {
                name: "new attribute never pushed before is patched",
                removed: None,
                source: ada_source(json!({})),
                mirror: Some(mirror(json!({"userName": "ada@x.com", "externalId": "e1",
                                           "active": true, "userType": "user"}))),
                allow_hard_delete: true,
                expected: patch(json!({"emails[type eq \"work\"].value": "ada@x.com",
                                       "displayName": "Ada", "name.givenName": "Ada",
                                       "name.familyName": "L"})),
            },
        ];
        for case in cases {
            let user = source(case.removed, case.source);
            let plan = diff(
                case.removed,
                map_user(&user),
                case.mirror.as_ref(),
                case.allow_hard_delete,
            );
            assert_eq!(plan.action, case.expected, "case: {}", case.name);
            assert_eq!(
                plan.content_hash,
                content_hash(&plan.effective),
                "case: {}",
                case.name
            );
        }
    }

    #[test]
    fn effective_attributes() {
        // Create: the mapped attributes with active recorded.
        let plan = diff(
            None,
            map_user(&source(None, json!({"userPrincipalName": "n@x.com"}))),
            None,
            true,
        );
        assert_eq!(plan.effective.get("active"), Some(&json!(true)));
        assert!(plan.active());

        // Patch keeps mirror values the source did not send and takes the new ones.
        let m = ada_mirror(true);
        let plan = diff(
            None,
            map_user(&source(
                None,
                json!({"displayName": "New", "givenName": null}),
            )),
            Some(&m),
            true,
        );
        assert_eq!(plan.effective.get("displayName"), Some(&json!("New")));
        assert_eq!(plan.effective.get("name.givenName"), Some(&json!("Ada")));
        assert_eq!(plan.effective.get("userName"), Some(&json!("ada@x.com")));

        // Deactivate: the mirror with active=false, so a restore is seen as a change.
        let plan = diff(
            Some(RemovedReason::Changed),
            map_user(&source(Some(RemovedReason::Changed), json!({}))),
            Some(&m),
            true,
        );
        let mut expected = m.attributes.clone();
        expected.insert("active".into(), json!(false));
        assert_eq!(plan.effective, expected);
        assert!(!plan.active());
    }

    #[test]
    fn equal_hash_skips_without_looking_at_attributes() {
        // A mirror whose stored hash equals the effective hash is skipped even if its stored
        // attributes were (wrongly) different: the hash is the fast path.
        let mut m = ada_mirror(true);
        let effective_hash = m.content_hash;
        m.attributes.insert("displayName".into(), json!("stale"));
        m.content_hash = {
            let mut e = m.attributes.clone();
            e.insert("displayName".into(), json!("Ada"));
            content_hash(&e)
        };
        assert_eq!(m.content_hash, effective_hash);
        let plan = diff(
            None,
            map_user(&source(None, ada_source(json!({})))),
            Some(&m),
            true,
        );
        assert_eq!(plan.action, Action::Skip(SkipReason::Unchanged));
    }

    #[test]
    fn new_entries_of_multi_valued_attributes_are_added_whole() {
        let mirror = attrs(json!({
            "userName": "a@x.com",
            "addresses[type eq \"work\"].locality": "Oslo",
            "phoneNumbers[type eq \"work\"].value": "+47 1",
        }));
        let changes = attrs(json!({
            "title": "Dr.",
            // a new sub-attribute of the work address Webex has: replaced in place
            "addresses[type eq \"work\"].country": "NO",
            // a changed work phone: replaced in place
            "phoneNumbers[type eq \"work\"].value": "+47 2",
            // two new phone entries and a cleared one
            "phoneNumbers[type eq \"mobile\"].value": "+47 3",
            "phoneNumbers[type eq \"fax\"].value": "+47 4",
            "addresses[type eq \"home\"].locality": null,
        }));
        let got = entries_to_add(changes, &mirror);
        let want = attrs(json!({
            "title": "Dr.",
            "addresses[type eq \"work\"].country": "NO",
            "phoneNumbers[type eq \"work\"].value": "+47 2",
            "addresses[type eq \"home\"].locality": null,
            "phoneNumbers": [{"type": "fax", "value": "+47 4"}, {"type": "mobile", "value": "+47 3"}],
        }));
        assert_eq!(got, want);
        let body = crate::scim::patch_request(&got);
        let ops: Vec<(&str, &str)> = body["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|op| (op["op"].as_str().unwrap(), op["path"].as_str().unwrap()))
            .collect();
        assert!(ops.contains(&("add", "phoneNumbers")), "{ops:?}");
        assert!(ops.contains(&("remove", "addresses[type eq \"home\"].locality")));
        assert!(ops.contains(&("replace", "title")));
    }
}
