//! The per-org token bucket of the SCIM simulator (webex-scim.md §8: "configurable token
//! buckets per org"; 429 with `Retry-After` in whole seconds when empty).
//!
//! Webex publishes no number, so the rate and the burst are the test's choice
//! ([`super::ScimSimConfig::rate_limit`], off by default). Every request that reaches a known
//! org with a valid token takes one token; a Bulk request is one request whatever it carries,
//! since the reference gives Bulk no other cost.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::store::lock;

/// An org's request budget: `per_second` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// Tokens left and when they were last counted; `None` until the first request (full).
#[derive(Debug, Default)]
pub(crate) struct TokenBucket {
    state: Mutex<Option<(f64, Instant)>>,
}

impl TokenBucket {
    /// Takes a token, or tells how long until the next one.
    pub fn take(&self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        take_at(&mut lock(&self.state), limit, now)
    }
}

fn take_at(
    state: &mut Option<(f64, Instant)>,
    limit: RateLimit,
    now: Instant,
) -> Result<(), Duration> {
    let rate = f64::from(limit.per_second.max(1));
    let burst = f64::from(limit.burst.max(1));
    let (tokens, since) = state.unwrap_or((burst, now));
    let tokens = (tokens + now.saturating_duration_since(since).as_secs_f64() * rate).min(burst);
    if tokens >= 1.0 {
        *state = Some((tokens - 1.0, now));
        Ok(())
    } else {
        *state = Some((tokens, now));
        Err(Duration::from_secs_f64((1.0 - tokens) / rate))
    }
}

/// The `Retry-After` of a wait: whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limit = RateLimit {
            per_second: 10,
            burst: 3,
        };
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut state = None;
        // (time in ms, allowed)
        let cases = [
            (0, true),
            (0, true),
            (0, true),
            (0, false),
            (50, false),
            (100, true),
            (100, false),
            (400, true),
            (400, true),
            (400, true),
            (400, false),
            // a long quiet spell saves up no more than the burst
            (10_000, true),
            (10_000, true),
            (10_000, true),
            (10_000, false),
        ];
        for (i, (at, allowed)) in cases.into_iter().enumerate() {
            assert_eq!(
                take_at(&mut state, limit, ms(at)).is_ok(),
                allowed,
                "case {i}"
            );
        }
        let wait = take_at(&mut state, limit, ms(10_000)).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        let cases = [(0, 1), (5, 1), (1000, 1), (1001, 2), (2500, 3)];
        for (ms, secs) in cases {
            assert_eq!(retry_after_secs(Duration::from_millis(ms)), secs, "{ms} ms");
        }
    }
}
