//! Graph's identity-and-access throttling (graph.md §2): a token bucket of resource units per
//! app+tenant pair, refilled continuously over 10 s, sized by tenant (S < 50 users: 3,500 RU,
//! M 50–500: 5,000, L > 500: 8,000) unless the configuration overrides it.
//!
//! Costs in this simulator: every `users/delta` request that reaches the bucket costs
//! [`DELTA_PAGE_COST`] (1 RU: delta is not in Microsoft's cost table and unlisted identity
//! paths cost 1). A refused (429) request is charged nothing, so waiting exactly `Retry-After`
//! is always enough: the wait is computed from the bucket, not guessed.

use std::time::{Duration, Instant};

/// RU charged for one `users/delta` request.
pub(crate) const DELTA_PAGE_COST: f64 = 1.0;

/// The documented bucket window.
const WINDOW: Duration = Duration::from_secs(10);

/// RU per 10 s for an app+tenant pair, by the tenant's user count.
pub(crate) fn tier_budget(users: usize) -> u32 {
    match users {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

/// One app+tenant pair's bucket.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// RU available now (fractional: refill is continuous).
    available: f64,
    at: Instant,
}

/// The bucket's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Charge {
    /// Charged; `used` is the share of the budget in use afterwards (0.0–1.0).
    Allowed { used: f64 },
    /// Refused; retry after this long.
    Throttled { retry_after: Duration },
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(now: Instant, budget: u32) -> Bucket {
        Bucket {
            available: f64::from(budget),
            at: now,
        }
    }

    /// Refills for the time since the last call, then charges `cost` if available.
    pub(crate) fn charge(&mut self, now: Instant, budget: u32, cost: f64) -> Charge {
        let capacity = f64::from(budget.max(1));
        let rate = capacity / WINDOW.as_secs_f64();
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.available = (self.available + elapsed * rate).min(capacity);
        self.at = self.at.max(now);
        if self.available + 1e-9 >= cost {
            self.available = (self.available - cost).max(0.0);
            return Charge::Allowed {
                used: 1.0 - self.available / capacity,
            };
        }
        let missing = cost - self.available;
        Charge::Throttled {
            retry_after: Duration::from_secs_f64(missing / rate),
        }
    }
}

/// `Retry-After` as decimal seconds, rounded up to the millisecond, without trailing zeros
/// (`0.35`, `2.128`, `7`); never `0`, which would invite an immediate retry.
pub(crate) fn retry_after_value(wait: Duration) -> String {
    let millis = wait.as_nanos().div_ceil(1_000_000).max(1);
    let text = format!("{}.{:03}", millis / 1000, millis % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_documented_sizes() {
        let cases = [
            (0, 3_500),
            (49, 3_500),
            (50, 5_000),
            (500, 5_000),
            (501, 8_000),
            (300_000, 8_000),
        ];
        for (users, budget) in cases {
            assert_eq!(tier_budget(users), budget, "{users}");
        }
    }

    #[test]
    fn retry_after_is_decimal_seconds() {
        let cases = [
            (Duration::from_millis(350), "0.35"),
            (Duration::from_micros(2_127_100), "2.128"),
            (Duration::from_secs(7), "7"),
            (Duration::from_millis(1_500), "1.5"),
            (Duration::ZERO, "0.001"),
        ];
        for (wait, expected) in cases {
            assert_eq!(retry_after_value(wait), expected, "{wait:?}");
        }
    }

    #[test]
    fn bucket_refuses_when_empty_and_says_how_long_to_wait() {
        let start = Instant::now();
        let mut bucket = Bucket::new(start, 4);
        for i in 0..4 {
            assert!(
                matches!(
                    bucket.charge(start, 4, DELTA_PAGE_COST),
                    Charge::Allowed { .. }
                ),
                "request {i}"
            );
        }
        // 4 RU per 10 s refills one RU every 2.5 s.
        let Charge::Throttled { retry_after } = bucket.charge(start, 4, DELTA_PAGE_COST) else {
            panic!("a fifth request within the window must be throttled");
        };
        assert!(
            (retry_after.as_secs_f64() - 2.5).abs() < 1e-6,
            "{retry_after:?}"
        );
        let later = start + Duration::from_millis(1_000);
        let Charge::Throttled { retry_after } = bucket.charge(later, 4, DELTA_PAGE_COST) else {
            panic!("still empty");
        };
        assert!(
            (retry_after.as_secs_f64() - 1.5).abs() < 1e-6,
            "{retry_after:?}"
        );
        // Waiting what it said is enough, and the refill never exceeds the budget.
        let used = |charge: Charge| match charge {
            Charge::Allowed { used } => used,
            Charge::Throttled { .. } => panic!("throttled: {charge:?}"),
        };
        let full = used(bucket.charge(later + retry_after, 4, DELTA_PAGE_COST));
        assert!((full - 1.0).abs() < 1e-6, "{full}");
        let much_later = later + Duration::from_secs(3_600);
        let quarter = used(bucket.charge(much_later, 4, DELTA_PAGE_COST));
        assert!((quarter - 0.25).abs() < 1e-6, "{quarter}");
    }
}
