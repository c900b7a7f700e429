//! The examples of `docs/expressions.md` are tests: every row of its example tables is
//! evaluated here, and every function must have at least one.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::super::functions::Func;
use super::{Want, check};

const DOC: &str = include_str!("../../../../docs/expressions.md");

fn code(cell: &str) -> &str {
    cell.trim()
        .strip_prefix('`')
        .and_then(|c| c.strip_suffix('`'))
        .unwrap_or_else(|| panic!("not code: {cell}"))
}

/// `(section, expression, attributes, expected)` of every example row.
fn examples() -> Vec<(String, &'static str, Json, Want)> {
    let mut section = String::new();
    let mut rows = Vec::new();
    for line in DOC.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            section = heading.trim().to_owned();
            continue;
        }
        let Some(row) = line
            .strip_prefix("| `")
            .map(|_| line.trim().trim_matches('|'))
        else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells.len(), 3, "example row needs 3 cells: {line}");
        let attributes = match cells[1].trim() {
            "—" => Json::Object(Default::default()),
            cell => serde_json::from_str(code(cell)).unwrap_or_else(|e| panic!("{line}: {e}")),
        };
        let want = match cells[2].trim() {
            "ignored" => Want::Ignore,
            cell => match cell.strip_prefix("error: ") {
                Some(message) => Want::Error(code(message)),
                None => Want::Value(
                    serde_json::from_str(code(cell)).unwrap_or_else(|e| panic!("{line}: {e}")),
                ),
            },
        };
        rows.push((section.clone(), code(cells[0]), attributes, want));
    }
    rows
}

#[test]
fn every_documented_example_holds() {
    let rows = examples();
    assert!(rows.len() > 40, "only {} examples found", rows.len());
    let cases: Vec<(&str, Json, Want)> = rows.into_iter().map(|(_, e, a, w)| (e, a, w)).collect();
    check(&cases);
}

#[test]
fn every_function_has_a_documented_example() {
    let mut per_section: BTreeMap<String, usize> = BTreeMap::new();
    for (section, ..) in examples() {
        *per_section.entry(section).or_default() += 1;
    }
    let missing: Vec<&str> = Func::ALL
        .iter()
        .map(|f| f.spec().name)
        .filter(|name| per_section.get(*name).is_none_or(|n| *n == 0))
        .collect();
    assert!(
        missing.is_empty(),
        "functions without examples in docs/expressions.md: {missing:?}"
    );
}
