//! RabbitMQ resources the worker uses: the batch queue and the priority lane's queue it
//! consumes (and the dead-letter exchange and queue they dead-letter to), and the results
//! exchange it publishes to.
//!
//! Declarations must match the coordinator's exactly (RabbitMQ refuses a redeclaration
//! with other arguments), so they live here in one place and take their arguments from
//! [`Topology`], as the coordinator's do.

use dirsync_proto::{BatchResultEvent, QueueArgument, Topology};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, ExchangeKind};

use crate::error::WorkerError;

/// Persistent delivery mode (AMQP 0-9-1 `delivery-mode` 2).
const PERSISTENT: u8 = 2;

/// Declares the durable quorum batch queue and the priority lane, with their delivery
/// limit and dead-lettering, and the dead-letter exchange and queue they dead-letter to
/// (declared first: at-least-once dead-lettering needs somewhere to go).
pub async fn declare_batch_queue(
    channel: &Channel,
    topology: &Topology,
) -> Result<(), WorkerError> {
    channel
        .exchange_declare(
            ShortString::from(topology.dead_letter_exchange()),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    declare_quorum_queue(
        channel,
        topology.dead_letter_queue(),
        topology.dead_letter_queue_arguments(),
    )
    .await?;
    channel
        .queue_bind(
            ShortString::from(topology.dead_letter_queue()),
            ShortString::from(topology.dead_letter_exchange()),
            ShortString::from(topology.dead_letter_queue()),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for queue in [topology.batch_queue(), topology.priority_queue()] {
        declare_quorum_queue(channel, queue, topology.batch_queue_arguments()).await?;
    }
    Ok(())
}

async fn declare_quorum_queue(
    channel: &Channel,
    queue: String,
    arguments: Vec<(&'static str, QueueArgument)>,
) -> Result<(), WorkerError> {
    channel
        .queue_declare(
            ShortString::from(queue),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            field_table(arguments),
        )
        .await?;
    Ok(())
}

/// Queue arguments as AMQP fields (the same conversion as the coordinator's).
fn field_table(arguments: Vec<(&'static str, QueueArgument)>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in arguments {
        let value = match value {
            QueueArgument::Text(text) => AMQPValue::LongString(LongString::from(text)),
            QueueArgument::Number(n) => AMQPValue::LongLongInt(n),
        };
        table.insert(ShortString::from(name), value);
    }
    table
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
