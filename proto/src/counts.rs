//! Outcome counters of a batch or a run: every object seen ends as exactly one of these.

use serde::{Deserialize, Serialize};

/// How many objects were synced (a write reached Webex), skipped (nothing to do) or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub synced: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.synced + self.skipped + self.failed
    }

    pub fn add(&mut self, other: Counts) {
        self.synced += other.synced;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_total() {
        let mut a = Counts {
            synced: 1,
            skipped: 2,
            failed: 3,
        };
        a.add(Counts {
            synced: 10,
            skipped: 0,
            failed: 1,
        });
        assert_eq!(
            a,
            Counts {
                synced: 11,
                skipped: 2,
                failed: 4
            }
        );
        assert_eq!(a.total(), 17);
    }
}
