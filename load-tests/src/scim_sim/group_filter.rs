//! Filters on groups (webex-scim.md §2: `displayName Eq "…" or displayName Eq "…"`, also
//! `externalId eq`, `id eq`, `sw`/`ew`/`pr`, `and`, any operator case). Attribute terms are
//! evaluated on the group's JSON object exactly as user filters are; `members` terms are
//! answered from the member set, because that is the only place members live.
//!
//! Member terms the simulator answers: `members[value eq "…"]` (several `value eq` joined by
//! `or` allowed), `members eq "…"`, `members.value eq "…"` and `members pr`. Any other term on
//! `members` is a 400 `invalidFilter`: failing loudly beats silently matching nothing.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::{ScimError, ScimType};
use super::eval::matches_object;
use super::filter::{AttrPath, CompareOp, Filter, Literal};
use super::group_schema::parse_user_id;

/// True when `path` starts at the group's `members` attribute.
pub fn is_members(path: &AttrPath) -> bool {
    path.segments
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("members"))
}

/// The values of a filter made only of `value eq "…"` terms joined by `or`, as in
/// `members[value eq "a" or value eq "b"]`; `None` for any other filter.
pub fn value_terms(filter: &Filter) -> Option<Vec<&str>> {
    match filter {
        Filter::Compare(p, CompareOp::Eq, Literal::String(s)) if p.is_attr("value") => {
            Some(vec![s.as_str()])
        }
        Filter::Or(a, b) => {
            let mut values = value_terms(a)?;
            values.extend(value_terms(b)?);
            Some(values)
        }
        _ => None,
    }
}

/// What a term on `members` asks.
enum MemberTerm<'a> {
    /// The group has at least one member.
    Present,
    /// One of these ids is a member.
    AnyOf(Vec<&'a str>),
}

/// `None` when `term` is not about members; `Some(None)` when it is, in a form not answered.
fn member_term(term: &Filter) -> Option<Option<MemberTerm<'_>>> {
    let path = match term {
        Filter::Present(p) | Filter::Compare(p, _, _) if is_members(p) => p,
        _ => return None,
    };
    let plain = path.filter.is_none() && path.sub.is_none();
    let answered = match term {
        Filter::Present(p) if plain && p.segments.len() == 1 => Some(MemberTerm::Present),
        Filter::Present(p) if p.segments.len() == 1 && p.sub.is_none() => p
            .filter
            .as_deref()
            .and_then(value_terms)
            .map(MemberTerm::AnyOf),
        Filter::Compare(p, CompareOp::Eq, Literal::String(s))
            if plain
                && (p.segments.len() == 1
                    || (p.segments.len() == 2 && p.segments[1].eq_ignore_ascii_case("value"))) =>
        {
            Some(MemberTerm::AnyOf(vec![s.as_str()]))
        }
        _ => None,
    };
    Some(answered)
}

/// Refuses filters with member terms the simulator does not answer.
pub fn check(filter: &Filter) -> Result<(), ScimError> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check(a)?;
            check(b)
        }
        term => match member_term(term) {
            Some(None) => Err(ScimError::bad(
                ScimType::InvalidFilter,
                "members can be filtered only with members[value eq \"…\"], \
                 members.value eq \"…\", members eq \"…\" or members pr",
            )),
            _ => Ok(()),
        },
    }
}

/// Does the group (its object and its members) satisfy a [`check`]ed `filter`?
pub fn matches(filter: &Filter, resource: &Map<String, Value>, members: &BTreeSet<Uuid>) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, resource, members) && matches(b, resource, members),
        Filter::Or(a, b) => matches(a, resource, members) || matches(b, resource, members),
        term => match member_term(term) {
            None => matches_object(term, resource),
            Some(Some(MemberTerm::Present)) => !members.is_empty(),
            Some(Some(MemberTerm::AnyOf(values))) => values
                .iter()
                .any(|v| parse_user_id(v).is_some_and(|id| members.contains(&id))),
            Some(None) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim_sim::filter::parse_filter;
    use serde_json::json;

    const ADA: &str = "7a000000-0000-4000-8000-000000000001";
    const BOB: &str = "7a000000-0000-4000-8000-000000000002";

    #[test]
    fn evaluates_group_filters() {
        let Value::Object(group) = json!({
            "id": "9e000000-0000-4000-8000-000000000001",
            "displayName": "Sales EMEA",
            "externalId": "Ext-1",
        }) else {
            unreachable!()
        };
        let members: BTreeSet<Uuid> = [Uuid::parse_str(ADA).unwrap()].into();
        let empty = BTreeSet::new();
        // (filter, matches the group with Ada, matches the same group empty)
        let cases = [
            (r#"displayName eq "Sales EMEA""#, true, true),
            (r#"displayName Eq "sales emea""#, true, true),
            (r#"DISPLAYNAME EQ "SALES EMEA""#, true, true),
            (r#"displayName eq "Sales""#, false, false),
            (
                r#"displayName Eq "x" or displayName Eq "sales emea""#,
                true,
                true,
            ),
            (r#"displayName sw "sales""#, true, true),
            (r#"externalId eq "ext-1""#, true, true),
            (
                r#"id eq "9E000000-0000-4000-8000-000000000001""#,
                true,
                true,
            ),
            ("externalId pr", true, true),
            (&format!(r#"members[value eq "{ADA}"]"#), true, false),
            (&format!(r#"members[value eq "{BOB}"]"#), false, false),
            (
                &format!(
                    r#"members[value eq "{BOB}" or value eq "{}"]"#,
                    ADA.to_uppercase()
                ),
                true,
                false,
            ),
            (&format!(r#"members eq "{ADA}""#), true, false),
            (&format!(r#"members.value eq "{ADA}""#), true, false),
            (r#"members.value eq "not-an-id""#, false, false),
            ("members pr", true, false),
            (
                &format!(r#"displayName eq "Sales EMEA" and members eq "{ADA}""#),
                true,
                false,
            ),
            (
                &format!(r#"displayName eq "nope" or members eq "{ADA}""#),
                true,
                false,
            ),
        ];
        for (f, with_ada, when_empty) in cases {
            let parsed = parse_filter(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            check(&parsed).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(matches(&parsed, &group, &members), with_ada, "{f}");
            assert_eq!(matches(&parsed, &group, &empty), when_empty, "{f} (empty)");
        }
    }

    #[test]
    fn refuses_member_terms_it_cannot_answer() {
        for f in [
            r#"members[type eq "user"]"#,
            r#"members[value eq "a" and type eq "user"]"#,
            r#"members.display eq "Ada""#,
            r#"members sw "7a""#,
            r#"members[value eq "a"].display eq "x""#,
            r#"displayName eq "x" or members.type eq "user""#,
        ] {
            let parsed = parse_filter(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(
                check(&parsed).unwrap_err().scim_type(),
                Some(ScimType::InvalidFilter),
                "{f}"
            );
        }
    }

    #[test]
    fn reads_value_terms() {
        // (filter inside members[…], values)
        let cases: Vec<(&str, Option<Vec<&str>>)> = vec![
            (r#"value eq "a""#, Some(vec!["a"])),
            (r#"VALUE Eq "a" or value eq "b""#, Some(vec!["a", "b"])),
            (
                r#"(value eq "a" or value eq "b") or value eq "c""#,
                Some(vec!["a", "b", "c"]),
            ),
            (r#"value eq "a" and value eq "b""#, None),
            (r#"type eq "user""#, None),
            (r#"value sw "a""#, None),
            ("value eq 5", None),
        ];
        for (f, want) in cases {
            let parsed = parse_filter(f).unwrap();
            assert_eq!(value_terms(&parsed), want, "{f}");
        }
    }
}
