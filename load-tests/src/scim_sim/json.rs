//! Case-insensitive access to JSON object keys: SCIM attribute names are case-insensitive
//! (RFC 7643 §2.1), so every lookup into a stored resource goes through these helpers.

use serde_json::{Map, Value};

/// The key of `map` equal to `name` ignoring ASCII case (an exact match wins).
pub fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

pub fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    match map.get(name) {
        Some(v) => Some(v),
        None => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v),
    }
}

pub fn get_mut_ci<'a>(map: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    // The exact key is the common case (stored resources are canonical): no key copy for it.
    if map.contains_key(name) {
        return map.get_mut(name);
    }
    let key = key_ci(map, name)?;
    map.get_mut(&key)
}

pub fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    if let Some(v) = map.remove(name) {
        return Some(v);
    }
    let key = key_ci(map, name)?;
    map.remove(&key)
}

/// Sets `name`, reusing an existing key that differs only in case.
pub fn set_ci(map: &mut Map<String, Value>, name: &str, value: Value) {
    if let Some(v) = get_mut_ci(map, name) {
        *v = value;
    } else {
        map.insert(name.to_owned(), value);
    }
}

/// A string attribute of an object, looked up case-insensitively.
pub fn str_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    get_ci(map, name).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_ignore_case() {
        let Value::Object(mut m) = json!({"userName": "a", "Name": {"givenName": "g"}}) else {
            unreachable!()
        };
        let cases: &[(&str, Option<&str>)] = &[
            ("userName", Some("userName")),
            ("USERNAME", Some("userName")),
            ("name", Some("Name")),
            ("nope", None),
        ];
        for (q, want) in cases {
            assert_eq!(key_ci(&m, q).as_deref(), *want, "{q}");
        }
        assert_eq!(str_ci(&m, "username"), Some("a"));
        set_ci(&mut m, "USERNAME", json!("b"));
        assert_eq!(m.len(), 2);
        assert_eq!(m["userName"], json!("b"));
        assert_eq!(remove_ci(&mut m, "NAME"), Some(json!({"givenName": "g"})));
        assert!(get_mut_ci(&mut m, "name").is_none());
    }
}
