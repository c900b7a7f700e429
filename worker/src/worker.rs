//! The consumer loop: takes batches off the batch queue and the priority lane, processes up
//! to each lane's prefetch at once, acknowledges each only after its effects are committed
//! and announced ([`crate::consume`]).
//!
//! The priority lane (provision on demand) has a channel, a consumer and a prefetch of its
//! own: the broker hands its deliveries over whatever the batch queue's unacked deliveries
//! are, and each delivery is a task of its own, so a one-user batch never waits behind a
//! run's batches. Its SCIM requests take the org's next slot ahead of the batches'
//! reservations (`ratelimit::with_priority`, still counted in the budget); it shares the
//! database pool with them.
//!
//! Shutdown: both consumers are cancelled so the broker stops sending, in-flight batches are
//! finished and acked (within a grace period), then the channels are closed; deliveries
//! that were buffered but not started return to their queue with the channel.

use std::sync::Arc;
use std::time::Duration;

use dirsync_proto::Topology;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, Consumer};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::batch::BatchProcessor;
use crate::broker::{ResultPublisher, declare_batch_queue, declare_results_exchange};
use crate::config::WorkerSettings;
use crate::consume::{Lane, close_channel, handle_delivery, report_join};
use crate::counters::RunCounters;
use crate::error::WorkerError;
use crate::scim::http_client;

/// A worker bound to its database, Redis and broker channels.
#[derive(Debug)]
pub struct Worker {
    processor: Arc<BatchProcessor>,
    consume_channel: Channel,
    /// The priority lane's channel, with its own prefetch.
    priority_channel: Channel,
    topology: Topology,
    /// The names of the batch queue and the priority lane, for the `batch` spans.
    queues: (Arc<str>, Arc<str>),
    settings: WorkerSettings,
}

impl Worker {
    /// Opens the worker's channels on `amqp` and declares the queues and exchange. The
    /// connection stays the caller's: it is not closed by the worker.
    pub async fn new(
        pool: PgPool,
        redis: ConnectionManager,
        amqp: &Connection,
        topology: Topology,
        settings: WorkerSettings,
    ) -> Result<Self, WorkerError> {
        let consume_channel = amqp.create_channel().await?;
        declare_batch_queue(&consume_channel, &topology).await?;
        declare_results_exchange(&consume_channel, &topology).await?;
        consume_channel
            .basic_qos(settings.prefetch, BasicQosOptions::default())
            .await?;
        let priority_channel = amqp.create_channel().await?;
        priority_channel
            .basic_qos(settings.priority_prefetch, BasicQosOptions::default())
            .await?;
        let publisher =
            ResultPublisher::new(amqp.create_channel().await?, topology.clone()).await?;
        let http = http_client(settings.http_timeout)?;
        let counters = RunCounters::new(topology.clone(), settings.counts_ttl);
        let processor =
            BatchProcessor::new(pool, redis, http, counters, publisher, settings.clone());
        let queues = (
            Arc::from(topology.batch_queue()),
            Arc::from(topology.priority_queue()),
        );
        Ok(Worker {
            processor: Arc::new(processor),
            consume_channel,
            priority_channel,
            topology,
            queues,
            settings,
        })
    }

    /// The worker's channels (batch queue, priority lane, result publishing), for watching
    /// their state (`/readyz`).
    pub fn channels(&self) -> Vec<Channel> {
        vec![
            self.consume_channel.clone(),
            self.priority_channel.clone(),
            self.processor_channel().clone(),
        ]
    }

    /// Consumes both lanes until `shutdown` is cancelled (or the broker ends a consumer),
    /// then drains in-flight batches and closes the channels.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let mut batches = consume(&self.consume_channel, self.topology.batch_queue()).await?;
        let mut priority = consume(&self.priority_channel, self.topology.priority_queue()).await?;
        let consumers = [
            (&self.consume_channel, batches.tag()),
            (&self.priority_channel, priority.tag()),
        ];
        info!(
            queue = %self.topology.batch_queue(),
            prefetch = self.settings.prefetch,
            priority_queue = %self.topology.priority_queue(),
            priority_prefetch = self.settings.priority_prefetch,
            "worker consuming"
        );

        let mut tasks = JoinSet::new();
        // Cut short the requeue holds of failed batches once the consumers are cancelled
        // (not before: a batch requeued while this consumer still consumes could come straight
        // back to it, to wait unprocessed in its prefetch until the channel closes).
        let stopping = CancellationToken::new();
        // A dead publishing channel would make every batch fail: better to stop and let the
        // process be restarted with fresh channels.
        let mut health = tokio::time::interval(Duration::from_secs(1));
        let outcome = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ok(()),
                // The priority lane before anything else that is ready.
                next = priority.next() => {
                    if let Some(end) = self.dispatch(next, Lane::Priority, &mut tasks, &stopping) {
                        break end;
                    }
                }
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => report_join(joined),
                _ = health.tick() => {
                    if !self.processor_channel().status().connected() {
                        error!("the result publishing channel closed");
                        break Err(WorkerError::ChannelClosed);
                    }
                }
                next = batches.next() => {
                    if let Some(end) = self.dispatch(next, Lane::Batches, &mut tasks, &stopping) {
                        break end;
                    }
                }
            }
        };

        info!(in_flight = tasks.len(), "worker stopping");
        for (channel, tag) in consumers {
            if channel.status().connected()
                && let Err(e) = channel
                    .basic_cancel(tag, BasicCancelOptions::default())
                    .await
            {
                warn!(error = %e, "cannot cancel a consumer");
            }
        }
        stopping.cancel();
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while let Some(joined) = tasks.join_next().await {
                report_join(joined);
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                left = tasks.len(),
                "grace period over, abandoning in-flight batches to redelivery"
            );
            tasks.shutdown().await;
        }
        drop(batches);
        drop(priority);
        close_channel(&self.consume_channel).await;
        close_channel(&self.priority_channel).await;
        close_channel(self.processor_channel()).await;
        info!("worker stopped");
        outcome
    }

    /// Starts a task for a delivery of `lane`; `Some` ends the loop (the consumer failed or
    /// the broker ended it).
    fn dispatch(
        &self,
        next: Option<Result<Delivery, lapin::Error>>,
        lane: Lane,
        tasks: &mut JoinSet<()>,
        stopping: &CancellationToken,
    ) -> Option<Result<(), WorkerError>> {
        match next {
            Some(Ok(delivery)) => {
                let processor = self.processor.clone();
                let base_delay = self.settings.requeue_delay;
                let queue = match lane {
                    Lane::Batches => self.queues.0.clone(),
                    Lane::Priority => self.queues.1.clone(),
                };
                tasks.spawn(handle_delivery(
                    processor,
                    delivery,
                    base_delay,
                    lane,
                    queue,
                    stopping.clone(),
                ));
                None
            }
            Some(Err(e)) => Some(Err(WorkerError::from(e))),
            None => {
                error!(lane = lane.as_str(), "the broker ended the consumer");
                Some(Err(WorkerError::ChannelClosed))
            }
        }
    }

    fn processor_channel(&self) -> &Channel {
        self.processor.publisher().channel()
    }
}

/// Starts consuming `queue` on `channel` (manual acks).
async fn consume(channel: &Channel, queue: String) -> Result<Consumer, WorkerError> {
    Ok(channel
        .basic_consume(
            ShortString::from(queue),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?)
}
