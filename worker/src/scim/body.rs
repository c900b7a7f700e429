//! Builds the SCIM PATCH request body of path-keyed attributes (also the `data` of Bulk
//! PATCH operations); the POST /Users resource is [`super::resource`]'s.
//!
//! Pure.

use serde_json::{Map, Value, json};

use super::wire::PATCH_OP_SCHEMA;
use crate::map::ScimAttributes;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::test_support::attrs;

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
