//! Hostile and random input: parsing and evaluation never panic, values stay bounded, and
//! the canonical text of any parsed expression means the same as the original.

use serde_json::{Map, Value as Json, json};

use super::super::functions::Func;
use super::super::{Expr, ExprError, MAX_VALUE_BYTES, Outcome, Value};
use super::object;
use crate::SourceUser;

fn fixed_source() -> Map<String, Json> {
    object(json!({
        "givenName": "Zoë",
        "surname": "Saldaña-O'Neil",
        "mail": "zoe@contoso.com",
        "empty": "",
        "explicitNull": null,
        "accountEnabled": true,
        "age": 42,
        "businessPhones": ["+1 555 0100", "+1 555 0101"],
        "employeeOrgData": {"division": "R&D"},
        "number": "3",
    }))
}

/// Pieces random expressions are made of: tokens the lexer knows, near misses, odd
/// characters.
const PIECES: &[&str] = &[
    "(",
    ")",
    ",",
    " ",
    "\"",
    "\\",
    "\\\"",
    "[",
    "]",
    "=",
    "<>",
    "<",
    ">=",
    "-",
    "1",
    "0",
    "-7",
    "99999999999999999999",
    "True",
    "false",
    "[givenName]",
    "[businessPhones]",
    "[missing]",
    "[age]",
    "[number]",
    "\"a,b\"",
    "\"\"",
    "é",
    "😀",
    "\u{301}",
    "\u{0}",
    "Lefft(",
    "Left(",
    "Mid(",
    "Replace(",
    "Switch(",
    "Join(",
    "Split(",
    "IIF(",
    "Item(",
    "Word(",
    "IgnoreFlowIfNullOrEmpty(",
];

fn random_text(rng: &mut fastrand::Rng) -> String {
    let mut text = String::new();
    for _ in 0..rng.usize(0..40) {
        if rng.u8(..) < 20 {
            text.push(rng.char(..));
        } else {
            text.push_str(PIECES[rng.usize(..PIECES.len())]);
        }
    }
    text
}

/// A random expression with a few characters deleted, inserted or replaced: near misses,
/// which reach deeper into the parser than noise does.
fn mutated(rng: &mut fastrand::Rng) -> String {
    let mut chars: Vec<char> = random_expression(rng, 3).chars().collect();
    for _ in 0..rng.usize(0..3) {
        let at = rng.usize(0..=chars.len());
        let piece = PIECES[rng.usize(..PIECES.len())];
        match rng.u8(0..3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = piece.chars().next().unwrap_or(' '),
            _ => chars.splice(at..at, piece.chars()).for_each(drop),
        }
    }
    chars.into_iter().collect()
}

/// A random call tree from the function table, of random arity and argument kinds: often
/// invalid, often valid, never the same twice.
fn random_expression(rng: &mut fastrand::Rng, depth: usize) -> String {
    if depth == 0 || rng.u8(..) < 70 {
        let leaves = [
            "[givenName]",
            "[surname]",
            "[mail]",
            "[empty]",
            "[explicitNull]",
            "[missing]",
            "[accountEnabled]",
            "[age]",
            "[businessPhones]",
            "[employeeOrgData]",
            "[number]",
            "\"a,b c\"",
            "\"\"",
            "\"Zoë\"",
            "\"True\"",
            "1",
            "2",
            "0",
            "-1",
            "9223372036854775807",
            "True",
            "False",
            // Valid as Replace's regexPattern, regexGroupName and replacementValue.
            "\"(?<g>\\\\w+)\"",
            "\"g\"",
            "\"${g}$1$&\"",
        ];
        return leaves[rng.usize(..leaves.len())].to_owned();
    }
    if rng.u8(..) < 30 {
        let ops = ["=", "<>", "<", "<=", ">", ">="];
        let op = ops[rng.usize(..ops.len())];
        return format!(
            "{} {op} {}",
            random_expression(rng, 0),
            random_expression(rng, 0)
        );
    }
    let func = Func::ALL[rng.usize(..Func::ALL.len())];
    let arity = func.spec().params.len() + func.spec().repeat.len() * rng.usize(0..3);
    let arity = arity.saturating_sub(rng.usize(0..2)) + rng.usize(0..2);
    let args: Vec<String> = (0..arity)
        .map(|_| {
            if rng.u8(..) < 25 {
                String::new()
            } else {
                random_expression(rng, depth - 1)
            }
        })
        .collect();
    format!("{}({})", func.spec().name, args.join(", "))
}

/// Parses and, when valid, evaluates; checks the canonical text round trip.
fn exercise(text: &str, source: &Map<String, Json>) -> bool {
    let Ok(expr) = Expr::parse(text) else {
        return false;
    };
    let outcome = expr.evaluate(source);
    let canonical = expr.to_string();
    let reparsed =
        Expr::parse(&canonical).unwrap_or_else(|e| panic!("{text:?} → {canonical:?}: {e}"));
    assert_eq!(
        reparsed.to_string(),
        canonical,
        "canonical text of {text:?} is not stable"
    );
    // Same meaning: same outcome, and errors at the same place in the canonical text.
    let again = reparsed.evaluate(source);
    match (&outcome, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{text:?} and {canonical:?} differ"),
        (Err(a), Err(b)) => assert_eq!(
            a.message(),
            b.message(),
            "{text:?} and {canonical:?} differ"
        ),
        _ => panic!("{text:?} gave {outcome:?}, its canonical text {canonical:?} gave {again:?}"),
    }
    if let Ok(Outcome::Value(value)) = outcome {
        assert!(value.size() <= MAX_VALUE_BYTES.max(source_size(source)));
    }
    true
}

fn source_size(source: &Map<String, Json>) -> usize {
    serde_json::to_string(source).map_or(0, |s| s.len())
}

#[test]
fn random_text_never_panics() {
    let source = fixed_source();
    let mut rng = fastrand::Rng::with_seed(0x5eed_0001);
    let mut parsed = 0;
    for i in 0..20_000 {
        let text = if i % 2 == 0 {
            random_text(&mut rng)
        } else {
            mutated(&mut rng)
        };
        parsed += usize::from(exercise(&text, &source));
    }
    // The generator must reach the evaluator, or this test checks little.
    assert!(parsed > 2_000, "only {parsed} random texts parsed");
}

#[test]
fn random_calls_never_panic_and_round_trip() {
    let source = fixed_source();
    let mut rng = fastrand::Rng::with_seed(0x5eed_0002);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let depth = rng.usize(1..6);
        parsed += usize::from(exercise(&random_expression(&mut rng, depth), &source));
    }
    assert!(parsed > 2_000, "only {parsed} random calls parsed");
}

#[test]
fn growth_is_refused_before_it_allocates() {
    let source = fixed_source();
    // Each Replace multiplies the length by 64; five of them would build 1 GiB.
    let mut text =
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"".to_owned();
    let sixty_four = "a".repeat(64);
    for _ in 0..5 {
        text = format!("Replace({text}, \"a\", , , \"{sixty_four}\", , )");
    }
    let error = Expr::parse(&text).unwrap().evaluate(&source).unwrap_err();
    assert!(matches!(error, ExprError::Evaluate { .. }), "{error:?}");
    assert_eq!(
        error.message(),
        format!("result longer than {MAX_VALUE_BYTES} bytes")
    );

    // Attributes may be large; what is built from them is bounded all the same.
    let big = object(json!({"big": "b".repeat(1000)}));
    let join = format!("Join(\"\", {})", vec!["[big]"; 70].join(", "));
    let error = Expr::parse(&join).unwrap().evaluate(&big).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("result longer than {MAX_VALUE_BYTES} bytes at 0")
    );
    let append = format!(
        "Append(Join(\"\", {}), [big])",
        vec!["[big]"; 65].join(", ")
    );
    let error = Expr::parse(&append).unwrap().evaluate(&big).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("result longer than {MAX_VALUE_BYTES} bytes at 0")
    );
    // Handing an attribute back builds nothing; transforming it does.
    let huge = object(json!({"huge": "h".repeat(MAX_VALUE_BYTES + 1)}));
    let passed = Expr::parse("Coalesce([missing], [huge])")
        .unwrap()
        .evaluate(&huge)
        .unwrap();
    assert!(matches!(passed, Outcome::Value(Value::Str(s)) if s.len() == MAX_VALUE_BYTES + 1));
    let error = Expr::parse("ToUpper([huge])")
        .unwrap()
        .evaluate(&huge)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("result longer than {MAX_VALUE_BYTES} bytes at 0")
    );
    let fits = format!("Join(\"\", {})", vec!["[big]"; 65].join(", "));
    assert!(Expr::parse(&fits).unwrap().evaluate(&big).is_ok());
}

/// Patterns that make backtracking engines take exponential time run in linear time here,
/// on text as large as a value may be.
#[test]
fn hostile_patterns_run_in_linear_time() {
    let started = std::time::Instant::now();
    let text = format!("{}!", "a".repeat(MAX_VALUE_BYTES - 1));
    let source = object(json!({ "x": text }));
    let cases = [
        (r#"Replace([x], , "^(a+)+$", , "matched")"#, text.clone()),
        (r#"Replace([x], , "(a*)*b", , "matched")"#, text.clone()),
        (
            r#"Replace([x], , "(?<g>(a|aa)+)!", "g", "")"#,
            "!".to_owned(),
        ),
    ];
    for (expr, want) in cases {
        let got = Expr::parse(expr).unwrap().evaluate(&source).unwrap();
        assert_eq!(got, Outcome::Value(Value::Str(want)), "{expr}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn evaluates_a_graph_user_with_its_id() {
    let user: SourceUser = serde_json::from_value(json!({
        "id": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "attributes": {"givenName": "Zoë", "businessPhones": ["+1 555 0100"]},
    }))
    .unwrap();
    let expr = Expr::parse(
        "Join(\"|\", [id], NormalizeDiacritics([givenName]), [businessPhones], [surname])",
    )
    .unwrap();
    assert_eq!(
        expr.evaluate(&user).unwrap(),
        Outcome::Value(Value::Str(
            "00aa00aa-bb11-cc22-dd33-44ee44ee44ee|Zoe|+1 555 0100".into()
        ))
    );
    assert_eq!(
        expr.references().collect::<Vec<_>>(),
        ["id", "givenName", "businessPhones", "surname"]
    );
}

#[test]
fn json_values_map_to_values() {
    let cases = [
        (json!(null), Value::Null),
        (json!("x"), Value::Str("x".into())),
        (json!(false), Value::Bool(false)),
        (json!(1.5), Value::Str("1.5".into())),
        (json!([]), Value::Null),
        (json!([null]), Value::Null),
        (
            json!(["a", 2, true, null, ["b"]]),
            Value::List(vec![
                "a".into(),
                "2".into(),
                "True".into(),
                "[\"b\"]".into(),
            ]),
        ),
        (json!({"k": "v"}), Value::Str("{\"k\":\"v\"}".into())),
    ];
    for (json, want) in cases {
        assert_eq!(Value::from_json(&json), want, "{json}");
    }
    assert_eq!(Value::List(vec!["a".into()]).to_json(), json!(["a"]));
}
