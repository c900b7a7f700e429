//! The fleet-wide SCIM request budget of each Webex org, kept in Redis so that every worker
//! draws from the same one.
//!
//! GCRA (the "virtual scheduling" form of a token bucket) in one Lua script, with Redis's own
//! clock so that workers on different hosts agree on time. A request *reserves* the next free
//! slot and sleeps until it, instead of asking again and again: a worker's requests never
//! spin against Redis, and N workers together never exceed `per_second` (plus the `burst`
//! saved up while idle). A 429 or 503 carrying `Retry-After` pauses the org for every worker:
//! the "paused until" key pushes every later slot past it. The reserve and pause scripts are
//! `dirsync_proto::gcra`'s, which the coordinator's Graph app budget runs too.
//!
//! Keys live under the worker's prefix, one pair per org with the org as a Redis Cluster hash
//! tag (both keys go to one script): `{prefix}:{scim-rate:<org>}:tat` and `…:paused`. An org
//! is named by its SCIM base URL without the scheme, which carries the Webex org id, so two
//! tenants syncing into one org share its budget. Slots reserved by a request that then gave
//! up are simply lost: the budget errs on the slow side.
//!
//! The priority lane (provision on demand) must not queue behind the slots a running cycle's
//! batches reserved (with many workers, seconds of them): its requests, made inside
//! [`with_priority`], go at once (or when a pause ends) and still take a slot, pushing the
//! later reservations back by one interval. The org sees at most one request per provision
//! ahead of the steady schedule, within the burst it tolerates.

use std::time::Duration;

use dirsync_proto::Topology;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::error::WorkerError;

tokio::task_local! {
    /// Set for the work of a priority-lane delivery (see [`with_priority`]).
    static PRIORITY: bool;
}

/// Runs `work` (the processing of one priority-lane delivery, in one task) with its SCIM
/// requests ahead of the org's reserved slots.
pub async fn with_priority<F: std::future::Future>(work: F) -> F::Output {
    PRIORITY.scope(true, work).await
}

/// Whether the current task is a priority-lane delivery's.
fn is_priority() -> bool {
    PRIORITY.try_with(|p| *p).unwrap_or(false)
}

/// One org's budget: requests a second, and how many may go at once after a quiet spell.
pub type OrgRate = dirsync_proto::GcraRate;

/// The shared per-org budget. Cheap to clone; clones share the Redis connection.
#[derive(Clone)]
pub struct OrgRateLimiter {
    conn: ConnectionManager,
    reserve: Script,
    pause: Script,
    prefix: String,
    rate: OrgRate,
}

impl std::fmt::Debug for OrgRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgRateLimiter")
            .field("prefix", &self.prefix)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl OrgRateLimiter {
    pub fn new(conn: ConnectionManager, topology: &Topology, rate: OrgRate) -> Self {
        OrgRateLimiter {
            conn,
            reserve: Script::new(dirsync_proto::GCRA_RESERVE),
            pause: Script::new(dirsync_proto::GCRA_PAUSE),
            prefix: topology.prefix().to_string(),
            rate,
        }
    }

    pub fn rate(&self) -> OrgRate {
        self.rate
    }

    fn key(&self, org: &str, what: &str) -> String {
        format!("{}:{{scim-rate:{org}}}:{what}", self.prefix)
    }

    /// Reserves the org's next slot and returns how long to wait for it; inside
    /// [`with_priority`], a slot now (or when a pause ends).
    pub async fn reserve(&self, org: &str) -> Result<Duration, WorkerError> {
        let mut conn = self.conn.clone();
        // A priority request may go any distance ahead of the schedule: it goes now (or when
        // a pause ends), and still takes the next slot from the others.
        let tolerance = if is_priority() {
            u64::MAX
        } else {
            self.rate.tolerance_micros()
        };
        let wait_us: i64 = self
            .reserve
            .key(self.key(org, "tat"))
            .key(self.key(org, "paused"))
            .arg(self.rate.interval_micros())
            .arg(tolerance)
            .invoke_async(&mut conn)
            .await?;
        Ok(Duration::from_micros(wait_us.max(0).unsigned_abs()))
    }

    /// Waits until the org's budget lets one more request go. The wait (zero included, so
    /// the histogram's count is the requests that asked) goes to `dirsync.ratelimit.wait`.
    pub async fn acquire(&self, org: &str) -> Result<(), WorkerError> {
        let wait = self.reserve(org).await?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        dirsync_telemetry::metrics().ratelimit_wait(wait);
        Ok(())
    }

    /// Pauses the org for every worker for `period` from now (a longer pause stands).
    pub async fn pause(&self, org: &str, period: Duration) -> Result<(), WorkerError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .pause
            .key(self.key(org, "paused"))
            .arg(micros(period).max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
