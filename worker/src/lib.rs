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
    let amqp = Connection::connect(&config.amqp_url, ConnectionProperties::default()).await?;
    info!(prefix = %config.prefix, "worker connected");

    let result = match Worker::new(
        pool.clone(),
        redis.clone(),
        &amqp,
        config.topology(),
        settings,
    )
    .await
    {
        Ok(worker) => {
            let broker = http::BrokerStatus::new(&amqp, worker.channels());
            readiness.connected(pool.clone(), redis, broker);
            worker.run(shutdown).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = amqp.close(200, ShortString::from("worker stopping")).await {
        tracing::warn!(error = %e, "cannot close the amqp connection");
    }
    pool.close().await;
    result
}
