//! Fuzz target `scim_filter`: any text is parsed as a SCIM filter and as a PATCH path by the
//! SCIM simulator's parser (`load-tests/src/scim_sim/filter.rs`). Parsing must never panic,
//! and what parses must respect the grammar's limits: one to three path segments, and no
//! value filter inside a value filter.

#![no_main]

use dirsync_load_tests::scim_sim::{AttrPath, Filter, parse_filter, parse_path};
use libfuzzer_sys::fuzz_target;

fn check_path(path: &AttrPath, inside_value_filter: bool) {
    assert!(
        (1..=3).contains(&path.segments.len()),
        "{} segments",
        path.segments.len()
    );
    if let Some(inner) = &path.filter {
        assert!(!inside_value_filter, "a value filter inside a value filter");
        check_filter(inner, true);
    }
}

fn check_filter(filter: &Filter, inside_value_filter: bool) {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_filter(a, inside_value_filter);
            check_filter(b, inside_value_filter);
        }
        Filter::Present(path) | Filter::Compare(path, _, _) => {
            check_path(path, inside_value_filter)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = parse_filter(text) {
        check_filter(&filter, false);
    }
    if let Ok(path) = parse_path(text) {
        check_path(&path, false);
    }
});
