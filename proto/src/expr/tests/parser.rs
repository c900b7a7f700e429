//! Parse errors and their positions, names in any case, references, canonical text.

use super::super::{Expr, ExprError, MAX_DEPTH, MAX_EXPRESSION_CHARS};

fn parse_error(text: &str) -> String {
    match Expr::parse(text) {
        Ok(expr) => panic!("{text:?} parsed as {expr}"),
        Err(error) => {
            assert!(matches!(error, ExprError::Parse { .. }), "{error:?}");
            error.to_string()
        }
    }
}

#[test]
fn errors_name_the_problem_and_its_character_position() {
    let cases: &[(&str, &str)] = &[
        ("Lefft([givenName], 1)", "unknown function \"Lefft\" at 0"),
        ("Left([givenName], 3", "expected \",\" or \")\" at 19"),
        ("Left([givenName] 3)", "expected \",\" or \")\" at 17"),
        ("", "expected an expression at 0"),
        ("   ", "expected an expression at 3"),
        ("Left([givenName])", "Left takes 2 arguments, got 1 at 0"),
        ("Join(\" \")", "Join takes at least 2 arguments, got 1 at 0"),
        (
            "PCase(\"a\", \"b\", \"c\")",
            "PCase takes 1 to 2 arguments, got 3 at 0",
        ),
        (
            "Switch([a], \"d\", \"k\")",
            "Switch takes source, defaultValue, then key/value pairs (4, 6, ... arguments), got 3 at 0",
        ),
        (
            "Left(\"abc\", \"2\")",
            "numChars of Left must be a whole number at 12",
        ),
        (
            "Left(\"abc\", IsNull([a]))",
            "numChars of Left must be a whole number at 12",
        ),
        (
            "ToLower(Split([a], \",\"))",
            "source of ToLower must be one value, not a list at 8",
        ),
        ("Append(, \"x\")", "missing source of Append at 7"),
        ("Mid([a], 0, 1)", "start of Mid must be 1 or more at 9"),
        (
            "Mid([a], 1, -1)",
            "length of Mid must not be negative at 12",
        ),
        ("Item([a], 0)", "index of Item must be 1 or more at 10"),
        (
            "Split([a], \"\")",
            "delimiter of Split must not be empty at 11",
        ),
        (
            r#"Replace([mail], "a", "x", , "", , )"#,
            "Replace takes oldValue or regexPattern, not both at 21",
        ),
        (
            "Replace([mail])",
            "Replace needs oldValue (argument 2) or regexPattern (argument 3) at 0",
        ),
        (
            r#"Replace([mail], "a", , "g", "b")"#,
            "regexGroupName of Replace needs regexPattern at 23",
        ),
        (
            r#"Replace([mail], "a", , , "b", [m])"#,
            "replacementAttributeName of Replace needs regexPattern at 30",
        ),
        (
            r#"Replace([mail], , "x", , "", , "t")"#,
            "template of Replace needs oldValue at 31",
        ),
        (
            r#"Replace([mail], , [p], , "")"#,
            "regexPattern of Replace must be a string constant at 18",
        ),
        (
            r#"Replace([mail], , "(?<a>x)", Left("a", 1), "")"#,
            "regexGroupName of Replace must be a string constant at 29",
        ),
        (
            r#"Replace([mail], , "x")"#,
            "Replace with regexPattern needs replacementValue (argument 5) or \
             replacementAttributeName (argument 6) at 0",
        ),
        (
            r#"Replace([mail], , "(?<a>x)", "a", "b", [m])"#,
            "Replace takes replacementValue or replacementAttributeName, not both at 39",
        ),
        (
            r#"Replace([mail], , "x", , , [m])"#,
            "replacementAttributeName of Replace needs regexGroupName at 27",
        ),
        (
            r#"Replace([tel], , "(?<n>\\d+)", "n", , "mobile")"#,
            "replacementAttributeName of Replace must be an attribute or an expression, \
             not a string constant at 38",
        ),
        (
            "Replace([mail], \"a\")",
            "Replace needs replacementValue (argument 5) or template (argument 7) at 0",
        ),
        (
            "Replace([mail], \"a\", , , \"b\", , \"t\")",
            "Replace takes replacementValue or template, not both at 32",
        ),
        (
            "Replace([mail], \"\", , , \"b\")",
            "oldValue of Replace must not be empty at 16",
        ),
        (
            "IIF(\"maybe\", \"a\", \"b\")",
            "condition of IIF must be a condition (a comparison, True or False) at 4",
        ),
        ("\"abc", "unterminated string at 0"),
        (
            "\"a\\d\"",
            "invalid escape \"\\d\" (only \\\" and \\\\ are escapes) at 2",
        ),
        (
            "[given Name]",
            "invalid character \" \" in attribute name at 6",
        ),
        ("[givenName", "unterminated attribute name at 0"),
        ("[]", "empty attribute name at 0"),
        ("Left([a], 1) Left", "expected end of expression at 13"),
        ("[a] = [b] = [c]", "expected end of expression at 10"),
        (
            "Left([a], 1.5)",
            "invalid number (only whole numbers are allowed) at 10",
        ),
        (
            "Left([a], 99999999999999999999)",
            "number out of range at 10",
        ),
        ("foo", "unknown name \"foo\" at 0"),
        ("Left", "expected \"(\" at 4"),
        (
            "Join(\",\", [a]) & \"x\"",
            "unexpected character \"&\" at 15",
        ),
        ("[a] =", "expected an expression at 5"),
        // Positions count characters, not bytes: "ë" is two bytes.
        ("Append(\"Zoë\", Lefft)", "unknown name \"Lefft\" at 14"),
        (
            "Append(\"Zoë\", \"x\"))",
            "expected end of expression at 18",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, want)| {
            let got = parse_error(text);
            (got != *want).then(|| format!("{text}\n    want {want}\n    got  {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_exposes_message_and_position_apart() {
    let error = Expr::parse("Lefft([givenName], 1)").unwrap_err();
    assert_eq!(error.position(), 0);
    assert_eq!(error.message(), "unknown function \"Lefft\"");
    assert!(!error.is_retryable());
}

#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| format!("{}[a]{}", "ToLower(".repeat(depth), ")".repeat(depth));
    assert!(Expr::parse(&nested(MAX_DEPTH)).is_ok());
    assert_eq!(
        parse_error(&nested(MAX_DEPTH + 1)),
        format!(
            "expression nested deeper than {MAX_DEPTH} calls at {}",
            MAX_DEPTH * "ToLower(".len()
        )
    );
    // Far deeper than any stack would survive, were it recursed into.
    assert!(parse_error(&nested(100_000)).starts_with("expression longer than"));
}

#[test]
fn length_is_bounded() {
    let long = format!("\"{}\"", "a".repeat(MAX_EXPRESSION_CHARS));
    assert_eq!(
        parse_error(&long),
        format!(
            "expression longer than {MAX_EXPRESSION_CHARS} characters at {MAX_EXPRESSION_CHARS}"
        )
    );
    let fits = format!("\"{}\"", "é".repeat(MAX_EXPRESSION_CHARS - 2));
    assert!(
        Expr::parse(&fits).is_ok(),
        "the limit counts characters, not bytes"
    );
}

#[test]
fn function_names_and_booleans_are_case_insensitive() {
    for text in ["tolower(\"A\")", "TOLOWER(\"A\")", "ToLower(\"A\")"] {
        assert_eq!(Expr::parse(text).unwrap().to_string(), "ToLower(\"A\")");
    }
    assert_eq!(
        Expr::parse("iif(TRUE, \"a\", false)").unwrap().to_string(),
        "IIF(True, \"a\", False)"
    );
}

/// A pattern is compiled when the expression is parsed: one that the `regex` crate refuses,
/// or a group name it lacks, is an error at that argument, with the reason.
#[test]
fn regex_patterns_and_group_names_are_checked_when_parsed() {
    let cases: &[(&str, &str)] = &[
        (
            r#"Replace([mail], , "(", , "")"#,
            "regexPattern of Replace is not a valid regular expression: unclosed group at 18",
        ),
        (
            r#"Replace([mail], , "a{2,1}", , "")"#,
            "regexPattern of Replace is not a valid regular expression: \
             invalid repetition count range, the start must be <= the end at 18",
        ),
        (
            r#"Replace([mail], , "(?=x)", , "")"#,
            "regexPattern of Replace is not a valid regular expression: look-around, \
             including look-ahead and look-behind, is not supported at 18",
        ),
        (
            r#"Replace([mail], , "(a)\\1", , "")"#,
            "regexPattern of Replace is not a valid regular expression: backreferences \
             are not supported at 18",
        ),
        (
            r#"Replace([mail], , "\\w{1000}{1000}", , "")"#,
            "regexPattern of Replace is not a valid regular expression: pattern too large \
             (compiled over 1048576 bytes) at 18",
        ),
        (
            r#"Replace([mail], , "\\p{L}", , "")"#,
            "regexPattern of Replace is not a valid regular expression: \\p{...} classes \
             are not supported at 18",
        ),
        (
            r#"Replace([mail], , "(?<a>x)", "b", "")"#,
            "regexGroupName of Replace names no group of regexPattern: \"b\" at 29",
        ),
        (
            r#"Replace([mail], , "(?<a>x)", "", "")"#,
            "regexGroupName of Replace names no group of regexPattern: \"\" at 29",
        ),
        // .NET numbers groups too: two groups here, so 3 is none.
        (
            r#"Replace([mail], , "(a)(?<n>b)", "3", "")"#,
            "regexGroupName of Replace names no group of regexPattern: \"3\" at 32",
        ),
        (
            r#"Replace([tel], , "(?<n>\\d+)", "x", , [mobile])"#,
            "regexGroupName of Replace names no group of regexPattern: \"x\" at 31",
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = parse_error(text);
        if got != *want {
            failures.push(format!("{text}\n    want {want}\n    got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn canonical_text_reparses_to_the_same_expression() {
    let cases = [
        (
            "replace([mail],\"@contoso.com\",,,\"\",,)",
            "Replace([mail], \"@contoso.com\", , , \"\", , )",
        ),
        (
            "Append( \"say \\\"hi\\\" \\\\o/\" ,[x])",
            "Append(\"say \\\"hi\\\" \\\\o/\", [x])",
        ),
        ("IIF([age]>=-1,[a],[b])", "IIF([age] >= -1, [a], [b])"),
        (
            "Switch([Active], , \"1\", \"True\")",
            "Switch([Active], , \"1\", \"True\")",
        ),
        ("\n  Join(\"\",\t[a]  ,[b])\n", "Join(\"\", [a], [b])"),
        (
            r#"REPLACE([n],,"(?<q>\"\\d)","q","",,)"#,
            r#"Replace([n], , "(?<q>\"\\d)", "q", "", , )"#,
        ),
    ];
    for (text, canonical) in cases {
        let expr = Expr::parse(text).unwrap();
        assert_eq!(expr.to_string(), canonical);
        assert_eq!(Expr::parse(canonical).unwrap().to_string(), canonical);
    }
}

#[test]
fn references_list_each_attribute_once_in_order_of_use() {
    let expr = Expr::parse(
        "Join(\" \", [givenName], IIF([surname] = [givenName], \"\", [surname]), \"x\")",
    )
    .unwrap();
    assert_eq!(
        expr.references().collect::<Vec<_>>(),
        ["givenName", "surname"]
    );
    assert_eq!(Expr::parse("\"constant\"").unwrap().references().count(), 0);
    let extension = "[extension_0a1b2c_costCenter]";
    assert_eq!(
        Expr::parse(extension)
            .unwrap()
            .references()
            .collect::<Vec<_>>(),
        ["extension_0a1b2c_costCenter"]
    );
}

#[test]
fn from_str_parses() {
    let expr: Expr = "ToUpper([c])".parse().unwrap();
    assert_eq!(expr, Expr::parse("ToUpper([c])").unwrap());
    assert!("ToUpper(".parse::<Expr>().is_err());
}
