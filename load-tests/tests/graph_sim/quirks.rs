//! Paging quirks (graph.md §1.5, §1.6): replayed users on the same and on later pages, empty
//! pages that carry a nextLink, short pages; each deterministic and each leaving the round
//! complete.

use std::collections::{HashMap, HashSet};

use dirsync_load_tests::graph_sim::{GraphSimConfig, UserState};
use dirsync_load_tests::synthetic::{ChangeStep, PropSet};
use serde_json::Value;

use crate::harness::{Harness, assert_represents, by_id, ids, spec};

/// Ids of live users in the simulator's ground truth.
fn live_ids(h: &Harness, tenant: &str) -> HashSet<String> {
    h.sim
        .snapshot(tenant)
        .unwrap()
        .into_iter()
        .filter(|u| u.state == UserState::Live)
        .map(|u| u.user.id)
        .collect()
}

/// For each id, the pages (by number) its entries were on.
fn pages_by_id(entries: &[Value], sizes: &[usize]) -> HashMap<String, Vec<usize>> {
    let mut pages: HashMap<String, Vec<usize>> = HashMap::new();
    let mut ids = ids(entries).into_iter();
    for (page, &size) in sizes.iter().enumerate() {
        for id in ids.by_ref().take(size) {
            pages.entry(id).or_default().push(page);
        }
    }
    pages
}

#[tokio::test]
async fn every_nth_user_is_replayed_on_the_same_or_a_later_page_unchanged() {
    let tenant = spec("dups", 11, 600);
    let config = GraphSimConfig {
        page_size: 50,
        duplicate_every: Some(7),
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;

    let (entries, sizes, delta_link) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let live = live_ids(&h, "dups");
    assert_eq!(live.len(), 597, "600 users start with 3 soft-deleted");
    let replays = live.len() / 7;
    assert_eq!(entries.len(), live.len() + replays, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 50), "{sizes:?}");
    let listed: HashSet<String> = ids(&entries).into_iter().collect();
    assert_eq!(listed, live, "every live user, nobody else");

    let pages = pages_by_id(&entries, &sizes);
    let twice: Vec<&Vec<usize>> = pages.values().filter(|p| p.len() > 1).collect();
    assert_eq!(twice.len(), replays, "each replayed user twice, no more");
    assert!(twice.iter().all(|p| p.len() == 2));
    let same_page = twice.iter().filter(|p| p[0] == p[1]).count();
    let later_page = twice.iter().filter(|p| p[1] == p[0] + 1).count();
    assert_eq!(
        same_page + later_page,
        replays,
        "replays land on the same or the next page"
    );
    assert!(
        same_page > 10 && later_page > 10,
        "{same_page} {later_page}"
    );

    // A replay is the same representation as the first occurrence.
    let mut first: HashMap<&str, &Value> = HashMap::new();
    for entry in &entries {
        let id = entry["id"].as_str().unwrap();
        if let Some(earlier) = first.insert(id, entry) {
            assert_eq!(earlier, entry);
        }
    }
    let snapshot = h.sim.snapshot("dups").unwrap();
    let truth = by_id(&snapshot);
    for entry in &entries {
        assert_represents(
            entry,
            truth[entry["id"].as_str().unwrap()],
            PropSet::default_selection(),
        );
    }

    // Deterministic: the same round again pages the same way.
    let (again, again_sizes, _) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    assert_eq!((ids(&again), again_sizes), (ids(&entries), sizes));

    // Delta rounds replay too.
    let change = h
        .sim
        .apply_changes(
            "dups",
            &ChangeStep {
                updates: 70,
                ..ChangeStep::default()
            },
        )
        .unwrap();
    let (delta_entries, _, _) = h.round(&delta_link, &token, true).await;
    let unique: HashSet<String> = ids(&delta_entries).into_iter().collect();
    assert!(unique.len() <= change.updates && unique.len() > 50);
    assert_eq!(delta_entries.len(), unique.len() + unique.len() / 7);

    let counts = h.sim.requests("dups").unwrap();
    assert_eq!(
        counts.duplicates_returned,
        (2 * replays + unique.len() / 7) as u64
    );
    assert_eq!(
        counts.objects_returned,
        (2 * entries.len() + delta_entries.len()) as u64
    );
}

#[tokio::test]
async fn empty_pages_with_a_next_link_follow_every_n_pages() {
    let tenant = spec("empty", 12, 1_000);
    let config = GraphSimConfig {
        page_size: 100,
        empty_page_every: Some(2),
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;

    let (entries, sizes, delta_link) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let live = live_ids(&h, "empty");
    let listed = ids(&entries);
    assert_eq!(listed.len(), live.len(), "no user twice");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), live);
    // (harness: every page but the last carried a nextLink)
    for (page, &size) in sizes.iter().enumerate() {
        if (page + 1) % 3 == 0 {
            assert_eq!(size, 0, "page {page} of {sizes:?}");
        }
    }
    let inserted = (0..sizes.len()).filter(|p| (p + 1) % 3 == 0).count();
    assert!(inserted >= 4, "{sizes:?}");
    let data_pages = live.len().div_ceil(100);
    assert!(
        sizes.iter().filter(|&&s| s > 0).count() == data_pages,
        "{sizes:?}"
    );
    assert_eq!(
        h.sim.requests("empty").unwrap().empty_pages,
        inserted as u64
    );

    // An unchanged delta round is one empty page with the deltaLink: nothing inserted.
    let (none, none_sizes, _) = h.round(&delta_link, &token, false).await;
    assert!(none.is_empty());
    assert_eq!(none_sizes, [0]);
}

#[tokio::test]
async fn short_pages_are_shorter_yet_the_round_is_complete_and_repeatable() {
    let tenant = spec("short", 13, 1_000);
    let config = GraphSimConfig {
        page_size: 100,
        short_pages: true,
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;

    let (entries, sizes, _) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let live = live_ids(&h, "short");
    let listed = ids(&entries);
    assert_eq!(listed.len(), live.len(), "no user twice");
    assert_eq!(listed.iter().cloned().collect::<HashSet<_>>(), live);
    let body = &sizes[..sizes.len() - 1];
    assert!(sizes.iter().all(|&s| s <= 100), "{sizes:?}");
    assert!(
        body.iter().filter(|&&s| s < 100).count() >= 3,
        "several pages before the last are short: {sizes:?}"
    );
    assert!(sizes.len() > live.len().div_ceil(100), "{sizes:?}");

    let (again, again_sizes, _) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    assert_eq!((ids(&again), again_sizes), (listed, sizes));
}

#[tokio::test]
async fn all_paging_quirks_together_still_list_everyone() {
    let tenant = spec("mixed", 14, 900);
    let config = GraphSimConfig {
        page_size: 40,
        duplicate_every: Some(1),
        empty_page_every: Some(3),
        short_pages: true,
        ..GraphSimConfig::default()
    };
    let h = Harness::start(config, std::slice::from_ref(&tenant)).await;
    let token = h.token(&tenant).await;
    let (entries, sizes, _) = h.round(&h.url("/v1.0/users/delta"), &token, false).await;
    let live = live_ids(&h, "mixed");
    // Every user is replayed once.
    assert_eq!(entries.len(), 2 * live.len(), "{sizes:?}");
    assert_eq!(ids(&entries).into_iter().collect::<HashSet<_>>(), live);
    assert!(sizes.iter().all(|&s| s <= 40), "{sizes:?}");
    assert!(sizes.contains(&0));
    let counts = h.sim.requests("mixed").unwrap();
    assert_eq!(counts.duplicates_returned, live.len() as u64);
    assert_eq!(counts.delta_pages, sizes.len() as u64);
}
