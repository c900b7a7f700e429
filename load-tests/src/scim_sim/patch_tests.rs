//! Table-driven tests of PATCH parsing and application.

use serde_json::{Value, json};

use super::*;
use crate::scim_sim::schema::ENTERPRISE_USER;

fn base() -> Value {
    json!({
        "id": "u1",
        "userName": "ada@example.com",
        "displayName": "Ada",
        "active": true,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"type": "work", "value": "ada@example.com", "primary": true}],
        "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}],
        "addresses": [{"type": "work", "locality": "London", "country": "GB"}],
        "roles": [{"value": "id_user_admin", "type": "cirole"}]
    })
}

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// Runs a PATCH body against `base()` and returns the result or the error's scimType. Checks
/// on the way that the owned path (`parse_owned`, `apply_owned`, used for users) agrees with
/// the borrowed one (`parse_request`, `apply`, used for groups), error details included.
fn run(ops: Value) -> Result<Value, ScimType> {
    let borrowed = run_with(&ops, |b, r| apply(r, &parse_request(&b)?));
    let owned = run_with(&ops, |b, r| apply_owned(r, parse_owned(b)?));
    let detail = |r: &Result<Value, ScimError>| match r {
        Ok(v) => Ok(v.clone()),
        Err(e) => Err((e.scim_type(), e.detail().to_owned())),
    };
    assert_eq!(detail(&borrowed), detail(&owned), "{ops}");
    borrowed.map_err(|e| e.scim_type().unwrap_or(ScimType::InvalidSyntax))
}

fn run_with(
    ops: &Value,
    f: impl FnOnce(Value, &mut Map<String, Value>) -> Result<(), ScimError>,
) -> Result<Value, ScimError> {
    let Value::Object(mut r) = base() else {
        unreachable!()
    };
    f(body(ops.clone()), &mut r)?;
    Ok(Value::Object(r))
}

/// `base()` with `edit` applied.
fn expect(edit: impl FnOnce(&mut Value)) -> Result<Value, ScimType> {
    let mut v = base();
    edit(&mut v);
    Ok(v)
}

#[test]
fn applies_operations() {
    let cases: Vec<(&str, Value, Result<Value, ScimType>)> = vec![
        (
            "replace displayName",
            json!([{"op": "replace", "path": "displayName", "value": "Ada L."}]),
            expect(|v| v["displayName"] = json!("Ada L.")),
        ),
        (
            "Replace capitalised, path case-insensitive",
            json!([{"op": "Replace", "path": "DISPLAYNAME", "value": "X"}]),
            expect(|v| v["displayName"] = json!("X")),
        ),
        (
            "replace name.givenName",
            json!([{"op": "replace", "path": "name.givenName", "value": "Augusta"}]),
            expect(|v| v["name"]["givenName"] = json!("Augusta")),
        ),
        (
            "replace of a missing attribute adds it",
            json!([{"op": "replace", "path": "title", "value": "Dr."}]),
            expect(|v| v["title"] = json!("Dr.")),
        ),
        (
            "replace of a missing sub-attribute creates the parent",
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"}]),
            expect(|v| v[ENTERPRISE_USER] = json!({"department": "R&D"})),
        ),
        (
            "replace active false",
            json!([{"op": "replace", "path": "active", "value": false}]),
            expect(|v| v["active"] = json!(false)),
        ),
        (
            "Entra's string False is kept for the schema pass to coerce",
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            expect(|v| v["active"] = json!("False")),
        ),
        (
            "replace emails[type eq work].value",
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada@new.example.com"}]),
            expect(|v| v["emails"][0]["value"] = json!("ada@new.example.com")),
        ),
        (
            "replace phoneNumbers[type eq work].value",
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+14085550123"}]),
            expect(|v| v["phoneNumbers"][0]["value"] = json!("+14085550123")),
        ),
        (
            "replace addresses[type eq work].locality",
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Paris"}]),
            expect(|v| v["addresses"][0]["locality"] = json!("Paris")),
        ),
        (
            "replace through a filter matching nothing",
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1"}]),
            Err(ScimType::NoTarget),
        ),
        (
            "replace of emails[type eq work] when none exists is noTarget too",
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}, {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"}]),
            Err(ScimType::NoTarget),
        ),
        (
            "add through a filter matching nothing creates the element",
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0199"}]),
            expect(|v| {
                v["phoneNumbers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "mobile", "value": "+1 555 0199"}))
            }),
        ),
        (
            "add through a filter when the attribute is absent",
            json!([{"op": "add", "path": "ims[type eq \"xmpp\"].value", "value": "ada@im"}]),
            expect(|v| v["ims"] = json!([{"type": "xmpp", "value": "ada@im"}])),
        ),
        (
            "add through a filter that is not a conjunction of eq terms",
            json!([{"op": "add", "path": "phoneNumbers[type sw \"mob\"].value", "value": "+1"}]),
            Err(ScimType::NoTarget),
        ),
        (
            "add to a multi-valued attribute appends",
            json!([{"op": "add", "path": "roles", "value": [{"value": "id_full_admin", "type": "cirole"}]}]),
            expect(|v| {
                v["roles"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "id_full_admin", "type": "cirole"}))
            }),
        ),
        (
            "add of an already present value changes nothing",
            json!([{"op": "add", "path": "roles", "value": {"value": "id_user_admin", "type": "cirole"}}]),
            expect(|_| {}),
        ),
        (
            "replace of a multi-valued attribute replaces the list",
            json!([{"op": "replace", "path": "phoneNumbers", "value": {"type": "mobile", "value": "+2"}}]),
            expect(|v| v["phoneNumbers"] = json!([{"type": "mobile", "value": "+2"}])),
        ),
        (
            "replace of a complex attribute merges",
            json!([{"op": "replace", "path": "name", "value": {"familyName": "Byron"}}]),
            expect(|v| v["name"]["familyName"] = json!("Byron")),
        ),
        (
            "remove a simple attribute",
            json!([{"op": "remove", "path": "displayName"}]),
            expect(|v| {
                v.as_object_mut().unwrap().remove("displayName");
            }),
        ),
        (
            "remove an absent attribute is a no-op",
            json!([{"op": "remove", "path": "nickName"}]),
            expect(|_| {}),
        ),
        (
            "remove a sub-attribute",
            json!([{"op": "remove", "path": "name.givenName"}]),
            expect(|v| {
                v["name"].as_object_mut().unwrap().remove("givenName");
            }),
        ),
        (
            "remove the last sub-attribute drops the parent",
            json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}]),
            expect(|v| {
                v.as_object_mut().unwrap().remove("name");
            }),
        ),
        (
            "remove an element through a filter",
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"work\"]"}]),
            expect(|v| {
                v.as_object_mut().unwrap().remove("phoneNumbers");
            }),
        ),
        (
            "remove a sub-attribute through a filter",
            json!([{"op": "remove", "path": "addresses[type eq \"work\"].locality"}]),
            expect(|v| {
                v["addresses"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("locality");
            }),
        ),
        (
            "remove through a filter matching nothing",
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"fax\"]"}]),
            Err(ScimType::NoTarget),
        ),
        (
            "remove listed values (Entra form)",
            json!([{"op": "Remove", "path": "roles", "value": [{"value": "id_user_admin"}]}]),
            expect(|v| {
                v.as_object_mut().unwrap().remove("roles");
            }),
        ),
        (
            "remove without path",
            json!([{"op": "remove"}]),
            Err(ScimType::NoTarget),
        ),
        (
            "replace without path, keyed by paths (Entra)",
            json!([{"op": "replace", "value": {
                "displayName": "A", "name.givenName": "G",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "D",
                "active": false
            }}]),
            expect(|v| {
                v["displayName"] = json!("A");
                v["name"]["givenName"] = json!("G");
                v[ENTERPRISE_USER] = json!({"department": "D"});
                v["active"] = json!(false);
            }),
        ),
        (
            "replace without path, RFC partial resource",
            json!([{"op": "replace", "value": {"name": {"givenName": "G"}, "title": "T"}}]),
            expect(|v| {
                v["name"]["givenName"] = json!("G");
                v["title"] = json!("T");
            }),
        ),
        (
            "replace without path needs an object",
            json!([{"op": "replace", "value": "x"}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "replace with null removes",
            json!([{"op": "replace", "path": "displayName", "value": null}]),
            expect(|v| {
                v.as_object_mut().unwrap().remove("displayName");
            }),
        ),
        (
            "replace without a value",
            json!([{"op": "replace", "path": "title"}]),
            Err(ScimType::InvalidValue),
        ),
        (
            "read-only id",
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            Err(ScimType::Mutability),
        ),
        (
            "read-only meta",
            json!([{"op": "replace", "path": "meta.created", "value": "x"}]),
            Err(ScimType::Mutability),
        ),
        (
            "ops apply in order",
            json!([{"op": "replace", "path": "title", "value": "A"}, {"op": "replace", "path": "title", "value": "B"}]),
            expect(|v| v["title"] = json!("B")),
        ),
        (
            "sub-attribute of a simple attribute",
            json!([{"op": "replace", "path": "displayName.x", "value": "y"}]),
            Err(ScimType::InvalidPath),
        ),
        (
            "a filter on a complex single-valued attribute",
            json!([{"op": "replace", "path": "name[givenName eq \"Ada\"].familyName", "value": "y"}]),
            Err(ScimType::InvalidPath),
        ),
        (
            "unknown op",
            json!([{"op": "merge", "path": "title", "value": "x"}]),
            Err(ScimType::InvalidSyntax),
        ),
        (
            "bad path",
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            Err(ScimType::InvalidPath),
        ),
        (
            "path not a string",
            json!([{"op": "replace", "path": 3, "value": "x"}]),
            Err(ScimType::InvalidPath),
        ),
        (
            "operation not an object",
            json!(["replace"]),
            Err(ScimType::InvalidSyntax),
        ),
    ];
    for (name, ops, want) in cases {
        assert_eq!(run(ops), want, "{name}");
    }
}

#[test]
fn rejects_malformed_requests() {
    let cases = [
        json!([]),
        json!({"Operations": []}),
        json!({"schemas": ["urn:other"], "Operations": []}),
        json!({"schemas": [PATCH_OP]}),
        json!({"schemas": [PATCH_OP], "Operations": {"op": "add"}}),
    ];
    for c in cases {
        let e = parse_request(&c).unwrap_err();
        assert_eq!(e.scim_type(), Some(ScimType::InvalidSyntax), "{c}");
    }
    let lower = json!({"schemas": [PATCH_OP.to_lowercase()], "operations": [{"OP": "ADD", "PATH": "title", "VALUE": "t"}]});
    let ops = parse_request(&lower).unwrap();
    assert_eq!(
        ops,
        vec![PatchOperation {
            op: OpKind::Add,
            path: Some(AttrPath::simple(&["title"]).into()),
            value: Some(json!("t"))
        }]
    );
}

#[test]
fn a_failing_op_leaves_earlier_ops_visible_only_on_the_copy() {
    // apply() stops at the first error; atomicity is the caller's copy-and-commit.
    let ops = parse_request(&body(json!([
        {"op": "replace", "path": "title", "value": "T"},
        {"op": "remove", "path": "phoneNumbers[type eq \"fax\"]"},
        {"op": "replace", "path": "displayName", "value": "never"}
    ])))
    .unwrap();
    let Value::Object(mut r) = base() else {
        unreachable!()
    };
    let err = apply(&mut r, &ops).unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::NoTarget));
    assert_eq!(r["title"], json!("T"));
    assert_eq!(r["displayName"], json!("Ada"));
}

#[test]
fn paths_come_from_the_cache_unchanged() {
    for p in [
        "title",
        "name.givenName",
        r#"emails[type eq "work"].value"#,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    ] {
        let first = cached_path(p).unwrap();
        assert_eq!(*first, parse_path(p).unwrap(), "{p}");
        // The second time is the cached path itself.
        assert!(Arc::ptr_eq(&first, &cached_path(p).unwrap()), "{p}");
    }
    for bad in ["", "emails[type eq", "a b"] {
        let want = parse_path(bad).unwrap_err().to_string();
        for _ in 0..2 {
            assert_eq!(cached_path(bad).unwrap_err().to_string(), want, "{bad:?}");
        }
    }
}
