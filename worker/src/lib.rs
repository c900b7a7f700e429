//! dirsync worker: consumes batches of Entra users, maps and diffs them against the
//! mirror, pushes the differences to Webex over SCIM 2.0 and records the results.
//!
//! Per batch: decode → idempotency check → tenant → mirror rows → map/diff (pure) →
//! SCIM push (bounded concurrency, retries) → one PostgreSQL transaction → Redis counts
//! exactly once → result event with publisher confirm → ack. A batch of group objects
//! ("sync group objects") goes the same way through `group_plan` and `group_sync`.

pub mod batch;
pub mod broker;
pub mod config;
pub mod consume;
pub mod counters;
pub mod diff;
pub mod dry_run;
pub mod error;
pub mod group_plan;
pub mod group_sync;
pub mod hash;
pub mod map;
pub mod mirror;
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

use lapin::types::ShortString;
use lapin::{Connection, ConnectionProperties};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::{WorkerConfig, WorkerSettings};
pub use error::WorkerError;
pub use worker::Worker;

/// The project's migrations, shared with the coordinator's schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Connects to PostgreSQL (running the migrations), Redis and RabbitMQ, then consumes
/// batches until `shutdown` is cancelled and in-flight batches are finished.
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<(), WorkerError> {
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

    let result = match Worker::new(pool.clone(), redis, &amqp, config.topology(), settings).await {
        Ok(worker) => worker.run(shutdown).await,
        Err(e) => Err(e),
    };
    if let Err(e) = amqp.close(200, ShortString::from("worker stopping")).await {
        tracing::warn!(error = %e, "cannot close the amqp connection");
    }
    pool.close().await;
    result
}
