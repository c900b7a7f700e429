//! Poison batches: what the batch queue and the priority lane dead-letter, and how a run
//! still completes.
//!
//! Both queues are quorum queues with a delivery limit that dead-letter (at least once) to
//! the deployment's dead-letter queue (`Topology::batch_queue_arguments`): a batch a worker
//! rejects (undecodable, or a failure that can never succeed) goes at once, one that keeps
//! failing transiently, panicking or losing its worker goes when it has been handed back
//! more than the limit. A run waits for a `batch_results` row for every batch it published,
//! so a batch that vanished would hold it open forever.
//!
//! The consumer lives in the coordinator ([`serve`], a task of `dirsync serve` and
//! `dirsync sync` under their shutdown token), because the coordinator owns runs: it is
//! what knows that a missing row blocks a run, it already writes run-level rows, and it
//! can decode what it published, even a batch of a wire version the workers do not read.
//! Workers stay unaware of dead letters (they only settle deliveries), and several
//! coordinators consuming the one queue is fine: taking a letter twice changes nothing.
//!
//! Taking a letter ([`store::take`]) keeps it in `dead_letters` (body, headers, the reason
//! and queue from `x-death`, the delivery count, and the tenant, run and sequence number
//! from the body, else from the headers the coordinator stamps on every batch at publish
//! time) and records its batch as failed in the same transaction: a `batch_results` row with
//! every user and group failed, a `failed_objects` row per user and the users in escrow
//! (so the next run retries them, as it does a worker's failed users), unless the batch is
//! recorded already; the failed users are added to the run's live Redis counters exactly
//! once ([`counters`]). The run then completes with those objects failed.
//!
//! An operator lists the letters and re-drives one ([`Redriver::redrive`], `dirsync
//! dead-letter list|show|redrive`). A re-drive removes the failed row written for the
//! letter (and its failures from the live counters) and republishes the stored body to the
//! batch queue with a confirm, so a worker records the batch like any other and every count
//! stays exact; once recorded, the letter is `resolved` and the summary of its run, if that
//! completed meanwhile, is recomputed from `batch_results`. Refused: a body this
//! coordinator cannot decode (nothing to republish), a dry run's batch, a batch whose run is
//! gone, and a batch of a run after which another sync of the instance started (the older
//! batch could overwrite newer values). A republish the broker refuses puts the letter and
//! its failed row back.

pub mod consume;
pub mod counters;
pub mod letter;
pub mod store;

use std::sync::Arc;

use lapin::Connection;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

use dirsync_proto::Topology;

use crate::CoordinatorError;
use crate::broker::BatchPublisher;

pub use consume::serve;
pub use letter::DeadLetter;
pub use store::{DeadLetterDetail, DeadLetterView, Filter};

/// The broker connection of re-drives and their publisher to the batch queue.
#[derive(Debug)]
struct Broker {
    connection: Arc<Connection>,
    publisher: Arc<BatchPublisher>,
}

/// Re-drives dead letters: the broker connection (made on first use, remade when it
/// broke). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Redriver {
    pool: PgPool,
    topology: Topology,
    amqp_url: String,
    redis: Option<ConnectionManager>,
    broker: Arc<tokio::sync::Mutex<Option<Broker>>>,
}

/// The outcome of a re-drive.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Redriven {
    pub id: uuid::Uuid,
    pub run_id: uuid::Uuid,
    pub seq: u32,
    /// `redriven`: the batch is on the batch queue again.
    pub state: String,
}

impl Redriver {
    pub fn new(
        pool: PgPool,
        amqp_url: &str,
        topology: Topology,
        redis: Option<ConnectionManager>,
    ) -> Self {
        Self {
            pool,
            topology,
            amqp_url: amqp_url.to_string(),
            redis,
            broker: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    async fn publisher(&self) -> Result<Arc<BatchPublisher>, CoordinatorError> {
        let mut current = self.broker.lock().await;
        if let Some(b) = current.as_ref()
            && b.connection.status().connected()
            && b.publisher.is_open()
        {
            return Ok(b.publisher.clone());
        }
        let connection = match current.take() {
            Some(b) if b.connection.status().connected() => b.connection,
            _ => Arc::new(crate::broker::connect(&self.amqp_url).await?),
        };
        let publisher = Arc::new(BatchPublisher::new(&connection, &self.topology).await?);
        *current = Some(Broker {
            connection,
            publisher: publisher.clone(),
        });
        Ok(publisher)
    }

    /// Re-drives dead letter `id` for `by` (see the module doc). `None`: no such letter;
    /// [`CoordinatorError::Conflict`]: it cannot be re-driven, and why.
    pub async fn redrive(
        &self,
        id: uuid::Uuid,
        by: &str,
    ) -> Result<Option<Redriven>, CoordinatorError> {
        // The broker first: failing here changes nothing.
        let publisher = self.publisher().await?;
        let Some(redrive) = store::begin_redrive(&self.pool, id, by).await? else {
            return Ok(None);
        };
        if let (Some(batch), Some(conn)) = (redrive.uncounted, self.redis.clone()) {
            let mut conn = conn;
            if let Err(e) = counters::remove_failed(&mut conn, &self.topology, batch).await {
                // PostgreSQL stays right; the live view counts the old failure until the run
                // ends and progress is read from PostgreSQL.
                tracing::warn!(error = %e, "cannot take a re-driven batch out of the live counters");
            }
        }
        let batch = &redrive.batch;
        let published = publisher
            .publish(batch.tenant_id, batch.run_id, batch.seq, &redrive.body)
            .await;
        if let Err(e) = published {
            let recounted = store::abort_redrive(&self.pool, &redrive).await?;
            if let (Some(batch), Some(conn)) = (recounted, self.redis.clone()) {
                let mut conn = conn;
                if let Err(r) = counters::add_failed(&mut conn, &self.topology, batch).await {
                    tracing::warn!(error = %r, "cannot count a dead letter again");
                }
            }
            return Err(e);
        }
        store::finish_redrive(&self.pool, id).await?;
        tracing::info!(dead_letter = %id, run_id = %batch.run_id, seq = batch.seq, by, "dead letter re-driven");
        Ok(Some(Redriven {
            id,
            run_id: batch.run_id.0,
            seq: batch.seq,
            state: "redriven".into(),
        }))
    }
}
