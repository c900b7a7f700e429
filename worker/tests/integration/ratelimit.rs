//! The fleet-wide per-org SCIM budget in Redis: slots handed out at the rate after a burst,
//! one org's budget shared by every limiter (worker) and apart from other orgs', and a pause
//! honoured by every worker.

use std::time::Duration;

use dirsync_worker::ratelimit::{OrgRate, OrgRateLimiter};

use crate::common::{redis, unique_topology};

/// Redis time passes between calls, so the checks leave room for a slow machine: a slot is
/// never sooner than the rate allows (exact), and each is later than the one before (true as
/// long as two calls are less than an interval, 500 ms, apart).
#[tokio::test]
async fn slots_follow_the_rate_after_the_burst() {
    let topology = unique_topology();
    let rate = OrgRate {
        per_second: 2.0,
        burst: 3,
    };
    // Two workers' limiters on their own connections.
    let a = OrgRateLimiter::new(redis().await, &topology, rate);
    let b = OrgRateLimiter::new(redis().await, &topology, rate);
    let mut waits = Vec::new();
    for i in 0..7 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        waits.push(limiter.reserve("org-1").await.unwrap());
    }
    println!("waits: {waits:?}");
    assert!(waits[..3].iter().all(Duration::is_zero), "the burst");
    // Slot k after the burst is (k+1) intervals of 500 ms after the first call, at most.
    for (k, wait) in waits[3..].iter().enumerate() {
        let due = Duration::from_millis(500 * (k as u64 + 1));
        assert!(*wait <= due, "slot {k}: {wait:?}");
    }
    assert!(
        waits[2..].windows(2).all(|w| w[1] > w[0]),
        "each slot after the burst is later: {waits:?}"
    );
    // Another org has its own budget.
    assert!(a.reserve("org-2").await.unwrap().is_zero());
}

#[tokio::test]
async fn a_pause_holds_every_worker() {
    let topology = unique_topology();
    let rate = OrgRate {
        per_second: 1000.0,
        burst: 10,
    };
    let a = OrgRateLimiter::new(redis().await, &topology, rate);
    let b = OrgRateLimiter::new(redis().await, &topology, rate);
    assert!(b.reserve("org-1").await.unwrap().is_zero());
    a.pause("org-1", Duration::from_secs(60)).await.unwrap();
    // A shorter pause does not cut a longer one short.
    a.pause("org-1", Duration::from_secs(1)).await.unwrap();
    let wait = b.reserve("org-1").await.unwrap();
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert!(
        b.reserve("org-2").await.unwrap().is_zero(),
        "other orgs go on"
    );
    // Clean up the minute-long keys.
    let mut conn = redis().await;
    let prefix = topology.prefix();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:{{scim-rate:org-1}}:tat"))
        .arg(format!("{prefix}:{{scim-rate:org-1}}:paused"))
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// The priority lane goes ahead of the slots a cycle's batches reserved, and still takes
/// one: the next reservation is later for it. A pause holds it like everyone else.
#[tokio::test]
async fn the_priority_lane_goes_ahead_of_reserved_slots() {
    use dirsync_worker::ratelimit::with_priority;
    let topology = unique_topology();
    let rate = OrgRate {
        per_second: 2.0,
        burst: 1,
    };
    let limiter = OrgRateLimiter::new(redis().await, &topology, rate);
    // Ten slots reserved: the last is 4.5 s away.
    let mut last = Duration::ZERO;
    for _ in 0..10 {
        last = limiter.reserve("org-1").await.unwrap();
    }
    assert!(last >= Duration::from_secs(4), "{last:?}");
    let ahead = with_priority(limiter.reserve("org-1")).await.unwrap();
    assert!(ahead.is_zero(), "{ahead:?}");
    // It took a slot: the next one is an interval after the queue's end.
    let next = limiter.reserve("org-1").await.unwrap();
    assert!(
        next >= last + Duration::from_millis(900),
        "{last:?} then {next:?}"
    );
    // Outside the scope, the same limiter queues again.
    assert!(!limiter.reserve("org-1").await.unwrap().is_zero());

    limiter
        .pause("org-1", Duration::from_secs(30))
        .await
        .unwrap();
    let paused = with_priority(limiter.reserve("org-1")).await.unwrap();
    assert!(
        paused > Duration::from_secs(25) && paused <= Duration::from_secs(30),
        "{paused:?}"
    );
}
