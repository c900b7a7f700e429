//! Builds stored user resources from POST/PUT bodies and finishes them after a PATCH: server
//! attributes (`id`, `meta`, `schemas`, the Cisco extension), defaults and the generated work
//! email of webex-scim.md §5.4. Pure: time, ids and versions come in as arguments.

use serde_json::{Map, Value, json};

use super::error::{ScimError, ScimType};
use super::json::get_ci;
use super::schema::{
    CISCO_USER, CORE_USER, ENTERPRISE_USER, READ_ONLY, canonicalize, coerce, has_work_email,
    primary_work_email, validate,
};

/// What the server decides for a resource it writes.
#[derive(Debug, Clone)]
pub struct Stamp<'a> {
    pub org_id: &'a str,
    pub id: &'a str,
    pub location: &'a str,
    pub created: &'a str,
    pub now: &'a str,
    pub version: u64,
}

/// A new user (POST) or the full replacement of one (PUT) from a request body.
pub fn from_body(body: Value, stamp: &Stamp<'_>) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(mut r) = body else {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "a user must be a JSON object",
        ));
    };
    let has_core = get_ci(&r, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(CORE_USER))
            })
        });
    if !has_core {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            format!("schemas must contain {CORE_USER}"),
        ));
    }
    canonicalize(&mut r);
    // Read-only and write-only inputs are ignored (webex-scim.md §5).
    for attr in READ_ONLY.iter().chain(["password"].iter()) {
        r.remove(*attr);
    }
    if !r.contains_key("userType") {
        r.insert("userType".into(), json!("user"));
    }
    if r.get("active").is_none_or(Value::is_null) {
        r.insert("active".into(), json!(true));
    }
    coerce(&mut r)?;
    if let Some(Value::String(user_name)) = r.get("userName").cloned()
        && !user_name.trim().is_empty()
        && !has_work_email(&r)
    {
        let email = json!({"value": user_name, "type": "work", "primary": true});
        match r.get_mut("emails") {
            Some(Value::Array(emails)) => emails.push(email),
            _ => {
                r.insert("emails".into(), json!([email]));
            }
        }
    }
    finish(&mut r, stamp)?;
    Ok(r)
}

/// After a PATCH: a renamed user's primary work email follows `userName` when it used to equal
/// the old one (Webex keeps the two equal; Entra renames by patching `userName` alone).
pub fn after_patch(
    r: &mut Map<String, Value>,
    old_user_name: &str,
    stamp: &Stamp<'_>,
) -> Result<(), ScimError> {
    canonicalize(r);
    coerce(r)?;
    let new_name = r.get("userName").and_then(Value::as_str).map(str::to_owned);
    if let Some(new_name) = new_name
        && new_name != old_user_name
        && primary_work_email(r).is_some_and(|w| w.eq_ignore_ascii_case(old_user_name))
        && let Some(Value::Array(emails)) = r.get_mut("emails")
    {
        for e in emails.iter_mut().filter_map(Value::as_object_mut) {
            let work = e
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("work"));
            if work && e.get("primary") == Some(&Value::Bool(true)) {
                e.insert("value".into(), json!(new_name));
            }
        }
    }
    finish(r, stamp)
}

/// Validates, then sets the server-owned attributes. After a PATCH most of them are already
/// what they must be: those are left in place rather than built again (no new keys or strings).
fn finish(r: &mut Map<String, Value>, stamp: &Stamp<'_>) -> Result<(), ScimError> {
    validate(r)?;
    let enterprise = r.contains_key(ENTERPRISE_USER);
    let schemas_ok = matches!(r.get("schemas"), Some(Value::Array(s)) if {
        let want: &[&str] = if enterprise {
            &[CORE_USER, ENTERPRISE_USER, CISCO_USER]
        } else {
            &[CORE_USER, CISCO_USER]
        };
        s.len() == want.len() && s.iter().zip(want).all(|(a, b)| a.as_str() == Some(*b))
    });
    if !schemas_ok {
        let mut schemas = vec![json!(CORE_USER)];
        if enterprise {
            schemas.push(json!(ENTERPRISE_USER));
        }
        schemas.push(json!(CISCO_USER));
        put(r, "schemas", Value::Array(schemas));
    }
    if r.get("id").and_then(Value::as_str) != Some(stamp.id) {
        put(r, "id", json!(stamp.id));
    }

    let cisco = match r.get_mut(CISCO_USER) {
        Some(cisco) => cisco,
        None => r.entry(CISCO_USER).or_insert_with(|| json!({})),
    };
    let Value::Object(cisco) = cisco else {
        return Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("{CISCO_USER} must be an object"),
        ));
    };
    // Requests may send a string; responses always carry an array (§5.3).
    match cisco.get_mut("accountStatus") {
        Some(status @ Value::String(_)) => *status = Value::Array(vec![status.take()]),
        Some(Value::Array(a)) if !a.is_empty() => {}
        Some(status) => *status = json!(["active"]),
        None => {
            cisco.insert("accountStatus".into(), json!(["active"]));
        }
    }
    let org_ok = matches!(cisco.get("meta"), Some(Value::Object(m))
        if m.len() == 1 && m.get("organizationId").and_then(Value::as_str) == Some(stamp.org_id));
    if !org_ok {
        put(cisco, "meta", json!({"organizationId": stamp.org_id}));
    }
    let version = format!("W/\"{}\"", stamp.version);
    match r.get_mut("meta") {
        // A rewrite of this user: only the version and the time change.
        Some(Value::Object(m))
            if m.len() == 5
                && m.get("resourceType").and_then(Value::as_str) == Some("User")
                && m.get("location").and_then(Value::as_str) == Some(stamp.location)
                && m.get("created").and_then(Value::as_str) == Some(stamp.created)
                && m.contains_key("version")
                && m.contains_key("lastModified") =>
        {
            put(m, "version", Value::String(version));
            put(m, "lastModified", json!(stamp.now));
        }
        _ => put(
            r,
            "meta",
            json!({
                "resourceType": "User",
                "location": stamp.location,
                "version": version,
                "created": stamp.created,
                "lastModified": stamp.now,
            }),
        ),
    }
    Ok(())
}

/// Sets `key` (exact spelling), keeping the map's own key when there is one.
fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get_mut(key) {
        Some(v) => *v = value,
        None => {
            map.insert(key.to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp<'static> {
        Stamp {
            org_id: "org-1",
            id: "u-1",
            location: "http://h/u-1",
            created: "t0",
            now: "t1",
            version: 7,
        }
    }

    #[test]
    fn builds_a_new_user() {
        let body = json!({
            "schemas": [CORE_USER], "UserName": "ada@example.com", "id": "client-chosen",
            "meta": {"created": "x"}, "password": "secret", "groups": [{"value": "g"}],
            "emails": [{"type": "home", "value": "ada@home.example.net"}],
            "urn:scim:schemas:extension:cisco:webexidentity:2.0:User": {"accountStatus": "active"}
        });
        let r = from_body(body, &stamp()).unwrap();
        assert_eq!(
            Value::Object(r),
            json!({
                "schemas": [CORE_USER, CISCO_USER],
                "id": "u-1",
                "userName": "ada@example.com",
                "userType": "user",
                "active": true,
                "emails": [
                    {"type": "home", "value": "ada@home.example.net"},
                    {"value": "ada@example.com", "type": "work", "primary": true}
                ],
                CISCO_USER: {"accountStatus": ["active"], "meta": {"organizationId": "org-1"}},
                "meta": {"resourceType": "User", "location": "http://h/u-1", "version": "W/\"7\"", "created": "t0", "lastModified": "t1"}
            })
        );
    }

    #[test]
    fn keeps_given_values() {
        let body = json!({
            "schemas": [CORE_USER, ENTERPRISE_USER], "userName": "a@x", "userType": "room", "active": "False",
            "emails": [{"type": "work", "value": "A@X", "primary": "true"}],
            ENTERPRISE_USER: {"department": "D"}
        });
        let r = from_body(body, &stamp()).unwrap();
        assert_eq!(
            r["schemas"],
            json!([CORE_USER, ENTERPRISE_USER, CISCO_USER])
        );
        assert_eq!(r["userType"], json!("room"));
        assert_eq!(r["active"], json!(false));
        assert_eq!(
            r["emails"],
            json!([{"type": "work", "value": "A@X", "primary": true}])
        );
    }

    #[test]
    fn rejects_bad_bodies() {
        let cases = [
            (json!([]), ScimType::InvalidSyntax),
            (json!({"userName": "a@x"}), ScimType::InvalidSyntax),
            (
                json!({"schemas": "x", "userName": "a@x"}),
                ScimType::InvalidSyntax,
            ),
            (json!({"schemas": [CORE_USER]}), ScimType::InvalidValue),
            (
                json!({"schemas": [CORE_USER], "userName": ""}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [CORE_USER], "userName": "a@x", "active": "maybe"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [CORE_USER], "userName": "a@x", "emails": [{"type": "work", "value": "b@x", "primary": true}]}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [CORE_USER], "userName": "a@x", CISCO_USER: "x"}),
                ScimType::InvalidValue,
            ),
        ];
        for (body, want) in cases {
            let got = from_body(body.clone(), &stamp()).unwrap_err();
            assert_eq!(got.scim_type(), Some(want), "{body}");
        }
    }

    #[test]
    fn primary_work_email_follows_a_rename() {
        let mut r =
            from_body(json!({"schemas": [CORE_USER], "userName": "a@x"}), &stamp()).unwrap();
        r.insert("userName".into(), json!("b@x"));
        after_patch(&mut r, "a@x", &stamp()).unwrap();
        assert_eq!(
            r["emails"],
            json!([{"value": "b@x", "type": "work", "primary": true}])
        );

        // An explicit, mismatching primary work email is still refused.
        let mut r =
            from_body(json!({"schemas": [CORE_USER], "userName": "a@x"}), &stamp()).unwrap();
        r["emails"][0]["value"] = json!("c@x");
        let err = after_patch(&mut r, "a@x", &stamp()).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
    }

    #[test]
    fn a_rewrite_sets_every_server_attribute_afresh() {
        let later = Stamp {
            version: 8,
            now: "t2",
            ..stamp()
        };
        let user = || {
            from_body(
                json!({"schemas": [CORE_USER], "userName": "a@x", "title": "T"}),
                &stamp(),
            )
            .unwrap()
        };
        let want = |r: &mut Map<String, Value>| {
            r.insert("schemas".into(), json!([CORE_USER, CISCO_USER]));
            r.insert("id".into(), json!("u-1"));
            r.insert(
                CISCO_USER.into(),
                json!({"accountStatus": ["active"], "meta": {"organizationId": "org-1"}}),
            );
            r.insert(
                "meta".into(),
                json!({"resourceType": "User", "location": "http://h/u-1", "version": "W/\"8\"",
                       "created": "t0", "lastModified": "t2"}),
            );
        };
        // What a PATCH may leave behind, each to be put right as a new user would be.
        type Edit = fn(&mut Map<String, Value>);
        let edits: [(&str, Edit); 9] = [
            ("nothing", |_| {}),
            ("schemas", |r| {
                r.insert("schemas".into(), json!([CORE_USER]));
            }),
            ("id", |r| {
                r.insert("id".into(), json!("other"));
            }),
            ("meta key", |r| {
                r["meta"]["extra"] = json!(1);
            }),
            ("meta created", |r| r["meta"]["created"] = json!("t9")),
            ("meta location", |r| {
                r["meta"]["location"] = json!("elsewhere")
            }),
            ("status string", |r| {
                r[CISCO_USER]["accountStatus"] = json!("inactive");
            }),
            ("status empty", |r| {
                r[CISCO_USER]["accountStatus"] = json!([])
            }),
            ("cisco meta", |r| {
                r[CISCO_USER]["meta"]["organizationId"] = json!("org-2");
            }),
        ];
        for (name, edit) in edits {
            let mut r = user();
            edit(&mut r);
            let mut expected = r.clone();
            want(&mut expected);
            if name == "status string" {
                expected[CISCO_USER]["accountStatus"] = json!(["inactive"]);
            }
            after_patch(&mut r, "a@x", &later).unwrap();
            assert_eq!(r, expected, "{name}");
        }
        // A rewrite that adds the enterprise extension declares it.
        let mut r = user();
        r.insert(ENTERPRISE_USER.into(), json!({"department": "D"}));
        after_patch(&mut r, "a@x", &later).unwrap();
        assert_eq!(
            r["schemas"],
            json!([CORE_USER, ENTERPRISE_USER, CISCO_USER])
        );
    }
}
