//! How the simulator keeps one user resource in memory: as compact JSON text.
//!
//! A `serde_json` tree costs about 6 KB per Webex user, mostly because every JSON object is a
//! B-tree node sized for eleven entries plus one allocation per key and string; the same user
//! as text is about 0.6 KB. Reads parse the text back (microseconds), which is cheap next to the
//! HTTP request that asked for it. A resource holding a floating-point number stays a tree:
//! `serde_json`'s default float parsing is not guaranteed to give back the exact same `f64`,
//! and stored values must come back unchanged.

use serde_json::{Map, Value};

pub(crate) struct StoredUser {
    /// Creation order.
    pub seq: u64,
    body: Body,
}

enum Body {
    Text(Box<str>),
    Tree(Map<String, Value>),
}

impl StoredUser {
    pub fn new(seq: u64, resource: &Map<String, Value>) -> Self {
        StoredUser {
            seq,
            body: Body::of(resource),
        }
    }

    /// The stored resource.
    pub fn resource(&self) -> Map<String, Value> {
        match &self.body {
            // The text was written by `serde_json` from a map, so it always parses back.
            Body::Text(text) => {
                serde_json::from_str(text).expect("stored user text is JSON written by serde_json")
            }
            Body::Tree(map) => map.clone(),
        }
    }

    pub fn replace(&mut self, resource: &Map<String, Value>) {
        self.body = Body::of(resource);
    }

    /// How a group shows this user as a member: its `displayName`, else its `userName`.
    /// Reads only those two attributes: a member page asks for up to 500 users at once.
    pub fn display(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Names {
            #[serde(rename = "displayName")]
            display_name: Option<Value>,
            #[serde(rename = "userName")]
            user_name: Option<Value>,
        }
        let names = match &self.body {
            Body::Text(text) => serde_json::from_str::<Names>(text).ok()?,
            Body::Tree(map) => Names {
                display_name: map.get("displayName").cloned(),
                user_name: map.get("userName").cloned(),
            },
        };
        [names.display_name, names.user_name]
            .into_iter()
            .find_map(|v| match v {
                Some(Value::String(s)) if !s.is_empty() => Some(s),
                _ => None,
            })
    }
}

impl Body {
    fn of(resource: &Map<String, Value>) -> Body {
        if resource.values().any(has_float) {
            return Body::Tree(resource.clone());
        }
        match serde_json::to_string(resource) {
            Ok(text) => Body::Text(text.into_boxed_str()),
            // Unreachable for a map of values; keeping the tree is still correct.
            Err(_) => Body::Tree(resource.clone()),
        }
    }
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_come_back_unchanged() {
        // (resource, kept as text)
        let cases = [
            (json!({}), true),
            (
                json!({"userName": "zoë@x.example", "name": {"givenName": "Zoë", "familyName": "张"},
                       "emails": [{"value": "a\"b\\c\n", "type": "work", "primary": true}],
                       "active": false, "n": -3, "big": u64::MAX, "nothing": null}),
                true,
            ),
            (json!({"score": 0.1, "x": "y"}), false),
            (json!({"deep": [{"a": [1, 2.5e-300]}]}), false),
            (json!({"f": 1.7976931348623157e308}), false),
        ];
        for (resource, text) in cases {
            let Value::Object(map) = resource else {
                panic!("case is not an object")
            };
            let mut stored = StoredUser::new(3, &map);
            assert_eq!(stored.resource(), map);
            assert_eq!(matches!(stored.body, Body::Text(_)), text, "{map:?}");
            stored.replace(&Map::new());
            assert_eq!(stored.resource(), Map::new());
        }
    }

    #[test]
    fn display_is_the_display_name_else_the_user_name() {
        let cases = [
            (
                json!({"userName": "a@x", "displayName": "Ada"}),
                Some("Ada"),
            ),
            (json!({"userName": "a@x", "displayName": ""}), Some("a@x")),
            (json!({"userName": "a@x", "displayName": null}), Some("a@x")),
            (json!({"userName": "a@x", "score": 0.5}), Some("a@x")),
            (
                json!({"userName": "a@x", "displayName": "Ada", "score": 0.5}),
                Some("Ada"),
            ),
            (json!({"displayName": 5}), None),
            (json!({}), None),
        ];
        for (resource, want) in cases {
            let Value::Object(map) = &resource else {
                panic!("case is not an object")
            };
            let stored = StoredUser::new(0, map);
            assert_eq!(stored.display().as_deref(), want, "{resource}");
        }
    }
}
