//! One table per function about conditions, nulls and choices: CBool, Coalesce, CStr, IIF,
//! IgnoreFlowIfNullOrEmpty, IsNull, IsNullOrEmpty, IsPresent, Item, Not, Switch; and the
//! comparison operators.

use serde_json::json;

use super::{Want, check, err, v};

#[test]
fn cbool() {
    check(&[
        (
            "CBool([a] = [b])",
            json!({"a": "x", "b": "x"}),
            v(json!(true)),
        ),
        (
            "CBool([a] = [b])",
            json!({"a": "x", "b": "X"}),
            v(json!(false)),
        ),
        (
            "CBool([accountEnabled])",
            json!({"accountEnabled": true}),
            v(json!(true)),
        ),
        ("CBool([accountEnabled])", json!({}), v(json!(false))),
        ("CBool([flag])", json!({"flag": "FALSE"}), v(json!(false))),
        ("CBool([flag])", json!({"flag": "1"}), v(json!(true))),
        ("CBool([flag])", json!({"flag": 0}), v(json!(false))),
        ("CBool(2)", json!({}), v(json!(true))),
        (
            "CBool([flag])",
            json!({"flag": "peut-être"}),
            err("cannot convert \"peut-être\" to a boolean at 6"),
        ),
    ]);
}

#[test]
fn coalesce() {
    let upn = json!("John.Doe@contoso.com");
    check(&[
        (
            "Coalesce([mail], [userPrincipalName])",
            json!({"userPrincipalName": upn}),
            v(upn.clone()),
        ),
        (
            "Coalesce([mail], [userPrincipalName])",
            json!({"mail": null, "userPrincipalName": upn}),
            v(upn.clone()),
        ),
        (
            "Coalesce([mail], [userPrincipalName])",
            json!({"mail": "", "userPrincipalName": upn}),
            v(json!("")),
        ),
        (
            "Coalesce([mail], [userPrincipalName])",
            json!({"mail": "zoë@contoso.com"}),
            v(json!("zoë@contoso.com")),
        ),
        (
            r#"Coalesce([mail], [otherMails], "none@contoso.com")"#,
            json!({}),
            v(json!("none@contoso.com")),
        ),
        ("Coalesce([mail], [otherMails])", json!({}), v(json!(null))),
        (
            r#"Coalesce([businessPhones], "n/a")"#,
            json!({"businessPhones": []}),
            v(json!("n/a")),
        ),
        (
            r#"Coalesce([businessPhones], "n/a")"#,
            json!({"businessPhones": ["+1 555"]}),
            v(json!(["+1 555"])),
        ),
        (
            "Coalesce([mail], IgnoreFlowIfNullOrEmpty([x]))",
            json!({"mail": "m"}),
            v(json!("m")),
        ),
    ]);
}

#[test]
fn cstr() {
    check(&[
        (
            "CStr([accountEnabled])",
            json!({"accountEnabled": true}),
            v(json!("True")),
        ),
        (
            "CStr([accountEnabled])",
            json!({"accountEnabled": false}),
            v(json!("False")),
        ),
        (
            "CStr([employeeId])",
            json!({"employeeId": 42}),
            v(json!("42")),
        ),
        ("CStr(-12)", json!({}), v(json!("-12"))),
        (
            "CStr([givenName])",
            json!({"givenName": "Zoë"}),
            v(json!("Zoë")),
        ),
        ("CStr([givenName])", json!({}), v(json!(null))),
        (
            "CStr([businessPhones])",
            json!({"businessPhones": ["1"]}),
            err("expected one value, got a list of 1 at 5"),
        ),
    ]);
}

#[test]
fn iif() {
    let e = r#"IIF([country]="USA",[country],[department])"#;
    check(&[
        (
            e,
            json!({"country": "USA", "department": "Sales"}),
            v(json!("USA")),
        ),
        (
            e,
            json!({"country": "France", "department": "Sales"}),
            v(json!("Sales")),
        ),
        (e, json!({"department": "Sales"}), v(json!("Sales"))),
        (
            r#"IIF([country]="", "Other", [country])"#,
            json!({}),
            v(json!("Other")),
        ),
        (
            r#"IIF([accountEnabled], "active", "disabled")"#,
            json!({"accountEnabled": true}),
            v(json!("active")),
        ),
        (
            r#"IIF([accountEnabled], "active", "disabled")"#,
            json!({}),
            v(json!("disabled")),
        ),
        (
            r#"IIF([city] = "Zürich", "CH", "other")"#,
            json!({"city": "Zürich"}),
            v(json!("CH")),
        ),
        (
            r#"IIF(True, "x", IgnoreFlowIfNullOrEmpty([missing]))"#,
            json!({}),
            v(json!("x")),
        ),
        (
            r#"IIF([flag], "a", "b")"#,
            json!({"flag": "maybe"}),
            err("cannot convert \"maybe\" to a boolean at 4"),
        ),
    ]);
}

#[test]
fn comparisons() {
    let age = r#"IIF([age] >= 18, "adult", "minor")"#;
    check(&[
        (age, json!({"age": "18"}), v(json!("adult"))),
        // Numbers compare as numbers, not as text ("9" > "18" as text).
        (age, json!({"age": 9}), v(json!("minor"))),
        (r#"CBool([a] <> "x")"#, json!({"a": "y"}), v(json!(true))),
        (r#"CBool([a] < "b")"#, json!({"a": "a"}), v(json!(true))),
        (r#"CBool([a] <= "a")"#, json!({"a": "a"}), v(json!(true))),
        (r#"CBool([a] > "b")"#, json!({"a": "a"}), v(json!(false))),
        (
            "CBool([accountEnabled] = True)",
            json!({"accountEnabled": "true"}),
            v(json!(true)),
        ),
        (
            "CBool([accountEnabled] = False)",
            json!({"accountEnabled": true}),
            v(json!(false)),
        ),
        ("CBool(01 = 1)", json!({}), v(json!(true))),
        (
            r#"CBool([businessPhones] = "1")"#,
            json!({"businessPhones": ["1"]}),
            err("cannot compare: expected one value, got a list of 1 at 6"),
        ),
    ]);
}

#[test]
fn ignore_flow_if_null_or_empty() {
    let dept = "IgnoreFlowIfNullOrEmpty([department])";
    let switch = r#"IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof."))"#;
    check(&[
        (dept, json!({}), Want::Ignore),
        (dept, json!({"department": null}), Want::Ignore),
        (dept, json!({"department": ""}), Want::Ignore),
        (
            dept,
            json!({"department": "Ventes à l'étranger"}),
            v(json!("Ventes à l'étranger")),
        ),
        (dept, json!({"department": " "}), v(json!(" "))),
        (switch, json!({"prefix": "3443"}), v(json!("Dr."))),
        (switch, json!({"prefix": "9"}), Want::Ignore),
        (
            "IgnoreFlowIfNullOrEmpty([businessPhones])",
            json!({"businessPhones": []}),
            Want::Ignore,
        ),
        (
            "IgnoreFlowIfNullOrEmpty([businessPhones])",
            json!({"businessPhones": ["1"]}),
            v(json!(["1"])),
        ),
        (
            r#"Join(" ", IgnoreFlowIfNullOrEmpty([givenName]), [surname])"#,
            json!({"surname": "Doe"}),
            Want::Ignore,
        ),
    ]);
}

#[test]
fn is_null() {
    check(&[
        ("IsNull([displayName])", json!({}), v(json!(true))),
        (
            "IsNull([displayName])",
            json!({"displayName": null}),
            v(json!(true)),
        ),
        (
            "IsNull([displayName])",
            json!({"displayName": ""}),
            v(json!(false)),
        ),
        (
            "IsNull([displayName])",
            json!({"displayName": "Zoë"}),
            v(json!(false)),
        ),
        (
            "IsNull([businessPhones])",
            json!({"businessPhones": []}),
            v(json!(true)),
        ),
        ("isnull(Left([displayName], 1))", json!({}), v(json!(false))),
    ]);
}

#[test]
fn is_null_or_empty() {
    check(&[
        ("IsNullOrEmpty([displayName])", json!({}), v(json!(true))),
        (
            "IsNullOrEmpty([displayName])",
            json!({"displayName": ""}),
            v(json!(true)),
        ),
        (
            "IsNullOrEmpty([displayName])",
            json!({"displayName": " "}),
            v(json!(false)),
        ),
        (
            "IsNullOrEmpty([displayName])",
            json!({"displayName": "Zoë"}),
            v(json!(false)),
        ),
        (
            "IsNullOrEmpty([accountEnabled])",
            json!({"accountEnabled": false}),
            v(json!(false)),
        ),
    ]);
}

#[test]
fn is_present() {
    check(&[
        (
            "IsPresent([mail])",
            json!({"mail": "zoë@contoso.com"}),
            v(json!(true)),
        ),
        ("IsPresent([mail])", json!({"mail": ""}), v(json!(false))),
        ("IsPresent([mail])", json!({}), v(json!(false))),
        (
            "IsPresent([businessPhones])",
            json!({"businessPhones": ["+1 555"]}),
            v(json!(true)),
        ),
        (
            "IsPresent([employeeOrgData])",
            json!({"employeeOrgData": {"division": "R&D"}}),
            v(json!(true)),
        ),
    ]);
}

#[test]
fn item() {
    let phones = json!({"businessPhones": ["+1 555 0100", "+1 555 0101"]});
    check(&[
        (
            "Item([businessPhones], 1)",
            phones.clone(),
            v(json!("+1 555 0100")),
        ),
        (
            "Item([businessPhones], 2)",
            phones.clone(),
            v(json!("+1 555 0101")),
        ),
        ("Item([businessPhones], 3)", phones.clone(), v(json!(null))),
        ("Item([businessPhones], 1)", json!({}), v(json!(null))),
        (
            "Item([mail], 1)",
            json!({"mail": "zoë@contoso.com"}),
            v(json!("zoë@contoso.com")),
        ),
        (
            "Item([mail], 2)",
            json!({"mail": "zoë@contoso.com"}),
            v(json!(null)),
        ),
        (
            r#"Item(Split([x], ","), 2)"#,
            json!({"x": "a,ö,c"}),
            v(json!("ö")),
        ),
        (
            "Item([businessPhones], [n])",
            json!({"businessPhones": ["1"], "n": "0"}),
            v(json!(null)),
        ),
        (
            "Item([businessPhones], [n])",
            json!({"businessPhones": ["1"], "n": "x"}),
            err("expected a whole number, got \"x\" at 23"),
        ),
    ]);
}

#[test]
fn not() {
    check(&[
        (
            "Not([accountEnabled])",
            json!({"accountEnabled": true}),
            v(json!(false)),
        ),
        (
            "Not([accountEnabled])",
            json!({"accountEnabled": false}),
            v(json!(true)),
        ),
        ("Not([accountEnabled])", json!({}), v(json!(true))),
        ("Not([flag])", json!({"flag": "True"}), v(json!(false))),
        ("Not([flag])", json!({"flag": "true"}), v(json!(false))),
        ("Not([flag])", json!({"flag": "oui"}), v(json!(true))),
        (
            "Not(IsPresent([mail]))",
            json!({"mail": "zoë@contoso.com"}),
            v(json!(false)),
        ),
        (
            "Not([businessPhones])",
            json!({"businessPhones": ["1", "2"]}),
            err("expected one value, got a list of 2 at 4"),
        ),
    ]);
}

#[test]
fn switch() {
    let tz = r#"Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney", "QLD", "Australia/Brisbane", "SA", "Australia/Adelaide")"#;
    let other = r#"Switch([country], [country], "", "Other")"#;
    check(&[
        (tz, json!({"state": "QLD"}), v(json!("Australia/Brisbane"))),
        (tz, json!({"state": "WA"}), v(json!("Australia/Sydney"))),
        (tz, json!({"state": "qld"}), v(json!("Australia/Sydney"))),
        (tz, json!({}), v(json!("Australia/Sydney"))),
        (other, json!({}), v(json!("Other"))),
        (other, json!({"country": ""}), v(json!("Other"))),
        (other, json!({"country": "France"}), v(json!("France"))),
        (
            r#"Switch([Active], , "1", "True", "0", "False")"#,
            json!({"Active": "2"}),
            v(json!(null)),
        ),
        (
            r#"Switch([accountEnabled], "?", "True", "1", "False", "0")"#,
            json!({"accountEnabled": true}),
            v(json!("1")),
        ),
        (
            r#"Switch("a", IgnoreFlowIfNullOrEmpty([x]), "a", "hit")"#,
            json!({}),
            v(json!("hit")),
        ),
        (
            r#"Switch([city], "", "Zürich", "ZH", "Genève", "GE")"#,
            json!({"city": "Genève"}),
            v(json!("GE")),
        ),
    ]);
}
