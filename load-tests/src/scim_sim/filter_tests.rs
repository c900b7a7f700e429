//! Table-driven tests of the filter and attribute-path parser.

use super::*;
use crate::scim_sim::schema::ENTERPRISE_USER;

fn p(segs: &[&str]) -> AttrPath {
    AttrPath::simple(segs)
}
fn cmp(segs: &[&str], op: CompareOp, v: &str) -> Filter {
    Filter::Compare(p(segs), op, Literal::String(v.to_owned()))
}
fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}
fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}
fn vp(segs: &[&str], f: Filter, sub: Option<&str>) -> AttrPath {
    AttrPath {
        segments: segs.iter().map(|s| s.to_string()).collect(),
        filter: Some(Box::new(f)),
        sub: sub.map(str::to_owned),
    }
}

#[test]
fn parses_filters() {
    use CompareOp::*;
    let cases: Vec<(&str, Filter)> = vec![
        (
            r#"userName eq "user1@example.com""#,
            cmp(&["userName"], Eq, "user1@example.com"),
        ),
        (r#"userName Eq "a@x""#, cmp(&["userName"], Eq, "a@x")),
        (r#"USERNAME EQ "a@x""#, cmp(&["USERNAME"], Eq, "a@x")),
        (
            r#"userName sw "user1@example""#,
            cmp(&["userName"], Sw, "user1@example"),
        ),
        (
            r#"userName ew "example""#,
            cmp(&["userName"], Ew, "example"),
        ),
        ("externalId pr", Filter::Present(p(&["externalId"]))),
        (
            r#"name.familyName eq "Lovelace""#,
            cmp(&["name", "familyName"], Eq, "Lovelace"),
        ),
        (
            r#"emails.value eq "a@x""#,
            cmp(&["emails", "value"], Eq, "a@x"),
        ),
        (r#"id eq "7a00""#, cmp(&["id"], Eq, "7a00")),
        (
            r#"displayName eq "Ada \"the\" Countess""#,
            cmp(&["displayName"], Eq, "Ada \"the\" Countess"),
        ),
        (
            r#"userName Eq "a" or userName Eq "b""#,
            or(cmp(&["userName"], Eq, "a"), cmp(&["userName"], Eq, "b")),
        ),
        (
            r#"userName eq "a" or userName eq "b" and externalId pr"#,
            or(
                cmp(&["userName"], Eq, "a"),
                and(
                    cmp(&["userName"], Eq, "b"),
                    Filter::Present(p(&["externalId"])),
                ),
            ),
        ),
        (
            r#"(userName eq "a" or userName eq "b") and externalId pr"#,
            and(
                or(cmp(&["userName"], Eq, "a"), cmp(&["userName"], Eq, "b")),
                Filter::Present(p(&["externalId"])),
            ),
        ),
        (
            "active eq true",
            Filter::Compare(p(&["active"]), Eq, Literal::Bool(true)),
        ),
        (
            "active eq False",
            Filter::Compare(p(&["active"]), Eq, Literal::Bool(false)),
        ),
        (
            "x eq 42",
            Filter::Compare(p(&["x"]), Eq, Literal::Number(42.0)),
        ),
        ("x eq null", Filter::Compare(p(&["x"]), Eq, Literal::Null)),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#,
            cmp(&[ENTERPRISE_USER, "department"], Eq, "R&D"),
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m""#,
            cmp(&[ENTERPRISE_USER, "manager", "value"], Eq, "m"),
        ),
        (
            r#"urn:scim:schemas:extension:cisco:webexidentity:2.0:User:meta.organizationId eq "o""#,
            cmp(
                &[
                    "urn:scim:schemas:extension:cisco:webexidentity:2.0:User",
                    "meta",
                    "organizationId",
                ],
                Eq,
                "o",
            ),
        ),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
            cmp(&["userName"], Eq, "a"),
        ),
        (
            r#"urn:example:custom:attr eq "a""#,
            cmp(&["urn:example:custom", "attr"], Eq, "a"),
        ),
        (
            r#"phoneNumbers [ type eq "mobile" and value eq "14170120"]"#,
            Filter::Present(vp(
                &["phoneNumbers"],
                and(
                    cmp(&["type"], Eq, "mobile"),
                    cmp(&["value"], Eq, "14170120"),
                ),
                None,
            )),
        ),
        (
            r#"emails[type eq "work"].value eq "a@x""#,
            Filter::Compare(
                vp(&["emails"], cmp(&["type"], Eq, "work"), Some("value")),
                Eq,
                Literal::String("a@x".into()),
            ),
        ),
        (
            r#"phoneNumbers[type eq "work_extension"] and userName sw "a""#,
            and(
                Filter::Present(vp(
                    &["phoneNumbers"],
                    cmp(&["type"], Eq, "work_extension"),
                    None,
                )),
                cmp(&["userName"], Sw, "a"),
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_filter(input), Ok(want), "{input}");
    }
}

#[test]
fn rejects_bad_filters() {
    let cases = [
        ("", "empty"),
        ("userName", "missing operator"),
        (r#"userName co "a""#, "unsupported operator \"co\""),
        (r#"userName ne "a""#, "unsupported"),
        ("meta.lastModified gt \"2020\"", "unsupported"),
        (r#"not (userName eq "a")"#, "unsupported operator \"not\""),
        (r#"userName xx "a""#, "unknown operator"),
        (r#"userName eq"#, "missing comparison value"),
        (r#"userName eq a@x"#, "double quotes"),
        (r#"userName eq "a"#, "unterminated"),
        (r#"(userName eq "a""#, "missing ')'"),
        (r#"userName eq "a")"#, "unexpected"),
        (r#"userName eq "a" and"#, "unexpected end"),
        (r#"emails[type eq "work""#, "missing ']'"),
        (r#"a[b[c eq "x"]]"#, "nested value filters"),
        (r#"a.b.c.d eq "x""#, "invalid attribute path"),
        (r#"a..b eq "x""#, "invalid attribute path"),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User eq "x""#,
            "core schema",
        ),
        (
            r#"emails[type eq "work"].va!ue eq "x""#,
            "invalid sub-attribute",
        ),
        (r#""a" eq "b""#, "unexpected"),
    ];
    for (input, want) in cases {
        match parse_filter(input) {
            Err(SyntaxError(msg)) => assert!(msg.contains(want), "{input}: {msg}"),
            Ok(f) => panic!("{input} parsed as {f:?}"),
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let input = format!(
        "{}userName eq \"a\"{}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(parse_filter(&input).is_err());
    let ok = format!("{}userName eq \"a\"{}", "(".repeat(5), ")".repeat(5));
    assert!(parse_filter(&ok).is_ok());
}

#[test]
fn parses_patch_paths() {
    let cases: Vec<(&str, AttrPath)> = vec![
        ("displayName", p(&["displayName"])),
        ("name.givenName", p(&["name", "givenName"])),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            p(&[ENTERPRISE_USER, "department"]),
        ),
        (
            "URN:IETF:params:scim:schemas:extension:enterprise:2.0:user:department",
            p(&[ENTERPRISE_USER, "department"]),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            p(&[ENTERPRISE_USER]),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            p(&[ENTERPRISE_USER, "manager", "value"]),
        ),
        (
            r#"emails[type eq "work"].value"#,
            vp(
                &["emails"],
                cmp(&["type"], CompareOp::Eq, "work"),
                Some("value"),
            ),
        ),
        (
            r#"phoneNumbers[type eq "mobile"].value"#,
            vp(
                &["phoneNumbers"],
                cmp(&["type"], CompareOp::Eq, "mobile"),
                Some("value"),
            ),
        ),
        (
            r#"addresses[type eq "work"].locality"#,
            vp(
                &["addresses"],
                cmp(&["type"], CompareOp::Eq, "work"),
                Some("locality"),
            ),
        ),
        (
            r#"roles[value eq "id_user_admin"]"#,
            vp(
                &["roles"],
                cmp(&["value"], CompareOp::Eq, "id_user_admin"),
                None,
            ),
        ),
        // Groups: the core Group URN is dropped like the core User one.
        (
            r#"members[value eq "7a00"]"#,
            vp(&["members"], cmp(&["value"], CompareOp::Eq, "7a00"), None),
        ),
        (
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
            p(&["displayName"]),
        ),
        (
            "urn:scim:schemas:extension:cisco:webexidentity:2.0:Group:inheritances",
            p(&[
                "urn:scim:schemas:extension:cisco:webexidentity:2.0:Group",
                "inheritances",
            ]),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_path(input), Ok(want), "{input}");
    }
    for bad in [
        "",
        "a b",
        "emails[",
        "emails[type eq \"work\"] x",
        "(a)",
        "\"a\"",
        "a.b.c.d",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    ] {
        assert!(parse_path(bad).is_err(), "{bad}");
    }
}
