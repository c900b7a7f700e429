//! Tests of the expression language: one table per function, parser errors, robustness on
//! random and hostile input, and the examples of `docs/expressions.md`.

mod docs;
mod functions;
mod logic;
mod parser;
mod robustness;

use serde_json::{Map, Value as Json};

use super::{Expr, Outcome};

/// What a case expects.
pub(super) enum Want {
    /// `Outcome::Value` whose JSON form is this.
    Value(Json),
    Ignore,
    /// The error's full text, position included.
    Error(&'static str),
}

pub(super) fn v(json: Json) -> Want {
    Want::Value(json)
}

pub(super) fn err(text: &'static str) -> Want {
    Want::Error(text)
}

pub(super) fn object(attributes: Json) -> Map<String, Json> {
    match attributes {
        Json::Object(map) => map,
        Json::Null => Map::new(),
        other => panic!("attributes must be an object, got {other}"),
    }
}

/// Parses and evaluates `text` on `attributes`; what it gives, as text for messages.
pub(super) fn outcome(text: &str, attributes: &Json) -> Result<Outcome, String> {
    let expr = Expr::parse(text).map_err(|e| e.to_string())?;
    expr.evaluate(&object(attributes.clone()))
        .map_err(|e| e.to_string())
}

/// Runs a table of `(expression, attributes, expected)` cases, reporting every failure.
pub(super) fn check(cases: &[(&str, Json, Want)]) {
    let mut failures = Vec::new();
    for (text, attributes, want) in cases {
        let got = outcome(text, attributes);
        let ok = match (want, &got) {
            (Want::Value(json), Ok(Outcome::Value(value))) => value.to_json() == *json,
            (Want::Ignore, Ok(Outcome::Ignore)) => true,
            (Want::Error(message), Err(error)) => error == message,
            _ => false,
        };
        if !ok {
            let want = match want {
                Want::Value(json) => format!("value {json}"),
                Want::Ignore => "ignore".to_owned(),
                Want::Error(message) => format!("error {message:?}"),
            };
            failures.push(format!(
                "{text}  on {attributes}\n    want {want}\n    got  {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
