//! The fleet-wide per-org SCIM budget against the simulator's per-org token bucket: four
//! clients (as four workers: each its own Redis connection and limiter) share one org's
//! budget in Redis and stay within the org's limit, so hardly any request meets a 429.
//!
//! The achieved rate is printed, not asserted: only counts are checked.

use std::sync::Arc;
use std::time::Instant;

use dirsync_load_tests::scim_sim::{RateLimit, ScimSim, ScimSimConfig};
use dirsync_load_tests::serve;
use dirsync_proto::Topology;
use dirsync_worker::ratelimit::{OrgRate, OrgRateLimiter};
use dirsync_worker::scim::{RetryPolicy, ScimClient};
use futures_util::{StreamExt, TryStreamExt, stream};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

const ORG: &str = "5e000000-0000-4000-8000-0000000000c1";
const TOKEN: &str = "pacing-token";
const CLIENTS: usize = 4;
const REQUESTS_PER_CLIENT: usize = 150;

fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_the_redis_budget_stay_under_the_org_limit() {
    let sim = ScimSim::new(ScimSimConfig {
        rate_limit: Some(RateLimit {
            per_second: 200,
            burst: 20,
        }),
        ..ScimSimConfig::default()
    });
    sim.add_org(ORG, TOKEN);
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let served = serve::spawn(sim.router(), serve::any_loopback_port(), shutdown)
        .await
        .unwrap();
    let base = format!("{}/identity/scim/{ORG}/v2", served.base_url());
    let topology = Topology::new(format!("pacing-{}", uuid::Uuid::new_v4().simple()));
    // The workers' budget is the org's rate with a smaller burst than the org allows.
    let rate = OrgRate {
        per_second: 200.0,
        burst: 5,
    };
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let redis = redis::aio::ConnectionManager::new(redis::Client::open(redis_url()).unwrap())
            .await
            .unwrap();
        let token = Arc::new(SecretString::from(TOKEN.to_string()));
        let client = ScimClient::new(reqwest::Client::new(), &base, token, RetryPolicy::default())
            .unwrap()
            .with_rate_limiter(OrgRateLimiter::new(redis, &topology, rate));
        clients.push(client);
    }

    let started = Instant::now();
    let runs = clients.iter().enumerate().map(|(c, client)| async move {
        stream::iter(0..REQUESTS_PER_CLIENT)
            .map(|i| async move {
                client
                    .find_user_by_user_name(&format!("nobody-{c}-{i}@contoso.example"))
                    .await
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await
    });
    let found = futures_util::future::try_join_all(runs).await.unwrap();
    let elapsed = started.elapsed();

    assert!(found.iter().flatten().all(Option::is_none));
    let c = sim.counters(ORG);
    let answered = (CLIENTS * REQUESTS_PER_CLIENT) as u64;
    println!(
        "{} requests in {elapsed:?}: {:.0} requests/s against a limit of 200/s, {} answered 429 ({:.2} %)",
        c.requests(),
        c.requests() as f64 / elapsed.as_secs_f64(),
        c.throttled,
        100.0 * c.throttled as f64 / c.requests() as f64
    );
    assert_eq!(c.list, answered + c.throttled, "every 429 was retried");
    assert!(
        c.throttled * 100 <= c.requests(),
        "{} of {} requests answered 429",
        c.throttled,
        c.requests()
    );
}
