//! A tenant's attribute mapping: for each Webex attribute (a SCIM path), where its value comes
//! from. Pure: the rules are data, checked and compiled once ([`Mapping::compile`], expressions
//! parsed then) and applied per user without re-parsing ([`Mapping::apply`]).
//!
//! Kinds, as in Entra: **direct** (a Graph property), **constant**, **expression** (see
//! [`crate::expr`]) and **none** (the attribute is not synced). A rule may apply on create
//! only, and may give a default used on create when the source has no value. A tenant without
//! rules uses the default mapping (the seed's attribute table, in the worker). `externalId`,
//! `active`, `userType` and the manager reference are dirsync's own and cannot be mapped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::SourceUser;
use crate::expr::{Expr, ExprError, Outcome, Value};

/// Targets dirsync sets itself.
pub const FIXED_TARGETS: &[&str] = &[
    "externalId",
    "active",
    "userType",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
];

/// Where one target's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MappingSource {
    /// A Graph property, by name (the first value of a multi-valued one).
    Direct {
        attribute: String,
    },
    Constant {
        value: String,
    },
    Expression {
        expression: String,
    },
    /// Not synced.
    None,
}

/// One target attribute's rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRule {
    /// The SCIM path written, e.g. `title` or `addresses[type eq "work"].locality`.
    pub target: String,
    #[serde(flatten)]
    pub source: MappingSource,
    /// Written when the user is created, never updated afterwards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_only: bool,
    /// Written on create when the source has no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_if_null: Option<String>,
}

/// Why rules cannot be saved: which rule, and for an expression where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping of {target}: {message}")]
pub struct MappingError {
    pub rule: usize,
    pub target: String,
    pub message: String,
    /// Character position in the rule's expression, when the error is in one.
    pub position: Option<usize>,
}

/// What a mapping gives for one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// Targets written on create and on update.
    pub always: Map<String, Json>,
    /// Targets written on create only (create-only rules, and defaults for null sources).
    pub on_create: Map<String, Json>,
    /// Targets whose direct source the entry explicitly cleared (for "clear attributes").
    pub cleared: Vec<String>,
    /// Expressions that failed on this user's data: target and error (the target is left out).
    pub errors: Vec<(String, ExprError)>,
}

/// Checked rules with their expressions parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    rules: Vec<(MappingRule, Option<Expr>)>,
}

impl Mapping {
    /// Checks and compiles rules: one rule per target, none on dirsync's own targets,
    /// `userName` mapped (Webex requires it), names and expressions valid.
    pub fn compile(rules: Vec<MappingRule>) -> Result<Mapping, MappingError> {
        let fail = |rule: usize, target: &str, message: String, position| MappingError {
            rule,
            target: target.to_string(),
            message,
            position,
        };
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            let target = rule.target.trim();
            if target.is_empty() || target.chars().any(char::is_control) {
                return Err(fail(
                    i,
                    target,
                    "the target is not a scim path".into(),
                    None,
                ));
            }
            if FIXED_TARGETS.iter().any(|f| f.eq_ignore_ascii_case(target)) {
                return Err(fail(
                    i,
                    target,
                    "dirsync sets this attribute itself".into(),
                    None,
                ));
            }
            if compiled
                .iter()
                .any(|(r, _): &(MappingRule, Option<Expr>)| r.target.eq_ignore_ascii_case(target))
            {
                return Err(fail(i, target, "mapped twice".into(), None));
            }
            let expr = match &rule.source {
                MappingSource::Direct { attribute } if attribute.trim().is_empty() => {
                    return Err(fail(i, target, "no source attribute".into(), None));
                }
                MappingSource::Expression { expression } => Some(
                    Expr::parse(expression)
                        .map_err(|e| fail(i, target, e.to_string(), Some(e.position())))?,
                ),
                _ => None,
            };
            let rule = MappingRule {
                target: target.to_string(),
                ..rule
            };
            compiled.push((rule, expr));
        }
        let maps_user_name = compiled
            .iter()
            .any(|(r, _)| r.target == "userName" && !matches!(r.source, MappingSource::None));
        if !maps_user_name {
            return Err(fail(
                compiled.len(),
                "userName",
                "webex requires userName: map it".into(),
                None,
            ));
        }
        Ok(Mapping { rules: compiled })
    }

    /// The rules, as saved.
    pub fn rules(&self) -> impl Iterator<Item = &MappingRule> {
        self.rules.iter().map(|(r, _)| r)
    }

    /// Applies the rules to one user entry.
    pub fn apply(&self, user: &SourceUser) -> Mapped {
        let mut out = Mapped::default();
        for (rule, expr) in &self.rules {
            let value = match (&rule.source, expr) {
                (MappingSource::None, _) => continue,
                (MappingSource::Constant { value }, _) => Json::String(value.clone()),
                (MappingSource::Direct { attribute }, _) => match user.attributes.get(attribute) {
                    Some(Json::Null) => {
                        out.cleared.push(rule.target.clone());
                        Json::Null
                    }
                    Some(v) => single(Value::from_json(v)),
                    None => Json::Null,
                },
                (MappingSource::Expression { .. }, Some(expr)) => match expr.evaluate(user) {
                    Ok(Outcome::Value(v)) => single(v),
                    Ok(Outcome::Ignore) => continue,
                    Err(e) => {
                        out.errors.push((rule.target.clone(), e));
                        continue;
                    }
                },
                (MappingSource::Expression { .. }, None) => continue,
            };
            if value.is_null() {
                if let Some(default) = &rule.default_if_null {
                    out.on_create
                        .insert(rule.target.clone(), Json::String(default.clone()));
                }
                continue;
            }
            let into = if rule.create_only {
                &mut out.on_create
            } else {
                &mut out.always
            };
            into.insert(rule.target.clone(), value);
        }
        out
    }
}

/// A single-valued target takes the first value of a list, and text for a boolean.
fn single(value: Value) -> Json {
    match value {
        Value::List(items) => items.into_iter().next().map_or(Json::Null, Json::String),
        Value::Bool(b) => Json::String(if b { "True" } else { "False" }.into()),
        Value::Str(s) if s.is_empty() => Json::Null,
        other => other.to_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: Json) -> Vec<MappingRule> {
        serde_json::from_value(v).unwrap()
    }

    fn user(attrs: Json) -> SourceUser {
        SourceUser {
            id: "u1".into(),
            removed: None,
            attributes: attrs.as_object().cloned().unwrap(),
        }
    }

    #[test]
    fn rules_read_and_write_as_documented() {
        let r = rules(json!([
            {"target": "userName", "kind": "direct", "attribute": "userPrincipalName"},
            {"target": "title", "kind": "constant", "value": "Staff", "create_only": true},
            {"target": "displayName", "kind": "expression",
             "expression": "Join(\" \", [givenName], [surname])", "default_if_null": "Unknown"},
            {"target": "nickName", "kind": "none"}
        ]));
        assert_eq!(r[3].source, MappingSource::None);
        assert!(r[1].create_only);
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(rules(back), r);
    }

    #[test]
    fn compile_refuses_what_cannot_work_and_says_where() {
        let base =
            json!({"target": "userName", "kind": "direct", "attribute": "userPrincipalName"});
        let cases = [
            (
                json!([{"target": "title", "kind": "constant", "value": "x"}]),
                "userName",
                None,
            ),
            (
                json!([base, {"target": "active", "kind": "constant", "value": "x"}]),
                "itself",
                None,
            ),
            (json!([base, base]), "twice", None),
            (
                json!([base, {"target": "title", "kind": "direct", "attribute": " "}]),
                "no source",
                None,
            ),
            (
                json!([base, {"target": "title", "kind": "expression", "expression": "ToUpper([a]"}]),
                "expected",
                Some(11),
            ),
            (
                json!([base, {"target": "title", "kind": "expression", "expression": "Lefft([a], 2)"}]),
                "unknown function",
                Some(0),
            ),
        ];
        for (rules_json, message, position) in cases {
            let err = Mapping::compile(rules(rules_json)).unwrap_err();
            assert!(err.to_string().contains(message), "{err}");
            assert_eq!(err.position, position, "{err}");
        }
    }

    #[test]
    fn apply_by_kind_create_only_defaults_and_clearing() {
        let mapping = Mapping::compile(rules(json!([
            {"target": "userName", "kind": "direct", "attribute": "userPrincipalName"},
            {"target": "phoneNumbers[type eq \"work\"].value", "kind": "direct", "attribute": "businessPhones"},
            {"target": "title", "kind": "constant", "value": "Staff", "create_only": true},
            {"target": "displayName", "kind": "expression",
             "expression": "Join(\" \", [givenName], [surname])"},
            {"target": "nickName", "kind": "expression",
             "expression": "IgnoreFlowIfNullOrEmpty([mailNickname])"},
            {"target": "name.givenName", "kind": "direct", "attribute": "givenName",
             "default_if_null": "(none)"},
            {"target": "locale", "kind": "none"},
            {"target": "profileUrl", "kind": "direct", "attribute": "jobTitle"}
        ])))
        .unwrap();
        let mapped = mapping.apply(&user(json!({
            "userPrincipalName": "a@x.com", "businessPhones": ["+1 1", "+1 2"],
            "surname": "Lovelace", "givenName": null, "mailNickname": "", "jobTitle": null
        })));
        assert_eq!(
            Json::Object(mapped.always),
            json!({"userName": "a@x.com", "phoneNumbers[type eq \"work\"].value": "+1 1",
                   "displayName": "Lovelace"})
        );
        assert_eq!(
            Json::Object(mapped.on_create),
            json!({"title": "Staff", "name.givenName": "(none)"})
        );
        assert_eq!(mapped.cleared, ["name.givenName", "profileUrl"]);
        assert!(mapped.errors.is_empty());
    }
}
