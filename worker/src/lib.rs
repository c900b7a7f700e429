//! dirsync worker: consumes batches of Entra users, maps and diffs them against the
//! mirror, pushes the differences to Webex over SCIM 2.0 and records the results.
//!
//! Per batch: decode → idempotency check → tenant → mirror rows → map/diff (pure) →
//! SCIM push (bounded concurrency, retries) → one PostgreSQL transaction → Redis counts
//! exactly once → result event with publisher confirm → ack. A batch of group objects
//! ("sync group objects") goes the same way through `group_plan` and `group_sync`.
//!
//! Observability: a `batch` span per delivery continuing the publisher's trace (W3C trace
//! context in the message headers), `record` and `scim_request` spans under it, the
//! fleet's metrics (`dirsync_telemetry::metrics()`, recorded in `observe`) and a process
//! endpoint for the scrape and probes (`http`).

pub mod batch;
pub mod broker;
pub mod config;
pub mod consume;
pub mod counters;
pub mod deferrals;
pub mod diff;
pub mod dry_run;
pub mod error;
pub mod group_plan;
pub mod group_sync;
pub mod hash;
pub mod http;
pub mod map;
pub mod mirror;
pub mod observe;
pub mod outcome;
pub mod pipeline;
pub mod push;
pub mod ratelimit;
pub mod record;
pub mod redelivery;
pub mod report;
pub mod scim;
pub mod tenant;
pub mod worker;

use dirsync_telemetry::MetricsHandle;
use lapin::types::ShortString;
use lapin::{Connection, ConnectionProperties};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::{HttpAddr, WorkerConfig, WorkerSettings};
pub use error::WorkerError;
pub use worker::Worker;

/// The project's migrations, shared with the coordinator's schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Connects to PostgreSQL (running the migrations), Redis and RabbitMQ, then consumes
/// batches until `shutdown` is cancelled and in-flight batches are finished. Serves
/// `/healthz` and `/readyz` on `config.http_addr`, without `/metrics` (see
/// [`run_with_metrics`]).
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<(), WorkerError> {
    run_with_metrics(config, shutdown, None).await
}

/// [`run`], serving `metrics` (the process's telemetry, see `dirsync_telemetry::init`) as
/// `/metrics` on `config.http_addr` beside the probes.
pub async fn run_with_metrics(
    config: WorkerConfig,
    shutdown: CancellationToken,
    metrics: Option<MetricsHandle>,
) -> Result<(), WorkerError> {
    // The endpoint stops with the worker, also when the worker stops on its own (error).
    let stop_http = shutdown.child_token();
    let readiness = http::Readiness::default();
    let endpoint = match config.http_addr.0 {
        Some(addr) => {
            http::HttpEndpoint::start(addr, metrics, readiness.clone(), stop_http.clone()).await
        }
        None => None,
    };
    let result = connect_and_run(config, shutdown, &readiness).await;
    stop_http.cancel();
    if let Some(endpoint) = endpoint {
        endpoint.stopped().await;
    }
    result
}

async fn connect_and_run(
    config: WorkerConfig,
    shutdown: CancellationToken,
    readiness: &http::Readiness,
) -> Result<(), WorkerError> {
    if config.secrets_key.is_none() {
        return Err(WorkerError::Secrets(
            dirsync_proto::ProtoError::MissingSecretsKey,
        ));
    }
    let settings = config.settings();
    let pool = PgPoolOptions::new()
        .max_connections(u32::from(settings.prefetch) + u32::from(settings.priority_prefetch) + 4)
        .connect(&config.database_url)
        .await?;
    // sqlx holds an advisory lock while migrating, so concurrent starts are safe.
    MIGRATOR.run(&pool).await?;
    let redis_client = redis::Client::open(config.redis_url.as_str())?;
    let redis = redis::aio::ConnectionManager::new(redis_client).await?;
    // Losing the broker (a restart, a failover) is not the end of the worker: it connects
    // again with backoff. The broker requeues what was in flight on the lost channels, and a
    // batch recorded meanwhile is recognised as done when it comes back.
    let mut failures = 0u32;
    let result = loop {
        let outcome = consume_connected(&config, &pool, &redis, &shutdown, readiness).await;
        if matches!(outcome, Ok(Consumed::BrokerLost(_))) {
            // It was connected: the next attempt starts the backoff afresh.
            failures = 0;
        }
        match outcome {
            Ok(Consumed::Stopped) => break Ok(()),
            Ok(Consumed::BrokerLost(e)) | Err(e @ WorkerError::Amqp(_))
                if !shutdown.is_cancelled() =>
            {
                let delay = reconnect_delay(failures);
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, ?delay, "lost the broker, connecting again");
                tokio::select! {
                    () = shutdown.cancelled() => break Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Ok(Consumed::BrokerLost(_)) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    pool.close().await;
    result
}

/// How a connected worker stopped.
enum Consumed {
    /// Shutdown was asked for.
    Stopped,
    /// The broker connection or a channel went away.
    BrokerLost(WorkerError),
}

/// The wait before connecting to the broker again after `failures` failed attempts in a
/// row: from 1 s, doubling, at most 30 s.
fn reconnect_delay(failures: u32) -> std::time::Duration {
    let secs = 1u64 << failures.min(5);
    std::time::Duration::from_secs(secs.min(30))
}

/// Connects to the broker and consumes until shutdown or until the broker is lost.
async fn consume_connected(
    config: &WorkerConfig,
    pool: &sqlx::PgPool,
    redis: &redis::aio::ConnectionManager,
    shutdown: &CancellationToken,
    readiness: &http::Readiness,
) -> Result<Consumed, WorkerError> {
    let amqp = Connection::connect(&config.amqp_url, ConnectionProperties::default()).await?;
    info!(prefix = %config.prefix, "worker connected");
    let result = match Worker::new(
        pool.clone(),
        redis.clone(),
        &amqp,
        config.topology(),
        config.settings(),
    )
    .await
    {
        Ok(worker) => {
            let broker = http::BrokerStatus::new(&amqp, worker.channels());
            readiness.connected(pool.clone(), redis.clone(), broker);
            match worker.run(shutdown.clone()).await {
                Ok(()) => Ok(Consumed::Stopped),
                Err(e @ (WorkerError::Amqp(_) | WorkerError::ChannelClosed)) => {
                    Ok(Consumed::BrokerLost(e))
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    if amqp.status().connected()
        && let Err(e) = amqp.close(200, ShortString::from("worker stopping")).await
    {
        tracing::warn!(error = %e, "cannot close the amqp connection");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::reconnect_delay;
    use std::time::Duration;

    #[test]
    fn reconnecting_backs_off_to_a_cap() {
        let cases = [
            (0, 1),
            (1, 2),
            (2, 4),
            (4, 16),
            (5, 30),
            (6, 30),
            (u32::MAX, 30),
        ];
        for (failures, secs) in cases {
            assert_eq!(
                reconnect_delay(failures),
                Duration::from_secs(secs),
                "{failures} failures"
            );
        }
    }
}
