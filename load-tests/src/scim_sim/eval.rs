//! Evaluates parsed SCIM filters against JSON resources (or, inside `attr[filter]`, against the
//! elements of a multi-valued attribute). String comparisons ignore case: every Webex attribute
//! the simulator filters on is `caseExact: false` (webex-scim.md §5.1).

use serde_json::{Map, Value};

use super::filter::{AttrPath, CompareOp, Filter, Literal};
use super::json::get_ci;

/// Does `resource` (an object; anything else matches nothing) satisfy `filter`?
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    resource
        .as_object()
        .is_some_and(|o| matches_object(filter, o))
}

pub fn matches_object(filter: &Filter, resource: &Map<String, Value>) -> bool {
    match filter {
        Filter::And(a, b) => matches_object(a, resource) && matches_object(b, resource),
        Filter::Or(a, b) => matches_object(a, resource) || matches_object(b, resource),
        Filter::Present(path) => values(resource, path).into_iter().any(present),
        Filter::Compare(path, op, lit) => {
            let vals = values(resource, path);
            if *lit == Literal::Null && *op == CompareOp::Eq {
                return !vals.into_iter().any(present);
            }
            vals.into_iter().any(|v| compare(v, *op, lit))
        }
    }
}

/// Every value `path` reaches, multi-valued attributes flattened ("any value matches").
pub fn values<'a>(resource: &'a Map<String, Value>, path: &AttrPath) -> Vec<&'a Value> {
    let mut current = Vec::new();
    let Some((first, rest)) = path.segments.split_first() else {
        return current;
    };
    if let Some(v) = get_ci(resource, first) {
        push_flat(v, &mut current);
    }
    for seg in rest {
        let mut next = Vec::new();
        for v in current {
            if let Some(found) = v.as_object().and_then(|o| get_ci(o, seg)) {
                push_flat(found, &mut next);
            }
        }
        current = next;
    }
    if let Some(f) = &path.filter {
        current.retain(|element| matches(f, element));
        if let Some(sub) = &path.sub {
            current = current
                .into_iter()
                .filter_map(|e| e.as_object().and_then(|o| get_ci(o, sub)))
                .flat_map(|v| {
                    let mut out = Vec::new();
                    push_flat(v, &mut out);
                    out
                })
                .collect();
        }
    }
    current
}

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(v: &Value, op: CompareOp, lit: &Literal) -> bool {
    // A complex value compares through its `value` sub-attribute (RFC 7644 §3.4.2.2).
    if let Value::Object(o) = v {
        return get_ci(o, "value")
            .is_some_and(|inner| !inner.is_object() && compare(inner, op, lit));
    }
    match (v, lit) {
        (Value::String(s), Literal::String(want)) => {
            let (s, want) = (s.to_lowercase(), want.to_lowercase());
            match op {
                CompareOp::Eq => s == want,
                CompareOp::Sw => s.starts_with(&want),
                CompareOp::Ew => s.ends_with(&want),
            }
        }
        (Value::Bool(b), Literal::Bool(want)) => op == CompareOp::Eq && b == want,
        (Value::Number(n), Literal::Number(want)) => {
            op == CompareOp::Eq && n.as_f64() == Some(*want)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim_sim::filter::parse_filter;
    use serde_json::json;

    #[test]
    fn evaluates_filters() {
        let user = json!({
            "id": "7A00-1",
            "userName": "Ada.Lovelace@Example.com",
            "externalId": "ext-1",
            "displayName": "Ada Lovelace",
            "active": false,
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [
                {"type": "work", "value": "ada.lovelace@example.com", "primary": true},
                {"type": "home", "value": "ada@home.example.net"}
            ],
            "phoneNumbers": [{"type": "mobile", "value": "+14170120"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Analytics", "manager": {"value": "m-1"}},
            "emptyList": [],
            "blank": ""
        });
        let cases = [
            (r#"userName eq "ada.lovelace@example.com""#, true),
            (r#"USERNAME EQ "ADA.LOVELACE@EXAMPLE.COM""#, true),
            (r#"userName eq "ada""#, false),
            (r#"userName sw "ada.""#, true),
            (r#"userName ew "example.com""#, true),
            (r#"userName ew "example.org""#, false),
            (r#"id eq "7a00-1""#, true),
            (r#"externalId eq "ext-1""#, true),
            ("externalId pr", true),
            ("nickName pr", false),
            ("emptyList pr", false),
            ("blank pr", false),
            (r#"displayName sw "Ada ""#, true),
            (r#"name.familyName eq "lovelace""#, true),
            (r#"name.givenName ew "x""#, false),
            (r#"emails.value eq "ada@home.example.net""#, true),
            (r#"emails eq "ada@home.example.net""#, true),
            (r#"emails.value eq "nobody@x""#, false),
            (
                r#"emails[type eq "work"].value eq "ada.lovelace@example.com""#,
                true,
            ),
            (
                r#"emails[type eq "home"].value eq "ada.lovelace@example.com""#,
                false,
            ),
            (r#"emails[type eq "work" and primary eq true]"#, true),
            (r#"emails[type eq "room"]"#, false),
            (
                r#"phoneNumbers [ type eq "mobile" and value eq "+14170120"]"#,
                true,
            ),
            (r#"phoneNumbers[type eq "work"]"#, false),
            ("active eq false", true),
            ("active eq true", false),
            ("nickName eq null", true),
            ("userName eq null", false),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "analytics""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m-1""#,
                true,
            ),
            (r#"userName eq "x" or displayName ew "lovelace""#, true),
            (r#"userName sw "ada" and displayName ew "x""#, false),
            (
                r#"(userName eq "x" or userName sw "ada") and externalId pr"#,
                true,
            ),
            (r#"active eq "false""#, false),
        ];
        for (f, want) in cases {
            let parsed = parse_filter(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(matches(&parsed, &user), want, "{f}");
        }
    }
}
