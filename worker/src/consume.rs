//! One delivery, from either lane: decoded, processed by [`BatchProcessor::process`] and
//! settled (ack on success, requeue on a transient failure, reject when it can never
//! succeed). The batch queue and the priority lane share this path, so a user provisioned on
//! demand goes through exactly the pipeline a run's batch does.

use std::sync::Arc;
use std::time::Duration;

use dirsync_proto::BatchMessage;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::ShortString;
use tracing::{Instrument, error, info, info_span, warn};

use crate::batch::BatchProcessor;
use crate::redelivery::{delivery_count, requeue_delay};

/// Which queue a delivery came from, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The batch queue: runs' pages.
    Batches,
    /// The priority lane: one-user batches an operator waits for.
    Priority,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Batches => "batches",
            Lane::Priority => "priority",
        }
    }
}

pub(crate) async fn close_channel(channel: &Channel) {
    if channel.status().connected()
        && let Err(e) = channel
            .close(200, ShortString::from("worker stopping"))
            .await
    {
        warn!(error = %e, "cannot close an amqp channel");
    }
}

pub(crate) fn report_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        error!(error = %e, "a batch task panicked; its delivery returns to the queue with the channel");
    }
}

/// Processes one delivery and settles it: ack on success, requeue on a transient failure,
/// reject (no requeue) when it can never succeed.
pub(crate) async fn handle_delivery(
    processor: Arc<BatchProcessor>,
    delivery: Delivery,
    base_delay: Duration,
    lane: Lane,
) {
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
        lane = lane.as_str(),
    );
    let work = async {
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
    .instrument(span);
    // A priority delivery's SCIM requests go ahead of the slots the batches reserved.
    match lane {
        Lane::Priority => crate::ratelimit::with_priority(work).await,
        Lane::Batches => work.await,
    }
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
