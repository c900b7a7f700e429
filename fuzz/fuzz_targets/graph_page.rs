//! Fuzz target `graph_page`: any bytes are parsed as a Graph `users/delta` page body and as a
//! `groups/delta` page body, the way the coordinator's client parses what Graph answers.
//! Parsing must never panic; a page that parses must hold only what the walk relies on: a
//! non-empty id per object and no `@` annotations among a user's attributes.

#![no_main]

use dirsync_coordinator::graph::groups::parse_groups_page;
use dirsync_coordinator::graph::wire::parse_page;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = parse_page(data) {
        for user in &page.users {
            assert!(!user.id.is_empty(), "a user without an id");
            assert!(
                !user.attributes.keys().any(|k| k.starts_with('@')),
                "an annotation kept as an attribute: {:?}",
                user.attributes.keys().collect::<Vec<_>>()
            );
        }
    }
    if let Ok(page) = parse_groups_page(data) {
        for group in &page.groups {
            assert!(!group.id.is_empty(), "a group without an id");
        }
    }
});
