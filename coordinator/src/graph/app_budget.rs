//! The Graph request budget of an app registration as a whole, shared by every coordinator
//! through Redis.
//!
//! Graph meters an app registration across all the tenants it serves: 150,000 RU per 20 s
//! and 130,000 requests per 10 s (graph.md §2), on top of each app+tenant pair's bucket that
//! [`pacing`](super::pacing) mirrors in-process. One coordinator cannot see what the others
//! spend, so this budget lives in Redis: the worker's fleet-wide GCRA
//! ([`dirsync_proto::gcra`], the same Lua scripts) keyed by the app's client id, so every
//! tenant of one app registration draws from one budget and tenants of different
//! registrations do not. Keys: `{prefix}:{graph-app:<client_id>}:tat` and `…:paused`, the
//! app as a Redis Cluster hash tag (both keys go to one script).
//!
//! A request first waits for its tenant's pacer, then *reserves* the app's next slot and
//! sleeps until it: no request spins against Redis, and the fleet together keeps to the
//! rate (plus a burst of one second of it saved up while idle). A 429 whose
//! `x-ms-throttle-scope` names the application as a whole (`Application/…`) pauses the app
//! for every coordinator for its `Retry-After`; a tenant or app+tenant 429 does not, since
//! other tenants of the app are not throttled. Slots reserved by a request that then fails
//! are lost: the budget errs on the slow side.
//!
//! The default rate, [`DEFAULT_RATE_PER_SECOND`] = 3,500 requests/s: 150,000 RU per 20 s is
//! 7,500 RU/s; a request is assumed to cost [`ASSUMED_RU_PER_REQUEST`] = 2 RU (graph.md's
//! upper bound for a delta page, whose cost is not listed, and the cost of `GET users`), so
//! 3,750 requests/s; the burst adds one second, 21 s of requests in Graph's 20 s window:
//! 150,000 / 2 / 21 ≈ 3,571, rounded down. The global 130,000 requests per 10 s is then far
//! off (at most 38,500 in 10 s).
//!
//! **Redis unreachable: fail open.** A failed or slow (over [`REDIS_TIMEOUT`]) reservation
//! lets the request go, paced by its tenant's pacer only, logs a warning once per outage,
//! and skips Redis for [`REDIS_RETRY`] so an outage costs one timeout now and then, not one
//! per request. Syncing never stops because Redis is down; the app-wide budget is then not
//! enforced, and a 429 from Graph (honoured by the client's retries) is the backstop.
//!
//! Graph clients are made per run, deep in the library, from the tenant alone (like the
//! allowed hosts, `config::allowed_hosts`): `dirsync serve` and `dirsync sync` [`install`]
//! one budget for the process at start-up and every [`GraphClient`](super::GraphClient)
//! made afterwards uses it. A library user that installs none has no app budget.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use reqwest::header::HeaderMap;

/// Graph's identity budget of one app registration across all tenants (graph.md §2).
pub const APP_RU_PER_20S: u32 = 150_000;

/// RU one paced request is assumed to cost, at most (see the module documentation).
pub const ASSUMED_RU_PER_REQUEST: u32 = 2;

/// The default app-wide rate in requests a second (derivation in the module documentation).
pub const DEFAULT_RATE_PER_SECOND: f64 = 3_500.0;

/// Longest wait for Redis before a request goes without the app budget.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// How long after a Redis failure requests go without asking Redis.
pub const REDIS_RETRY: Duration = Duration::from_secs(10);

/// An app's budget: requests a second, and how many may go at once after a quiet spell.
pub type AppRate = dirsync_proto::GcraRate;

/// The app-wide budgets of every app registration this process talks to Graph as. Cheap to
/// clone; clones share the Redis connection and the failure state.
#[derive(Clone)]
pub struct AppBudget {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    reserve: Script,
    pause: Script,
    prefix: String,
    rate: AppRate,
    /// Until when requests go without asking Redis, after a failure.
    skip_until: Mutex<Option<Instant>>,
    /// Whether the last Redis call failed: the warning is logged once per outage.
    failing: AtomicBool,
    /// Requests that had to wait for the app budget.
    delayed: AtomicU64,
}

impl std::fmt::Debug for AppBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBudget")
            .field("prefix", &self.inner.prefix)
            .field("rate", &self.inner.rate)
            .finish_non_exhaustive()
    }
}

impl AppBudget {
    /// A budget of `rate` under `prefix` in the Redis at `redis_url`. Connects lazily, on
    /// the first request: an unreachable Redis is no error here (see fail open); only a URL
    /// that is not a Redis URL is. Call it within a tokio runtime (the connection's
    /// background task is spawned on it).
    pub fn new(redis_url: &str, prefix: &str, rate: AppRate) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(redis_url)?;
        // Short timeouts and one reconnection attempt: a request waits at most about
        // REDIS_TIMEOUT for Redis before going without it.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(AppBudget {
            inner: Arc::new(Inner {
                conn,
                reserve: Script::new(dirsync_proto::GCRA_RESERVE),
                pause: Script::new(dirsync_proto::GCRA_PAUSE),
                prefix: prefix.to_string(),
                rate,
                skip_until: Mutex::new(None),
                failing: AtomicBool::new(false),
                delayed: AtomicU64::new(0),
            }),
        })
    }

    pub fn rate(&self) -> AppRate {
        self.inner.rate
    }

    /// The Redis key `what` (`tat`, `paused`) of the app `client_id`.
    pub fn key(&self, client_id: &str, what: &str) -> String {
        format!("{}:{{graph-app:{client_id}}}:{what}", self.inner.prefix)
    }

    /// Forgets the app's schedule and pause (both keys), as if it had been idle for long.
    pub async fn forget(&self, client_id: &str) -> Result<(), redis::RedisError> {
        let mut conn = self.inner.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(client_id, "tat"))
            .arg(self.key(client_id, "paused"))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Reserves the app's next slot and returns how long to wait for it; `None` when Redis
    /// failed or is being skipped after a failure (the request goes unmetered).
    pub async fn reserve(&self, client_id: &str) -> Option<Duration> {
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.reserve.key(self.key(client_id, "tat"));
        invocation
            .key(self.key(client_id, "paused"))
            .arg(self.inner.rate.interval_micros())
            .arg(self.inner.rate.tolerance_micros());
        let wait_us = self.call(invocation.invoke_async::<i64>(&mut conn)).await?;
        Some(Duration::from_micros(wait_us.max(0).unsigned_abs()))
    }

    /// Waits until the app's budget lets one more request go (at once when Redis fails).
    pub async fn acquire(&self, client_id: &str) {
        if let Some(wait) = self.reserve(client_id).await
            && !wait.is_zero()
        {
            self.inner.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// Pauses the app for every coordinator for `period` from now (a longer pause stands);
    /// false when Redis failed.
    pub async fn pause(&self, client_id: &str, period: Duration) -> bool {
        let micros = u64::try_from(period.as_micros()).unwrap_or(u64::MAX).max(1);
        tracing::warn!(
            client_id,
            pause_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            "graph throttles the app as a whole: pausing its requests on every coordinator"
        );
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.pause.key(self.key(client_id, "paused"));
        invocation.arg(micros);
        self.call(invocation.invoke_async::<i64>(&mut conn))
            .await
            .is_some()
    }

    /// How many requests so far had to wait for the app budget.
    pub fn delayed(&self) -> u64 {
        self.inner.delayed.load(Ordering::Relaxed)
    }

    /// Whether Redis failed last time it was asked (the budget is not enforced meanwhile).
    pub fn is_failing(&self) -> bool {
        self.inner.failing.load(Ordering::Relaxed)
    }

    /// Runs one Redis call within [`REDIS_TIMEOUT`], unless Redis is being skipped; `None`
    /// on failure, which starts a skip of [`REDIS_RETRY`].
    async fn call<T>(
        &self,
        invocation: impl Future<Output = Result<T, redis::RedisError>>,
    ) -> Option<T> {
        let skipping = self
            .inner
            .skip_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until);
        if skipping {
            return None;
        }
        let error = match tokio::time::timeout(REDIS_TIMEOUT, invocation).await {
            Ok(Ok(value)) => {
                if self.inner.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("redis reachable again: graph app budget enforced");
                }
                return Some(value);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {REDIS_TIMEOUT:?}"),
        };
        *self
            .inner
            .skip_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + REDIS_RETRY);
        if !self.inner.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "redis unreachable: graph app budget not enforced, requests paced per tenant only"
            );
        }
        None
    }
}

/// Whether an answer is Graph throttling the app registration as a whole: a 429 whose
/// `x-ms-throttle-scope` (`<Tenant_Application|Tenant|Application>/<Read|Write|ReadWrite>/
/// <appId>/<tenantId>`, graph.md §2) starts with `Application`.
pub fn throttles_the_app(status: u16, headers: &HeaderMap) -> bool {
    status == 429
        && headers
            .get("x-ms-throttle-scope")
            .and_then(|v| v.to_str().ok())
            .and_then(|scope| scope.trim().split('/').next())
            .is_some_and(|scope| scope.eq_ignore_ascii_case("Application"))
}

/// The process's app budget, once [`install`]ed.
static INSTALLED: RwLock<Option<AppBudget>> = RwLock::new(None);

/// Makes `budget` the process's: every Graph client made from now on reserves its
/// requests in it (`None`: no app budget).
pub fn install(budget: Option<AppBudget>) {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = budget;
}

/// The process's app budget, if one is installed.
pub fn installed() -> Option<AppBudget> {
    INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const REDIS_URL: &str = "redis://127.0.0.1:6379";

    /// The waits of `n` reservations in a row.
    async fn reserve_n(budget: &AppBudget, app: &str, n: usize) -> Vec<Duration> {
        let mut waits = Vec::new();
        for _ in 0..n {
            waits.push(budget.reserve(app).await.expect("redis is up"));
        }
        waits
    }

    /// A key prefix of its own for one test (each test forgets its apps at the end).
    struct Isolated {
        prefix: String,
    }

    impl Isolated {
        fn new(name: &str) -> Self {
            Isolated {
                prefix: format!("dirsync-test-app-budget-{name}-{}", uuid::Uuid::new_v4()),
            }
        }
    }

    #[test]
    fn the_default_rate_fits_the_app_bucket_with_its_burst() {
        let rate = AppRate::per_second(DEFAULT_RATE_PER_SECOND).unwrap();
        assert_eq!(rate.burst, 3_500);
        // 20 s of the rate plus the burst, at the assumed cost, within Graph's 20 s bucket.
        let worst_ru =
            (20.0 * rate.per_second + f64::from(rate.burst)) * f64::from(ASSUMED_RU_PER_REQUEST);
        assert!(worst_ru <= f64::from(APP_RU_PER_20S), "{worst_ru}");
        // And the global 130,000 requests per 10 s.
        assert!(10.0 * rate.per_second + f64::from(rate.burst) <= 130_000.0);
    }

    #[test]
    fn only_an_application_scoped_429_throttles_the_app() {
        let cases: &[(u16, Option<&str>, bool)] = &[
            (429, Some("Application/ReadWrite/app-id/tenant-id"), true),
            (429, Some(" application/Read/app-id/tenant-id"), true),
            (429, Some("Tenant_Application/Read/app-id/tenant-id"), false),
            (429, Some("Tenant/Write/app-id/tenant-id"), false),
            (429, Some("ApplicationX/Read"), false),
            (429, None, false),
            (503, Some("Application/Read/app-id/tenant-id"), false),
            (200, Some("Application/Read/app-id/tenant-id"), false),
        ];
        for (status, scope, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(scope) = scope {
                headers.insert("x-ms-throttle-scope", HeaderValue::from_str(scope).unwrap());
            }
            assert_eq!(
                throttles_the_app(*status, &headers),
                *expected,
                "{status} {scope:?}"
            );
        }
    }

    /// Two coordinators' budgets on one app share its slots: together their reservations
    /// take consecutive slots one interval apart, never two in one interval.
    #[tokio::test]
    async fn two_coordinators_sharing_an_app_never_exceed_its_rate_together() {
        let test = Isolated::new("shared");
        // One request per 100 s and no burst: the schedule is far coarser than the time the
        // reservations take, so each wait names its slot unambiguously.
        let rate = AppRate {
            per_second: 0.01,
            burst: 1,
        };
        let interval = Duration::from_micros(rate.interval_micros());
        let a = AppBudget::new(REDIS_URL, &test.prefix, rate).unwrap();
        let b = AppBudget::new(REDIS_URL, &test.prefix, rate).unwrap();
        let (from_a, from_b) = tokio::join!(reserve_n(&a, "app-1", 5), reserve_n(&b, "app-1", 5));
        let mut waits: Vec<Duration> = from_a.iter().chain(&from_b).copied().collect();
        waits.sort();
        // Slot n starts n intervals after the first reservation; a wait is that less the
        // time since then, which is well under half an interval.
        let slots: Vec<u128> = waits
            .iter()
            .map(|w| (w.as_micros() + interval.as_micros() / 2) / interval.as_micros())
            .collect();
        assert_eq!(slots, (0..10).collect::<Vec<u128>>(), "{waits:?}");
        for pair in waits.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap > interval / 2 && gap < interval * 3 / 2,
                "{gap:?} between {pair:?}"
            );
        }
        // Another app registration has a budget of its own.
        assert_eq!(a.reserve("app-2").await, Some(Duration::ZERO));
        a.forget("app-1").await.unwrap();
        a.forget("app-2").await.unwrap();
    }

    #[tokio::test]
    async fn a_burst_goes_at_once_then_the_rate_holds() {
        let test = Isolated::new("burst");
        let rate = AppRate {
            per_second: 0.01,
            burst: 3,
        };
        let interval = Duration::from_micros(rate.interval_micros());
        let budget = AppBudget::new(REDIS_URL, &test.prefix, rate).unwrap();
        let waits = reserve_n(&budget, "app", 5).await;
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        // The 4th and 5th take the 1st and 2nd slots after the burst.
        for (wait, slot) in waits[3..].iter().zip([1, 2]) {
            assert!(
                *wait > interval * slot - interval / 2 && *wait <= interval * slot,
                "{waits:?}"
            );
        }
        budget.forget("app").await.unwrap();
    }

    #[tokio::test]
    async fn an_app_wide_pause_pushes_every_coordinators_next_slot_past_it() {
        let test = Isolated::new("pause");
        let rate = AppRate::per_second(1_000.0).unwrap();
        let a = AppBudget::new(REDIS_URL, &test.prefix, rate).unwrap();
        let b = AppBudget::new(REDIS_URL, &test.prefix, rate).unwrap();
        assert_eq!(a.reserve("app").await, Some(Duration::ZERO));
        let pause = Duration::from_secs(600);
        assert!(a.pause("app", pause).await);
        let wait = b.reserve("app").await.unwrap();
        assert!(
            wait > pause - Duration::from_secs(60) && wait <= pause,
            "{wait:?}"
        );
        // A shorter pause does not shorten it.
        assert!(b.pause("app", Duration::from_secs(1)).await);
        assert!(a.reserve("app").await.unwrap() > pause - Duration::from_secs(60));
        // Another app is not paused.
        assert_eq!(a.reserve("other-app").await, Some(Duration::ZERO));
        a.forget("app").await.unwrap();
        a.forget("other-app").await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_redis_lets_requests_go_unmetered() {
        // Nothing listens on port 1.
        let budget = AppBudget::new(
            "redis://127.0.0.1:1",
            "dirsync-test-app-budget-dead",
            AppRate::per_second(0.01).unwrap(),
        )
        .unwrap();
        assert!(!budget.is_failing());
        assert_eq!(budget.reserve("app").await, None);
        assert!(budget.is_failing());
        // Skipped now: none of these waits for Redis, and none waits for a slot.
        for _ in 0..3 {
            budget.acquire("app").await;
        }
        assert_eq!(budget.delayed(), 0);
        assert!(!budget.pause("app", Duration::from_secs(5)).await);
    }

    #[test]
    fn a_redis_url_of_another_scheme_is_an_error() {
        let rate = AppRate::per_second(1.0).unwrap();
        assert!(AppBudget::new("http://cache", "p", rate).is_err());
    }
}
