//! The consumer loop: takes batches off the queue, processes up to `prefetch` at once,
//! acknowledges each only after its effects are committed and announced.
//!
//! Shutdown: the consumer is cancelled so the broker stops sending, in-flight batches are
//! finished and acked (within a grace period), then the channels are closed; deliveries
//! that were buffered but not started return to the queue with the channel.

use std::sync::Arc;
use std::time::Duration;

use dirsync_proto::{BatchMessage, Topology};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::batch::BatchProcessor;
use crate::broker::{ResultPublisher, declare_batch_queue, declare_results_exchange};
use crate::config::WorkerSettings;
use crate::counters::RunCounters;
use crate::error::WorkerError;
use crate::redelivery::{delivery_count, requeue_delay};
use crate::scim::http_client;

/// A worker bound to its database, Redis and broker channels.
#[derive(Debug)]
pub struct Worker {
    processor: Arc<BatchProcessor>,
    consume_channel: Channel,
    topology: Topology,
    settings: WorkerSettings,
}

impl Worker {
    /// Opens the worker's channels on `amqp` and declares the queue and exchange. The
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
        let publisher =
            ResultPublisher::new(amqp.create_channel().await?, topology.clone()).await?;
        let http = http_client(settings.http_timeout)?;
        let counters = RunCounters::new(topology.clone(), settings.counts_ttl);
        let processor =
            BatchProcessor::new(pool, redis, http, counters, publisher, settings.clone());
        Ok(Worker {
            processor: Arc::new(processor),
            consume_channel,
            topology,
            settings,
        })
    }

    /// Consumes until `shutdown` is cancelled (or the broker ends the consumer), then
    /// drains in-flight batches and closes the channels.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let mut consumer = self
            .consume_channel
            .basic_consume(
                ShortString::from(self.topology.batch_queue()),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let tag = consumer.tag();
        info!(queue = %self.topology.batch_queue(), prefetch = self.settings.prefetch, "worker consuming");

        let mut tasks = JoinSet::new();
        // A dead publishing channel would make every batch fail: better to stop and let the
        // process be restarted with fresh channels.
        let mut health = tokio::time::interval(Duration::from_secs(1));
        let outcome = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ok(()),
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => report_join(joined),
                _ = health.tick() => {
                    if !self.processor_channel().status().connected() {
                        error!("the result publishing channel closed");
                        break Err(WorkerError::ChannelClosed);
                    }
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let processor = self.processor.clone();
                        let base_delay = self.settings.requeue_delay;
                        tasks.spawn(handle_delivery(processor, delivery, base_delay));
                    }
                    Some(Err(e)) => break Err(WorkerError::from(e)),
                    None => {
                        error!("the broker ended the consumer");
                        break Err(WorkerError::ChannelClosed);
                    }
                },
            }
        };

        info!(in_flight = tasks.len(), "worker stopping");
        if self.consume_channel.status().connected()
            && let Err(e) = self
                .consume_channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await
        {
            warn!(error = %e, "cannot cancel the consumer");
        }
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
        drop(consumer);
        close_channel(&self.consume_channel).await;
        close_channel(self.processor_channel()).await;
        info!("worker stopped");
        outcome
    }

    fn processor_channel(&self) -> &Channel {
        self.processor.publisher().channel()
    }
}

async fn close_channel(channel: &Channel) {
    if channel.status().connected()
        && let Err(e) = channel
            .close(200, ShortString::from("worker stopping"))
            .await
    {
        warn!(error = %e, "cannot close an amqp channel");
    }
}

fn report_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        error!(error = %e, "a batch task panicked; its delivery returns to the queue with the channel");
    }
}

/// Processes one delivery and settles it: ack on success, requeue on a transient failure,
/// reject (no requeue) when it can never succeed.
async fn handle_delivery(processor: Arc<BatchProcessor>, delivery: Delivery, base_delay: Duration) {
    let batch = match BatchMessage::decode(&delivery.data) {
        Ok(batch) => batch,
        Err(e) => {
            error!(error = %e, delivery_tag = delivery.delivery_tag, "undecodable batch, rejecting it");
            settle(&delivery, Settle::Reject).await;
            return;
        }
    };
    let span = info_span!(
        "batch",
        tenant_id = %batch.tenant_id,
        run_id = %batch.run_id,
        seq = batch.seq,
        users = batch.users.len(),
        redelivered = delivery.redelivered,
    );
    async {
        match processor.process(&batch).await {
            Ok(counts) => {
                info!(
                    synced = counts.synced,
                    skipped = counts.skipped,
                    failed = counts.failed,
                    "batch done"
                );
                settle(&delivery, Settle::Ack).await;
            }
            Err(e) if e.is_retryable() => {
                if e.is_credential_failure() {
                    let reason = format!("webex refused the tenant's credentials: {e}");
                    if let Err(q) = crate::tenant::record_refused_credentials(
                        processor.pool(),
                        batch.tenant_id,
                        &reason,
                    )
                    .await
                    {
                        warn!(error = %q, "cannot record the refused credentials");
                    }
                }
                // Nothing of the batch is recorded: it is pushed again in full, later.
                let count = delivery_count(delivery.properties.headers().as_ref());
                let hold = requeue_delay(base_delay, count);
                warn!(error = %e, deliveries = count.saturating_add(1), ?hold, "batch failed, requeueing it");
                tokio::time::sleep(hold).await;
                settle(&delivery, Settle::Requeue).await;
            }
            Err(e) => {
                error!(error = %e, "batch cannot succeed, rejecting it");
                settle(&delivery, Settle::Reject).await;
            }
        }
    }
    .instrument(span)
    .await;
}

enum Settle {
    Ack,
    Requeue,
    Reject,
}

async fn settle(delivery: &Delivery, how: Settle) {
    let result = match how {
        Settle::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
        Settle::Requeue => {
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await
        }
        Settle::Reject => {
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: false,
                    multiple: false,
                })
                .await
        }
    };
    if let Err(e) = result {
        // The channel is gone: the broker requeues the delivery by itself.
        warn!(error = %e, "cannot settle a delivery");
    }
}
