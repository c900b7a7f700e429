//! Fuzz target `expr`: any text is parsed as a mapping expression; a valid one is evaluated
//! on a fixed user, and its canonical text must parse again to the same canonical text and
//! give the same outcome. Parsing and evaluation must never panic, whatever the input.

#![no_main]

use dirsync_proto::expr::Expr;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fn user() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "id": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "givenName": "Zoë",
        "surname": "Saldaña-O'Neil",
        "displayName": "Zoë Saldaña-O'Neil",
        "userPrincipalName": "zoe.saldana@contoso.com",
        "mail": "zoe@contoso.com",
        "department": "",
        "jobTitle": null,
        "accountEnabled": true,
        "employeeId": 42,
        "businessPhones": ["+1 555 0100", "+1 555 0101"],
        "employeeOrgData": {"division": "R&D", "costCenter": "1234"},
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = Expr::parse(text) else { return };
    let source = user();
    let outcome = expr.evaluate(&source);
    let canonical = expr.to_string();
    let reparsed = Expr::parse(&canonical).expect("canonical text parses");
    assert_eq!(reparsed.to_string(), canonical, "canonical text is stable");
    match (outcome, reparsed.evaluate(&source)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "canonical text means the same"),
        (Err(a), Err(b)) => assert_eq!(
            a.message(),
            b.message(),
            "canonical text fails the same way"
        ),
        (a, b) => panic!("{a:?} but canonical text gave {b:?}"),
    }
});
