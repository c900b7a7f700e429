//! The Lua scripts of a fleet-wide rate limit kept in Redis: the worker paces each Webex
//! org's SCIM requests with them, the coordinator the Graph requests of each app
//! registration. Pure text: each side runs them with its own Redis connection, so the
//! two cannot drift apart.
//!
//! GCRA (the "virtual scheduling" form of a token bucket) with Redis's own clock, so that
//! processes on different hosts agree on time. A caller *reserves* the next free slot and
//! sleeps until it instead of asking again and again. Both scripts take two keys that must
//! share a Redis Cluster slot (name them with one hash tag): the theoretical arrival time
//! (`tat`) and the "paused until" time (`paused`), both in microseconds of Redis time.

/// A budget: requests a second, and how many may go at once after a quiet spell. What the
/// scripts take is derived from it in whole microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcraRate {
    pub per_second: f64,
    pub burst: u32,
}

impl GcraRate {
    /// `per_second` with a burst of one second of it; `None` when the rate is 0 (off) or not
    /// a positive number.
    pub fn per_second(per_second: f64) -> Option<Self> {
        (per_second.is_finite() && per_second > 0.0).then(|| GcraRate {
            per_second,
            // Saturating float-to-int conversion; at least one request.
            burst: (per_second.ceil() as u32).max(1),
        })
    }

    /// Microseconds between two requests at the steady rate, rounded up (the script takes
    /// whole microseconds; rounding down would exceed the rate).
    pub fn interval_micros(&self) -> u64 {
        // Saturating conversion; at least 1 µs.
        ((1e6 / self.per_second).ceil() as u64).max(1)
    }

    /// How far ahead of the steady schedule a request may go: `burst - 1` intervals.
    pub fn tolerance_micros(&self) -> u64 {
        self.interval_micros()
            .saturating_mul(u64::from(self.burst.max(1) - 1))
    }
}

/// Reserves the next slot and returns the microseconds to wait before sending (≤ 0: now).
/// `KEYS`: tat, paused. `ARGV`: emission interval (µs, an integer), tolerance (µs: how far
/// ahead of the steady schedule a request may go, `burst - 1` intervals). A pause pushes
/// every later slot past its end.
pub const GCRA_RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local start = now
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > start then start = paused end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < start then tat = start end
local allow_at = tat - tolerance
if allow_at < start then allow_at = start end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return allow_at - now
";

/// Pauses until now + `ARGV[1]` µs, unless already paused longer (a `Retry-After`).
/// `KEYS`: paused.
pub const GCRA_PAUSE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
local until_ = now + pause
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', math.ceil(pause / 1000) + 1000)
end
return 1
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_and_zero_is_off() {
        // (per second, interval µs, tolerance µs)
        let cases = [
            (1.0, 1_000_000, 0),
            (3.0, 333_334, 666_668),
            (3_500.0, 286, 286 * 3_499),
            (0.01, 100_000_000, 0),
            (1e9, 1, 999_999_999),
        ];
        for (per_second, interval, tolerance) in cases {
            let rate = GcraRate::per_second(per_second).unwrap();
            assert_eq!(rate.interval_micros(), interval, "{rate:?}");
            assert_eq!(rate.tolerance_micros(), tolerance, "{rate:?}");
        }
        for off in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(GcraRate::per_second(off), None, "{off}");
        }
    }

    #[test]
    fn a_burst_is_a_tolerance_of_burst_less_one_intervals() {
        // (per_second, burst, interval µs, tolerance µs)
        let cases = [
            (200.0, 1, 5_000, 0),
            (200.0, 5, 5_000, 20_000),
            (50.0, 10, 20_000, 180_000),
            (0.5, 0, 2_000_000, 0),
        ];
        for (per_second, burst, interval, tolerance) in cases {
            let rate = GcraRate { per_second, burst };
            assert_eq!(rate.interval_micros(), interval, "{rate:?}");
            assert_eq!(rate.tolerance_micros(), tolerance, "{rate:?}");
        }
    }
}
