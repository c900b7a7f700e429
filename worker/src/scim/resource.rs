//! The `POST /Users` resource of path-keyed attributes (also the `data` of Bulk POST
//! operations), written as JSON text straight from the attributes.
//!
//! Pure. The resource is first laid out as a tree that borrows the attributes' keys and
//! values, then serialized once. Building it as a `serde_json::Value` copied every value of
//! every created user, and that copy and its drop were a third of a worker's CPU in an
//! initial cycle (`perf record --call-graph dwarf`). The builder is generic over the path
//! forms of [`super::path`], so new mappings (phone numbers, addresses, enterprise
//! attributes) need no new code here.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::path::{ScimPath, parse_path};
use super::wire::{CORE_USER_SCHEMA, json_bytes};
use crate::error::WorkerError;
use crate::map::ScimAttributes;

/// Multi-valued entries that are marked `primary: true` when built: Webex requires the
/// primary work email, which must equal `userName`.
const PRIMARY_ENTRIES: &[(&str, &str, &str)] = &[("emails", "type", "work")];

static TRUE: Value = Value::Bool(true);

/// The JSON text of a `POST /Users` resource, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserBody(Vec<u8>);

impl UserBody {
    /// Any JSON value as a body (tests).
    pub fn of(value: &Value) -> Self {
        UserBody(json_bytes(value))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The `POST /Users` resource of the given attributes.
pub fn user_resource(attributes: &ScimAttributes) -> Result<UserBody, WorkerError> {
    let mut root: Object<'_> = Vec::new();
    let mut schemas = vec![CORE_USER_SCHEMA];
    for (path, value) in attributes {
        let parsed = parse_path(path)?;
        let target = match parsed.schema {
            None => &mut root,
            Some(urn) if urn == CORE_USER_SCHEMA => &mut root,
            Some(urn) => {
                if !schemas.contains(&urn) {
                    schemas.push(urn);
                }
                object_at(&mut root, urn, path)?
            }
        };
        set(target, &parsed, value, path)?;
    }
    mark_primaries(&mut root);
    insert(&mut root, "schemas", Node::Strings(schemas));
    sort(&mut root);
    Ok(UserBody(json_bytes(&Tree(&root))))
}

/// A JSON object under construction: few keys, so a list, sorted by key before it is written
/// (as a `serde_json::Map` without `preserve_order` writes them).
type Object<'a> = Vec<(&'a str, Node<'a>)>;

#[derive(Debug)]
enum Node<'a> {
    /// A mapped value, written as it is unless a later path reaches into it (see [`open`]).
    Value(&'a Value),
    Str(Cow<'a, str>),
    Strings(Vec<&'a str>),
    Object(Object<'a>),
    Array(Vec<Node<'a>>),
}

/// Makes a mapped object or array value one the builder can add to, borrowing its members:
/// a path such as `name.familyName` may extend an object mapped whole to `name`.
fn open(node: &mut Node<'_>) {
    match node {
        Node::Value(Value::Object(map)) => {
            *node = Node::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str(), Node::Value(v)))
                    .collect(),
            );
        }
        Node::Value(Value::Array(items)) => {
            *node = Node::Array(items.iter().map(Node::Value).collect());
        }
        _ => {}
    }
}

/// The object `node` is, opened if it is a mapped object value.
fn as_object<'n, 'a>(node: &'n mut Node<'a>) -> Option<&'n mut Object<'a>> {
    open(node);
    match node {
        Node::Object(object) => Some(object),
        _ => None,
    }
}

/// Whether `node` is an object whose `key` is the string `wanted`.
fn has_string(node: &Node<'_>, key: &str, wanted: &str) -> bool {
    let field = match node {
        Node::Object(object) => position(object, key).map(|i| &object[i].1),
        Node::Value(Value::Object(map)) => {
            return map.get(key).and_then(Value::as_str) == Some(wanted);
        }
        _ => None,
    };
    match field {
        Some(Node::Str(s)) => s == wanted,
        Some(Node::Value(v)) => v.as_str() == Some(wanted),
        _ => false,
    }
}

fn conflict(path: &str) -> WorkerError {
    WorkerError::ScimPath {
        path: path.to_string(),
        reason: "conflicts with another mapped path",
    }
}

fn position(object: &Object<'_>, key: &str) -> Option<usize> {
    object.iter().position(|(k, _)| *k == key)
}

/// Sets `key`, replacing what it held.
fn insert<'a>(object: &mut Object<'a>, key: &'a str, node: Node<'a>) {
    match position(object, key) {
        Some(i) => object[i].1 = node,
        None => object.push((key, node)),
    }
}

/// Sets `key`, which must not be set yet.
fn insert_new<'a>(
    object: &mut Object<'a>,
    key: &'a str,
    node: Node<'a>,
    path: &str,
) -> Result<(), WorkerError> {
    if position(object, key).is_some() {
        return Err(conflict(path));
    }
    object.push((key, node));
    Ok(())
}

/// The object under `key`, made empty if absent; an error if `key` holds something else.
fn object_at<'a, 'o>(
    object: &'o mut Object<'a>,
    key: &'a str,
    path: &str,
) -> Result<&'o mut Object<'a>, WorkerError> {
    let i = position(object, key).unwrap_or_else(|| {
        object.push((key, Node::Object(Vec::new())));
        object.len() - 1
    });
    as_object(&mut object[i].1).ok_or_else(|| conflict(path))
}

fn set<'a>(
    target: &mut Object<'a>,
    parsed: &ScimPath<'a>,
    value: &'a Value,
    path: &str,
) -> Result<(), WorkerError> {
    match (&parsed.filter, parsed.sub) {
        (None, None) => insert_new(target, parsed.attr, Node::Value(value), path),
        (None, Some(sub)) => insert_new(
            object_at(target, parsed.attr, path)?,
            sub,
            Node::Value(value),
            path,
        ),
        (Some((fattr, fvalue)), sub) => {
            let i = position(target, parsed.attr).unwrap_or_else(|| {
                target.push((parsed.attr, Node::Array(Vec::new())));
                target.len() - 1
            });
            let node = &mut target[i].1;
            open(node);
            let Node::Array(items) = node else {
                return Err(conflict(path));
            };
            let index = match items
                .iter()
                .position(|item| has_string(item, fattr, fvalue))
            {
                Some(i) => i,
                None => {
                    items.push(Node::Object(vec![(*fattr, Node::Str(fvalue.clone()))]));
                    items.len() - 1
                }
            };
            let entry = as_object(&mut items[index]).ok_or_else(|| conflict(path))?;
            match sub {
                Some(sub) => insert_new(entry, sub, Node::Value(value), path),
                None => {
                    let Value::Object(fields) = value else {
                        return Err(WorkerError::ScimPath {
                            path: path.to_string(),
                            reason: "a filtered path without sub-attribute needs an object value",
                        });
                    };
                    for (k, v) in fields {
                        if k != fattr {
                            insert(entry, k, Node::Value(v));
                        }
                    }
                    Ok(())
                }
            }
        }
    }
}

fn mark_primaries(root: &mut Object<'_>) {
    for (attr, fattr, fvalue) in PRIMARY_ENTRIES {
        let Some(i) = position(root, attr) else {
            continue;
        };
        let node = &mut root[i].1;
        open(node);
        if let Node::Array(items) = node {
            for item in items.iter_mut() {
                if has_string(item, fattr, fvalue)
                    && let Some(entry) = as_object(item)
                {
                    insert(entry, "primary", Node::Value(&TRUE));
                }
            }
        }
    }
}

/// Sorts every object's keys, at every depth (entries of an array keep their order).
fn sort(object: &mut Object<'_>) {
    object.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (_, node) in object.iter_mut() {
        sort_node(node);
    }
}

fn sort_node(node: &mut Node<'_>) {
    match node {
        Node::Object(inner) => sort(inner),
        Node::Array(items) => items.iter_mut().for_each(sort_node),
        _ => {}
    }
}

/// Serializes an [`Object`] as a JSON object.
struct Tree<'t, 'a>(&'t Object<'a>);

impl Serialize for Tree<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, node) in self.0 {
            map.serialize_entry(key, node)?;
        }
        map.end()
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Value(value) => value.serialize(serializer),
            Node::Str(s) => serializer.serialize_str(s),
            Node::Strings(items) => items.serialize(serializer),
            Node::Object(object) => Tree(object).serialize(serializer),
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::test_support::attrs;
    use serde_json::json;

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
                "the core schema's urn addresses the root",
                json!({"urn:ietf:params:scim:schemas:core:2.0:User:title": "Dr",
                       "name.givenName": "Ada"}),
                json!({"schemas": [CORE_USER_SCHEMA], "title": "Dr", "name": {"givenName": "Ada"}}),
            ),
            (
                "filtered path with an object value",
                json!({"emails[type eq \"work\"]": {"value": "w@x.com", "display": "W"}}),
                json!({"schemas": [CORE_USER_SCHEMA],
                       "emails": [{"type": "work", "value": "w@x.com", "display": "W", "primary": true}]}),
            ),
            (
                "an escaped filter value",
                json!({"emails[type eq \"wo\\\"rk\"].value": "q@x.com"}),
                json!({"schemas": [CORE_USER_SCHEMA],
                       "emails": [{"type": "wo\"rk", "value": "q@x.com"}]}),
            ),
            (
                "paths reach into objects and arrays mapped whole",
                json!({"name": {"givenName": "A"}, "name.familyName": "B",
                       "emails": [{"type": "home", "value": "h@x.com"}, "odd"],
                       "emails[type eq \"work\"].value": "w@x.com"}),
                json!({"schemas": [CORE_USER_SCHEMA],
                       "name": {"givenName": "A", "familyName": "B"},
                       "emails": [{"type": "home", "value": "h@x.com"}, "odd",
                                  {"type": "work", "value": "w@x.com", "primary": true}]}),
            ),
            (
                "a work email mapped whole is marked primary",
                json!({"emails": [{"type": "work", "value": "a@x.com"}], "emails[type eq \"work\"].display": "A"}),
                json!({"schemas": [CORE_USER_SCHEMA],
                       "emails": [{"type": "work", "value": "a@x.com", "display": "A", "primary": true}]}),
            ),
            (
                "a mapped schemas attribute is replaced by the schemas",
                json!({"schemas": "x", "userName": "s@x.com"}),
                json!({"schemas": [CORE_USER_SCHEMA], "userName": "s@x.com"}),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                serde_json::from_slice::<Value>(user_resource(&attrs(input)).unwrap().as_bytes())
                    .unwrap(),
                expected,
                "case {name}"
            );
        }
    }

    #[test]
    fn keys_are_written_sorted_at_every_depth() {
        let body = user_resource(&attrs(json!({
            "userName": "a@x.com", "name.givenName": "A", "name.familyName": "B",
            "emails[type eq \"work\"].value": "a@x.com", "active": true})))
        .unwrap();
        assert_eq!(
            String::from_utf8(body.as_bytes().to_vec()).unwrap(),
            "{\"active\":true,\"emails\":[{\"primary\":true,\"type\":\"work\",\"value\":\"a@x.com\"}],\
             \"name\":{\"familyName\":\"B\",\"givenName\":\"A\"},\
             \"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"a@x.com\"}"
        );
    }

    #[test]
    fn rejects_conflicting_or_invalid_paths() {
        let cases = vec![
            json!({"name": "x", "name.givenName": "y"}),
            json!({"emails": "x", "emails[type eq \"work\"].value": "y"}),
            json!({"emails[type eq \"work\"]": "not an object"}),
            json!({"emails[type co \"work\"].value": "x"}),
            json!({"emails[type eq \"work\"].value": "x", "emails[type eq \"work\"]": {"value": "y"},
                   "emails[type eq \"work\"].display": "d", "emails": "z"}),
            json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "x",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "y"}),
        ];
        for input in cases {
            assert!(
                user_resource(&attrs(input.clone())).is_err(),
                "{input} should be rejected"
            );
        }
    }
}
