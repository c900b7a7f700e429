//! Client-side pacing of Graph requests, so an enumeration stays under Graph's resource-unit
//! budget instead of discovering it through 429s (graph.md §2).
//!
//! Graph meters identity reads per app+tenant pair with a token bucket of resource units (RU)
//! refilled over 10 s. We mirror that bucket with a GCRA limiter (`governor`) of the same size:
//! a full bucket lets `budget` requests through at once, so a client far below the budget never
//! waits, and a drained one is held to `budget` requests per 10 s.
//!
//! Assumptions: the default budget is Graph's L tier (8,000 RU per 10 s, tenants over 500
//! users), and one delta page costs [`DELTA_PAGE_RU`] = 1 RU (`users/delta` is not in the cost
//! table; unlisted identity paths cost 1, and `$select` takes the minimum). Smaller tenants
//! have smaller tiers, and other apps or processes may share the bucket, so pacing is also
//! **adaptive**: when Graph says it is over 80 % used (`x-ms-throttle-limit-percentage`) or
//! throttles us (429), every request for the next [`CAUTION_PERIOD`] must also pass a second
//! limiter that allows half the budget's rate, evenly spaced (no burst). Each new signal
//! extends the period. This is deliberately simple: it halves our rate when Graph reports
//! pressure, whatever its cause, and costs nothing when there is none.
//!
//! Pacers are shared per app+tenant (and budget) across every [`GraphClient`](super::GraphClient)
//! of the process: a new run of a tenant starts with the bucket the previous run left, as
//! Graph's does, not with a fresh burst. The app registration's budget across all tenants
//! (150,000 RU per 20 s) is no single process's to keep: it is shared by the fleet in Redis
//! ([`app_budget`](super::app_budget)), and each request paced here takes a slot of it too.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;

/// Graph's L-tier budget for one app+tenant pair: 8,000 RU per 10 s.
pub const DEFAULT_RU_PER_10S: u32 = 8_000;

/// RU one `users/delta` page costs (assumed: see the module documentation).
pub const DELTA_PAGE_RU: u32 = 1;

/// Graph's bucket window.
const WINDOW: Duration = Duration::from_secs(10);

/// How long a pressure signal keeps the client at half rate: one bucket window.
pub const CAUTION_PERIOD: Duration = WINDOW;

/// Graph sends `x-ms-throttle-limit-percentage` above this share of the budget.
const PRESSURE_THRESHOLD: f64 = 0.8;

/// Paces one app+tenant pair's requests.
#[derive(Debug)]
pub struct Pacer {
    budget: NonZeroU32,
    /// Graph's bucket as we assume it: `budget` RU, refilled over 10 s.
    bucket: DefaultDirectRateLimiter,
    /// Half the budget's rate, one request at a time; consulted only while cautious.
    cautious: DefaultDirectRateLimiter,
    /// Until when requests also go through `cautious`.
    caution_until: Mutex<Option<Instant>>,
    /// Requests that had to wait for the pace.
    delayed: AtomicU64,
}

impl Pacer {
    /// A pacer for `ru_per_10s` resource units per 10 s (at least 1).
    pub fn new(ru_per_10s: u32) -> Self {
        let budget = NonZeroU32::new(ru_per_10s).unwrap_or(NonZeroU32::MIN);
        let per_request = NonZeroU32::new(DELTA_PAGE_RU).unwrap_or(NonZeroU32::MIN);
        let requests = NonZeroU32::new(budget.get() / per_request).unwrap_or(NonZeroU32::MIN);
        // `WINDOW / requests` is never zero for a u32 count of requests over 10 s.
        let steady = Quota::with_period(WINDOW / requests.get())
            .unwrap_or_else(|| Quota::per_second(requests))
            .allow_burst(requests);
        let halved = Quota::with_period(WINDOW * 2 / requests.get())
            .unwrap_or_else(|| Quota::per_second(requests));
        Pacer {
            budget,
            bucket: RateLimiter::direct(steady),
            cautious: RateLimiter::direct(halved),
            caution_until: Mutex::new(None),
            delayed: AtomicU64::new(0),
        }
    }

    /// The budget this pacer keeps to, in RU per 10 s.
    pub fn budget(&self) -> u32 {
        self.budget.get()
    }

    /// Waits until one more request fits the budget (immediately when far below it).
    pub async fn ready(&self) {
        let mut waited = false;
        if self.is_cautious() {
            waited |= wait_for(&self.cautious).await;
        }
        waited |= wait_for(&self.bucket).await;
        if waited {
            self.delayed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many requests so far had to wait for the pace.
    pub fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::Relaxed)
    }

    /// Graph reported pressure (limit percentage at or above 80 %, or a 429): go at half
    /// rate for the next [`CAUTION_PERIOD`].
    pub fn pressure(&self) {
        let until = Instant::now() + CAUTION_PERIOD;
        let mut caution = self
            .caution_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if caution.is_none_or(|current| current < until) {
            if caution.is_none_or(|current| current < Instant::now()) {
                tracing::info!(
                    budget = self.budget.get(),
                    "graph reports throttling pressure: halving the request rate"
                );
            }
            *caution = Some(until);
        }
    }

    /// Whether requests currently go at half rate.
    pub fn is_cautious(&self) -> bool {
        self.caution_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }
}

/// Sleeps (on tokio's timer) until `limiter` lets one request through, and takes it.
/// Waits until `limiter` admits one request; true when that took any waiting.
async fn wait_for(limiter: &DefaultDirectRateLimiter) -> bool {
    let clock = DefaultClock::default();
    let mut waited = false;
    while let Err(not_until) = limiter.check() {
        waited = true;
        tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
    }
    waited
}

/// Which app+tenant pair (and budget) a pacer serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacerKey {
    pub graph_base_url: String,
    pub graph_tenant_id: String,
    pub client_id: String,
    pub ru_per_10s: u32,
}

static PACERS: LazyLock<Mutex<HashMap<PacerKey, Arc<Pacer>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide pacer for `key`, created on first use.
pub fn shared(key: PacerKey) -> Arc<Pacer> {
    let mut pacers = PACERS.lock().unwrap_or_else(PoisonError::into_inner);
    pacers
        .entry(key)
        .or_insert_with_key(|key| Arc::new(Pacer::new(key.ru_per_10s)))
        .clone()
}

/// `x-ms-throttle-limit-percentage` as a fraction of the budget (Graph sends 0.8–1.8).
pub fn limit_percentage(headers: &HeaderMap) -> Option<f64> {
    let value: f64 = headers
        .get("x-ms-throttle-limit-percentage")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    value.is_finite().then_some(value)
}

/// Whether an answer's status and headers say we are near or over the budget.
pub fn signals_pressure(status: u16, headers: &HeaderMap) -> bool {
    status == 429 || limit_percentage(headers).is_some_and(|p| p >= PRESSURE_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn pressure_comes_from_429_or_a_high_limit_percentage() {
        let cases: &[(u16, Option<&str>, bool)] = &[
            (200, None, false),
            (200, Some("0.5"), false),
            (200, Some("0.79"), false),
            (200, Some("0.8"), true),
            (200, Some(" 1.25 "), true),
            (200, Some("high"), false),
            (200, Some("NaN"), false),
            (429, None, true),
            (503, None, false),
        ];
        for (status, header, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = header {
                headers.insert(
                    "x-ms-throttle-limit-percentage",
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            assert_eq!(
                signals_pressure(*status, &headers),
                *expected,
                "{status} {header:?}"
            );
        }
    }

    #[test]
    fn a_full_bucket_lets_the_whole_budget_through_at_once_and_no_more() {
        for budget in [1, 2, 40, 8_000] {
            let pacer = Pacer::new(budget);
            let started = std::time::Instant::now();
            let mut passed = 0u64;
            while pacer.bucket.check().is_ok() {
                passed += 1;
                assert!(
                    passed <= 2 * u64::from(budget) + 10,
                    "budget {budget}: no limit"
                );
            }
            // The bucket refills meanwhile (budget per 10 s): on a slow machine a few more
            // than the budget may pass, never fewer.
            let refilled = (started.elapsed().as_secs_f64() * f64::from(budget) / 10.0).ceil();
            assert!(
                passed >= u64::from(budget),
                "budget {budget}: only {passed}"
            );
            assert!(
                passed as f64 <= f64::from(budget) + refilled,
                "budget {budget}: {passed} passed"
            );
        }
        assert_eq!(Pacer::new(0).budget(), 1, "a zero budget means one");
    }

    #[test]
    fn pressure_makes_the_pacer_cautious_for_a_while() {
        let pacer = Pacer::new(100);
        assert!(!pacer.is_cautious());
        pacer.pressure();
        assert!(pacer.is_cautious());
        // Half rate without burst: one request, then a wait of 2 × 10 s / 100.
        assert!(pacer.cautious.check().is_ok());
        let Err(not_until) = pacer.cautious.check() else {
            panic!("the cautious limiter allows no burst");
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        assert!(
            wait > Duration::from_millis(150) && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
    }

    #[test]
    fn pacers_are_shared_per_app_tenant_and_budget() {
        let key = |tenant: &str, budget| PacerKey {
            graph_base_url: "http://graph.test".into(),
            graph_tenant_id: tenant.into(),
            client_id: "app".into(),
            ru_per_10s: budget,
        };
        let a = shared(key("pacing-unit-a", 10));
        assert!(Arc::ptr_eq(&a, &shared(key("pacing-unit-a", 10))));
        assert!(!Arc::ptr_eq(&a, &shared(key("pacing-unit-b", 10))));
        assert!(!Arc::ptr_eq(&a, &shared(key("pacing-unit-a", 20))));
    }
}
