//! Deterministic paging quirks of Graph (graph.md §1.5, §1.6): replayed users, short pages and
//! empty pages that still carry a nextLink. Pure: given a round's position, says how big the
//! next page may be, which emissions are duplicated and where, and which pages are empty.
//!
//! Positions count the round's *fresh* emissions (first occurrences) from 0; page numbers count
//! every page of the round, inserted empty ones included, from 0. Both travel in the skiptoken
//! ([`Paging`]), so a round's quirks do not depend on timing or on other rounds.

use serde::{Deserialize, Serialize};

use super::GraphSimConfig;

/// Where a duplicated emission appears again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Again at the end of the same page.
    SamePage,
    /// Again at the start of the next page.
    LaterPage,
}

/// How far a round has got, beyond the store cursor; carried in skiptokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Paging {
    /// Fresh emissions so far.
    #[serde(rename = "n")]
    pub emitted: u64,
    /// Pages served so far.
    #[serde(rename = "p")]
    pub page: u64,
    /// User indexes to emit again at the start of the next page, in order.
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<usize>,
    /// The store cursor is exhausted; only pending replays (and empty pages) remain.
    #[serde(rename = "x", default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

/// The paging knobs of a [`GraphSimConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quirks {
    page_size: usize,
    duplicate_every: Option<usize>,
    empty_page_every: Option<usize>,
    short_pages: bool,
}

impl Quirks {
    pub(crate) fn new(config: &GraphSimConfig) -> Quirks {
        let positive = |n: Option<usize>| n.filter(|&n| n > 0);
        Quirks {
            page_size: config.page_size.max(1),
            duplicate_every: positive(config.duplicate_every),
            empty_page_every: positive(config.empty_page_every),
            short_pages: config.short_pages,
        }
    }

    /// Whether any quirk is on (else tokens carry no [`Paging`] and pages are plain).
    pub(crate) fn active(self) -> bool {
        self.duplicate_every.is_some() || self.empty_page_every.is_some() || self.short_pages
    }

    /// Whether page `page` of a round is an inserted empty page: one after every N pages.
    pub(crate) fn empty_page(self, page: u64) -> bool {
        self.empty_page_every
            .is_some_and(|n| (page + 1).is_multiple_of(n as u64 + 1))
    }

    /// Most entries page `page` may hold: the page size, or with short pages, on every odd page
    /// a size in `1..page_size` drawn from the page number.
    pub(crate) fn budget(self, page: u64) -> usize {
        if !self.short_pages || self.page_size < 2 || page.is_multiple_of(2) {
            return self.page_size;
        }
        1 + (mix(page) % (self.page_size as u64 - 1)) as usize
    }

    /// Whether fresh emission `position` is emitted again, and where: every Nth one,
    /// alternately on the same page and on the next.
    pub(crate) fn replay(self, position: u64) -> Option<Replay> {
        let n = self.duplicate_every? as u64;
        if !(position + 1).is_multiple_of(n) {
            return None;
        }
        Some(if ((position + 1) / n) % 2 == 1 {
            Replay::SamePage
        } else {
            Replay::LaterPage
        })
    }

    /// How many fresh users to take from `emitted` on so that they and their same-page
    /// replays fit in `room`; at least one when there is room, so a round always advances (a
    /// same-page replay that does not fit moves to the next page).
    pub(crate) fn fresh_limit(self, emitted: u64, room: usize) -> usize {
        let (mut fresh, mut used) = (0, 0);
        while used < room {
            let cost =
                1 + usize::from(self.replay(emitted + fresh as u64) == Some(Replay::SamePage));
            if used + cost > room {
                break;
            }
            used += cost;
            fresh += 1;
        }
        if room > 0 { fresh.max(1) } else { 0 }
    }
}

/// splitmix64: a fixed scramble, so short pages vary in size without any randomness.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quirks(dup: Option<usize>, empty: Option<usize>, short: bool, size: usize) -> Quirks {
        Quirks::new(&GraphSimConfig {
            page_size: size,
            duplicate_every: dup,
            empty_page_every: empty,
            short_pages: short,
            ..GraphSimConfig::default()
        })
    }

    #[test]
    fn replays_alternate_between_same_and_later_pages() {
        let q = quirks(Some(3), None, false, 10);
        let got: Vec<Option<Replay>> = (0..12).map(|p| q.replay(p)).collect();
        use Replay::*;
        let expected = [
            None,
            None,
            Some(SamePage),
            None,
            None,
            Some(LaterPage),
            None,
            None,
            Some(SamePage),
            None,
            None,
            Some(LaterPage),
        ];
        assert_eq!(got, expected);
        assert_eq!(quirks(None, None, false, 10).replay(2), None);
        assert_eq!(quirks(Some(0), None, false, 10).replay(0), None);
        assert_eq!(quirks(Some(1), None, false, 10).replay(0), Some(SamePage));
    }

    #[test]
    fn empty_pages_follow_every_n_pages() {
        // (every, pages that are empty among 0..10)
        let cases: [(Option<usize>, &[u64]); 4] = [
            (None, &[]),
            (Some(0), &[]),
            (Some(1), &[1, 3, 5, 7, 9]),
            (Some(3), &[3, 7]),
        ];
        for (every, expected) in cases {
            let q = quirks(None, every, false, 10);
            let empty: Vec<u64> = (0..10).filter(|&p| q.empty_page(p)).collect();
            assert_eq!(empty, expected, "{every:?}");
        }
    }

    #[test]
    fn short_pages_are_shorter_on_odd_pages_only() {
        let q = quirks(None, None, true, 50);
        for page in 0..200 {
            let budget = q.budget(page);
            if page % 2 == 0 {
                assert_eq!(budget, 50);
            } else {
                assert!((1..50).contains(&budget), "page {page}: {budget}");
            }
        }
        assert!(
            (0..200)
                .map(|p| q.budget(p))
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 10
        );
        assert_eq!(quirks(None, None, true, 1).budget(1), 1);
        assert_eq!(quirks(None, None, false, 50).budget(1), 50);
    }

    #[test]
    fn fresh_limits_leave_room_for_same_page_replays() {
        // (every, emitted so far, room, fresh)
        let cases = [
            (None, 0, 10, 10),
            (None, 0, 0, 0),
            (Some(3), 0, 10, 8), // 2 and 8 replay on the same page, 5 later: 8 + 2 = 10
            (Some(3), 0, 3, 2),  // positions 0, 1 fill it; 2 would need two slots
            (Some(1), 0, 10, 6), // 0 same (2), 1 later (1), 2 same (2), 3 later (1), ...
            (Some(1), 0, 1, 1),  // no room for the replay: it moves on, the round advances
        ];
        for (every, emitted, room, fresh) in cases {
            let q = quirks(every, None, false, 10);
            assert_eq!(
                q.fresh_limit(emitted, room),
                fresh,
                "{every:?} {emitted} {room}"
            );
        }
    }

    #[test]
    fn activity() {
        assert!(!quirks(None, None, false, 10).active());
        assert!(!quirks(Some(0), Some(0), false, 10).active());
        assert!(quirks(Some(2), None, false, 10).active());
        assert!(quirks(None, Some(2), false, 10).active());
        assert!(quirks(None, None, true, 10).active());
    }
}
