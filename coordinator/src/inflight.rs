//! Which users are in batches that are published but not yet recorded.
//!
//! Graph may return the same user on several pages of one round. Two workers processing
//! those pages at once could both create the user (twice, if its userName changed in
//! between) or record the older state last. So a page that shares a user with a batch in
//! flight waits until that batch is recorded; pages are then applied in page order.

use std::collections::{BTreeMap, HashMap};

use dirsync_proto::SourceUser;

/// The in-flight batches of one run and the users they hold.
#[derive(Debug, Default)]
pub struct InFlight {
    batches: BTreeMap<u32, Vec<String>>,
    users: HashMap<String, u32>,
}

impl InFlight {
    /// A batch was published.
    pub fn track(&mut self, seq: u32, users: &[SourceUser]) {
        let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
        for id in &ids {
            *self.users.entry(id.clone()).or_default() += 1;
        }
        self.batches.insert(seq, ids);
    }

    /// A batch is recorded (unknown or repeated sequence numbers are ignored).
    pub fn recorded(&mut self, seq: u32) {
        for id in self.batches.remove(&seq).unwrap_or_default() {
            if let Some(n) = self.users.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    self.users.remove(&id);
                }
            }
        }
    }

    /// Whether any of `users` is in a batch still in flight.
    pub fn overlaps(&self, users: &[SourceUser]) -> bool {
        !self.users.is_empty() && users.iter().any(|u| self.users.contains_key(&u.id))
    }

    /// Sequence numbers still in flight, in order.
    pub fn pending(&self) -> Vec<u32> {
        self.batches.keys().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(ids: &[&str]) -> Vec<SourceUser> {
        ids.iter()
            .map(|id| SourceUser {
                id: id.to_string(),
                removed: None,
                attributes: Default::default(),
            })
            .collect()
    }

    #[test]
    fn a_page_waits_only_for_batches_that_share_a_user() {
        let mut f = InFlight::default();
        f.track(0, &page(&["a", "b"]));
        f.track(1, &page(&["b", "c"]));
        let cases: &[(&[&str], bool)] = &[
            (&["x", "y"], false),
            (&["a"], true),
            (&["c", "z"], true),
            (&[], false),
        ];
        for (ids, overlap) in cases {
            assert_eq!(f.overlaps(&page(ids)), *overlap, "{ids:?}");
        }
        f.recorded(0);
        assert!(!f.overlaps(&page(&["a"])), "a left with batch 0");
        assert!(f.overlaps(&page(&["b"])), "b is still in batch 1");
        f.recorded(1);
        f.recorded(1);
        f.recorded(7);
        assert!(!f.overlaps(&page(&["b", "c"])));
        assert!(f.is_empty() && f.pending().is_empty());
    }

    #[test]
    fn the_same_user_twice_in_one_batch_is_released_with_it() {
        let mut f = InFlight::default();
        f.track(3, &page(&["a", "a"]));
        assert_eq!(f.pending(), vec![3]);
        f.recorded(3);
        assert!(!f.overlaps(&page(&["a"])));
    }
}
