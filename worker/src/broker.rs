//! RabbitMQ resources the worker uses: the batch queue and the priority lane's queue it
//! consumes, and the results exchange it publishes to.
//!
//! Declarations must match the coordinator's exactly (RabbitMQ refuses a redeclaration
//! with other arguments), so they live here in one place.

use dirsync_proto::{BatchResultEvent, Topology};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

use crate::error::WorkerError;

/// Persistent delivery mode (AMQP 0-9-1 `delivery-mode` 2).
const PERSISTENT: u8 = 2;

/// Declares the durable quorum batch queue and the priority lane's queue.
pub async fn declare_batch_queue(
    channel: &Channel,
    topology: &Topology,
) -> Result<(), WorkerError> {
    for queue in [topology.batch_queue(), topology.priority_queue()] {
        declare_quorum_queue(channel, queue).await?;
    }
    Ok(())
}

async fn declare_quorum_queue(channel: &Channel, queue: String) -> Result<(), WorkerError> {
    let mut arguments = FieldTable::default();
    arguments.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    channel
        .queue_declare(
            ShortString::from(queue),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    Ok(())
}

/// Declares the durable topic exchange for result events.
pub async fn declare_results_exchange(
    channel: &Channel,
    topology: &Topology,
) -> Result<(), WorkerError> {
    channel
        .exchange_declare(
            ShortString::from(topology.results_exchange()),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// A channel in confirm mode, publishing result events.
#[derive(Debug, Clone)]
pub struct ResultPublisher {
    channel: Channel,
    topology: Topology,
}

impl ResultPublisher {
    /// Puts `channel` in confirm mode; the channel should be used for nothing else.
    pub async fn new(channel: Channel, topology: Topology) -> Result<Self, WorkerError> {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(ResultPublisher { channel, topology })
    }

    /// Publishes a persistent result event and waits for the broker's confirm.
    pub async fn publish(&self, event: &BatchResultEvent) -> Result<(), WorkerError> {
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type(ShortString::from("application/json"));
        let confirm = self
            .channel
            .basic_publish(
                ShortString::from(self.topology.results_exchange()),
                ShortString::from(Topology::result_routing_key(event.run_id)),
                BasicPublishOptions::default(),
                &event.encode(),
                properties,
            )
            .await?
            .await?;
        if confirm.is_nack() {
            return Err(WorkerError::PublishNacked {
                run: event.run_id,
                seq: event.seq,
            });
        }
        Ok(())
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}
