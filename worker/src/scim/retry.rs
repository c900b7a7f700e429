//! When and how long to wait before retrying a SCIM request.
//!
//! Exponential backoff (backon's schedule) with full jitter, a delay drawn evenly from zero to
//! the backoff's, for errors without advice from the server: retries of many clients spread
//! out instead of coming back in waves. `Retry-After` (whole or fractional seconds) when the
//! server gives it, plus a little jitter so that requests throttled together do not return
//! together. Every retry sequence
//! is bounded both in attempts and in total time asleep, because a batch holds a broker
//! delivery while it waits.

use std::time::Duration;

use backon::ExponentialBuilder;

/// Retry limits of SCIM requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: usize,
    /// First backoff delay; also the most jitter added to a `Retry-After`.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; longer advice is clamped to this.
    pub max_retry_after: Duration,
    /// Most total time asleep across the retries of one request.
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            total_budget: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// The backoff schedule, before jitter ([`Self::next_delay`] draws the delay under it).
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1))
    }

    /// The delay before the next attempt, or `None` to give up.
    ///
    /// `backoff` is the backoff's next delay (`None` once attempts are exhausted),
    /// `slept` the time already spent asleep for this request, `jitter` a number in [0, 1):
    /// without advice the delay is `backoff × jitter` (full jitter).
    pub fn next_delay(
        &self,
        retry_after: Option<Duration>,
        backoff: Option<Duration>,
        slept: Duration,
        jitter: f64,
    ) -> Option<Duration> {
        let backoff = backoff?;
        let delay = match retry_after {
            Some(advice) => {
                advice.min(self.max_retry_after) + self.min_delay.mul_f64(jitter.clamp(0.0, 1.0))
            }
            None => backoff.mul_f64(jitter.clamp(0.0, 1.0)),
        };
        (slept + delay <= self.total_budget).then_some(delay)
    }
}

/// Parses a `Retry-After` value given in seconds, whole or fractional (`"2"`, `"1.5"`).
///
/// HTTP dates are not used by Webex for SCIM and yield `None`, as do negative, infinite
/// and unparseable values: the caller then falls back to its own backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retry_after() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("2", Some(Duration::from_secs(2))),
            (" 60 ", Some(Duration::from_secs(60))),
            ("0", Some(Duration::ZERO)),
            ("1.5", Some(Duration::from_millis(1500))),
            ("0.25", Some(Duration::from_millis(250))),
            ("-1", None),
            ("NaN", None),
            ("inf", None),
            ("", None),
            ("soon", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_retry_after(input), *expected, "{input:?}");
        }
    }

    /// (retry_after, backoff, slept, jitter, expected)
    type DelayCase = (
        Option<Duration>,
        Option<Duration>,
        Duration,
        f64,
        Option<Duration>,
    );

    #[test]
    fn next_delay_cases() {
        let policy = RetryPolicy {
            max_attempts: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            total_budget: Duration::from_secs(100),
        };
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // (retry_after, backoff, slept, jitter, expected)
        let cases: Vec<DelayCase> = vec![
            // full jitter without advice
            (None, Some(ms(400)), s(0), 0.5, Some(ms(200))),
            (None, Some(ms(400)), s(0), 0.0, Some(ms(0))),
            (
                None,
                Some(ms(400)),
                s(0),
                0.999,
                Some(ms(400).mul_f64(0.999)),
            ),
            (Some(ms(1500)), Some(ms(400)), s(0), 0.0, Some(ms(1500))),
            (Some(ms(1500)), Some(ms(400)), s(0), 0.5, Some(ms(1600))),
            (Some(s(600)), Some(ms(400)), s(0), 0.0, Some(s(60))),
            // attempts exhausted: give up even with advice
            (Some(s(1)), None, s(0), 0.0, None),
            (None, None, s(0), 0.0, None),
            // total budget
            (Some(s(60)), Some(ms(400)), s(41), 0.0, None),
            (Some(s(60)), Some(ms(400)), s(40), 0.0, Some(s(60))),
            (None, Some(s(10)), s(95), 1.0, None),
        ];
        for (i, (ra, backoff, slept, jitter, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                policy.next_delay(ra, backoff, slept, jitter),
                expected,
                "case {i}"
            );
        }
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        use backon::BackoffBuilder;
        let policy = RetryPolicy::default();
        let delays: Vec<Duration> = policy.backoff().build().collect();
        assert_eq!(delays.len(), policy.max_attempts - 1);
        for d in &delays {
            assert!(*d >= policy.min_delay && *d <= policy.max_delay, "{d:?}");
        }
        // backon multiplies by an f32 factor: 200 ms × 2³ within a microsecond
        assert!(delays[3].abs_diff(Duration::from_millis(1600)) < Duration::from_micros(1));
    }
}
