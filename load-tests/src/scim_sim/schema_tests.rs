//! Table-driven tests of canonical names, coercion and validation.

use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn canonicalizes_names() {
    let mut r = obj(json!({
        "USERNAME": "a@x", "Name": {"GIVENNAME": "A"}, "EMAILS": [{"VALUE": "a@x", "Type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "D", "Manager": {"VALUE": "m"}},
        "customThing": 1
    }));
    canonicalize(&mut r);
    assert_eq!(
        Value::Object(r),
        json!({
            "userName": "a@x", "name": {"givenName": "A"}, "emails": [{"value": "a@x", "type": "work"}],
            ENTERPRISE_USER: {"department": "D", "manager": {"value": "m"}},
            "customThing": 1
        })
    );
}

#[test]
fn coerces_booleans() {
    let cases = [
        (json!({"active": "False"}), Ok(json!({"active": false}))),
        (json!({"active": "TRUE"}), Ok(json!({"active": true}))),
        (json!({"active": false}), Ok(json!({"active": false}))),
        (
            json!({"emails": [{"primary": "True"}]}),
            Ok(json!({"emails": [{"primary": true}]})),
        ),
        (json!({"active": "yes"}), Err(ScimType::InvalidValue)),
        (json!({"active": 0}), Err(ScimType::InvalidValue)),
    ];
    for (input, want) in cases {
        let mut r = obj(input.clone());
        let got = coerce(&mut r)
            .map(|()| Value::Object(r))
            .map_err(|e| e.scim_type().unwrap());
        assert_eq!(got, want, "{input}");
    }
}

#[test]
fn validates_users() {
    let long = "x".repeat(250) + "@x.io";
    let cases: Vec<(Value, Option<&str>)> = vec![
        (json!({"userName": "a@x"}), None),
        (
            json!({"userName": "a@x", "emails": [{"type": "work", "value": "A@X", "primary": true}]}),
            None,
        ),
        (
            json!({"userName": "a@x", "emails": [{"type": "work", "value": "b@x", "primary": false}]}),
            None,
        ),
        (
            json!({"userName": "a@x", "emails": [{"type": "work", "value": "b@x", "primary": true}]}),
            Some("must equal userName"),
        ),
        (json!({}), Some("userName is required")),
        (json!({"userName": ""}), Some("userName is required")),
        (json!({"userName": "  "}), Some("userName is required")),
        (json!({"userName": 5}), Some("must be a string")),
        (json!({"userName": long}), Some("longer than 254")),
        (
            json!({"userName": "a@x", "displayName": "d".repeat(513)}),
            Some("displayName is longer"),
        ),
        (
            json!({"userName": "a@x", "displayName": "d".repeat(512)}),
            None,
        ),
        (
            json!({"userName": "a@x", "name": {"givenName": "g".repeat(257)}}),
            Some("name:givenName"),
        ),
        (
            json!({"userName": "a@x", ENTERPRISE_USER: {"department": "d".repeat(513)}}),
            Some("department"),
        ),
        (
            json!({"userName": "a@x", "userType": "robot"}),
            Some("userType"),
        ),
        (json!({"userName": "a@x", "userType": "room"}), None),
        (
            json!({"userName": "a@x", "emails": {"value": "a@x"}}),
            Some("must be an array"),
        ),
        (
            json!({"userName": "a@x", "emails": [{"type": "pager", "value": "p"}]}),
            Some("emails.type"),
        ),
        (
            json!({"userName": "a@x", "phoneNumbers": [{"type": "mobile", "value": "1"}]}),
            None,
        ),
        (
            json!({"userName": "a@x", "phoneNumbers": [{"type": "satellite", "value": "1"}]}),
            Some("phoneNumbers.type"),
        ),
        (
            json!({"userName": "a@x", "addresses": [{"type": "work", "locality": "l".repeat(129)}]}),
            Some("locality"),
        ),
        (
            json!({"userName": "a@x", "emails": (0..11).map(|i| json!({"type": "other", "value": format!("{i}@x")})).collect::<Vec<_>>()}),
            Some("at most 10"),
        ),
        (
            json!({"userName": "a@x", "phoneNumbers": [{"type": "work", "value": "1", "primary": true}, {"type": "mobile", "value": "2", "primary": true}]}),
            Some("at most one"),
        ),
        (
            json!({"userName": "a@x", "name": "Ada"}),
            Some("name must be an object"),
        ),
    ];
    for (input, want) in cases {
        let got = validate(&obj(input.clone()));
        match (want, got) {
            (None, Ok(())) => {}
            (Some(w), Err(e)) => {
                assert_eq!(e.scim_type(), Some(ScimType::InvalidValue));
                assert!(e.detail().contains(w), "{input}: {}", e.detail());
            }
            (want, got) => panic!("{input}: want {want:?}, got {got:?}"),
        }
    }
}
