//! Builds SCIM request bodies from path-keyed attributes: the POST /Users resource and the
//! PATCH operations (also the `data` of Bulk PATCH operations).
//!
//! Pure. The resource builder is generic over the path forms of [`super::path`], so new
//! mappings (phone numbers, addresses, enterprise attributes) need no new code here.

use serde_json::{Map, Value, json};

use super::path::{ScimPath, parse_path};
use super::wire::{CORE_USER_SCHEMA, PATCH_OP_SCHEMA};
use crate::error::WorkerError;
use crate::map::ScimAttributes;

/// Multi-valued entries that are marked `primary: true` when built: Webex requires the
/// primary work email, which must equal `userName`.
const PRIMARY_ENTRIES: &[(&str, &str, &str)] = &[("emails", "type", "work")];

/// The JSON body of `POST /Users` for the given attributes.
pub fn user_resource(attributes: &ScimAttributes) -> Result<Value, WorkerError> {
    let mut root = Map::new();
    let mut schemas = vec![CORE_USER_SCHEMA.to_string()];
    for (path, value) in attributes {
        let parsed = parse_path(path)?;
        let target = match &parsed.schema {
            None => &mut root,
            Some(urn) if urn == CORE_USER_SCHEMA => &mut root,
            Some(urn) => {
                if !schemas.contains(urn) {
                    schemas.push(urn.clone());
                }
                object_at(&mut root, urn, path)?
            }
        };
        set(target, &parsed, value.clone(), path)?;
    }
    mark_primaries(&mut root);
    root.insert(
        "schemas".to_string(),
        Value::Array(schemas.into_iter().map(Value::String).collect()),
    );
    Ok(Value::Object(root))
}

/// The JSON body of a `PATCH /Users/{id}` replacing each path with its value; a `null` value
/// means "clear this attribute" and becomes a `remove` of the path, and an array value (new
/// entries of a multi-valued attribute, see `diff::entries_to_add`) an `add` of them: Webex
/// answers `noTarget` to a `replace` through a filter that matches no entry.
pub fn patch_request(changes: &ScimAttributes) -> Value {
    // Built with maps rather than `json!`, which copies its values through serde's serializer.
    let operations: Vec<Value> = changes
        .iter()
        .map(|(path, value)| {
            let op = match value {
                Value::Null => "remove",
                Value::Array(_) => "add",
                _ => "replace",
            };
            let mut operation = Map::new();
            operation.insert("op".into(), Value::from(op));
            operation.insert("path".into(), Value::String(path.clone()));
            if !value.is_null() {
                operation.insert("value".into(), value.clone());
            }
            Value::Object(operation)
        })
        .collect();
    let mut body = Map::new();
    body.insert("schemas".into(), json!([PATCH_OP_SCHEMA]));
    body.insert("Operations".into(), Value::Array(operations));
    Value::Object(body)
}

fn conflict(path: &str) -> WorkerError {
    WorkerError::ScimPath {
        path: path.to_string(),
        reason: "conflicts with another mapped path",
    }
}

fn object_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Map<String, Value>, WorkerError> {
    map.entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| conflict(path))
}

fn set(
    target: &mut Map<String, Value>,
    parsed: &ScimPath,
    value: Value,
    path: &str,
) -> Result<(), WorkerError> {
    match (&parsed.filter, &parsed.sub) {
        (None, None) => {
            if target.contains_key(&parsed.attr) {
                return Err(conflict(path));
            }
            target.insert(parsed.attr.clone(), value);
        }
        (None, Some(sub)) => {
            let object = object_at(target, &parsed.attr, path)?;
            if object.contains_key(sub) {
                return Err(conflict(path));
            }
            object.insert(sub.clone(), value);
        }
        (Some((fattr, fvalue)), sub) => {
            let items = target
                .entry(parsed.attr.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .ok_or_else(|| conflict(path))?;
            let matches =
                |item: &Value| item.get(fattr).and_then(Value::as_str) == Some(fvalue.as_str());
            let index = match items.iter().position(matches) {
                Some(i) => i,
                None => {
                    let mut entry = Map::new();
                    entry.insert(fattr.clone(), Value::String(fvalue.clone()));
                    items.push(Value::Object(entry));
                    items.len() - 1
                }
            };
            let entry = items[index].as_object_mut().ok_or_else(|| conflict(path))?;
            match sub {
                Some(sub) => {
                    if entry.contains_key(sub) {
                        return Err(conflict(path));
                    }
                    entry.insert(sub.clone(), value);
                }
                None => {
                    let Value::Object(fields) = value else {
                        return Err(WorkerError::ScimPath {
                            path: path.to_string(),
                            reason: "a filtered path without sub-attribute needs an object value",
                        });
                    };
                    for (k, v) in fields {
                        if k != *fattr {
                            entry.insert(k, v);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn mark_primaries(root: &mut Map<String, Value>) {
    for (attr, fattr, fvalue) in PRIMARY_ENTRIES {
        if let Some(Value::Array(items)) = root.get_mut(*attr) {
            for item in items.iter_mut() {
                if item.get(*fattr).and_then(Value::as_str) == Some(*fvalue)
                    && let Some(entry) = item.as_object_mut()
                {
                    entry.insert("primary".to_string(), Value::Bool(true));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::test_support::attrs;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn builds_resources() {
        let cases = vec![
            (
                "default mapping",
                json!({"userName": "ada@x.com", "emails[type eq \"work\"].value": "ada@x.com",
                       "displayName": "Ada Lovelace", "name.givenName": "Ada", "name.familyName": "Lovelace",
                       "externalId": "e1", "active": true, "userType": "user"}),
                json!({"schemas": [CORE_USER_SCHEMA], "userName": "ada@x.com", "userType": "user",
                       "name": {"givenName": "Ada", "familyName": "Lovelace"},
                       "emails": [{"value": "ada@x.com", "type": "work", "primary": true}],
                       "displayName": "Ada Lovelace", "externalId": "e1", "active": true}),
            ),
            (
                "several entries of one multi-valued attribute, not primary unless work email",
                json!({"phoneNumbers[type eq \"work\"].value": "+1 555", "phoneNumbers[type eq \"mobile\"].value": "+1 666",
                       "addresses[type eq \"work\"].locality": "London", "addresses[type eq \"work\"].postalCode": "EC1",
                       "emails[type eq \"home\"].value": "a@home"}),
                json!({"schemas": [CORE_USER_SCHEMA],
                       "phoneNumbers": [{"type": "mobile", "value": "+1 666"}, {"type": "work", "value": "+1 555"}],
                       "addresses": [{"type": "work", "locality": "London", "postalCode": "EC1"}],
                       "emails": [{"type": "home", "value": "a@home"}]}),
            ),
            (
                "extension schema attributes",
                json!({"userName": "u@x.com",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "w-9"}),
                json!({"schemas": [CORE_USER_SCHEMA, ENT], "userName": "u@x.com",
                       ENT: {"department": "R&D", "manager": {"value": "w-9"}}}),
            ),
            (
                "filtered path with an object value",
                json!({"emails[type eq \"work\"]": {"value": "w@x.com", "display": "W"}}),
                json!({"schemas": [CORE_USER_SCHEMA],
                       "emails": [{"type": "work", "value": "w@x.com", "display": "W", "primary": true}]}),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                user_resource(&attrs(input)).unwrap(),
                expected,
                "case {name}"
            );
        }
    }

    #[test]
    fn rejects_conflicting_or_invalid_paths() {
        let cases = vec![
            json!({"name": "x", "name.givenName": "y"}),
            json!({"emails": "x", "emails[type eq \"work\"].value": "y"}),
            json!({"emails[type eq \"work\"]": "not an object"}),
            json!({"emails[type co \"work\"].value": "x"}),
        ];
        for input in cases {
            assert!(
                user_resource(&attrs(input.clone())).is_err(),
                "{input} should be rejected"
            );
        }
    }

    #[test]
    fn patch_request_replaces_each_path() {
        let body = patch_request(&attrs(json!({"displayName": "Ada K", "active": false,
                                               "emails[type eq \"work\"].value": "a@x.com"})));
        assert_eq!(
            body,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [
                       {"op": "replace", "path": "active", "value": false},
                       {"op": "replace", "path": "displayName", "value": "Ada K"},
                       {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x.com"}]})
        );
    }

    #[test]
    fn patch_request_removes_null_paths() {
        let body = patch_request(&attrs(json!({"title": null, "displayName": "Ada",
                                               "phoneNumbers[type eq \"mobile\"].value": null})));
        assert_eq!(
            body["Operations"],
            json!([
                {"op": "replace", "path": "displayName", "value": "Ada"},
                {"op": "remove", "path": "phoneNumbers[type eq \"mobile\"].value"},
                {"op": "remove", "path": "title"}])
        );
    }
}
