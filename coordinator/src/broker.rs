//! RabbitMQ: the batch queue and the priority lane (dead-lettering past their delivery
//! limit), the dead-letter exchange and queue, the results exchange, publishing with
//! confirms and listening for a run's result events.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use lapin::{Confirmation, PublisherConfirm};
use tokio::sync::mpsc;

use dirsync_proto::topology::headers;
use dirsync_proto::{BatchMessage, BatchResultEvent, QueueArgument, RunId, TenantId, Topology};
use dirsync_telemetry::amqp::PUBLISHED_MS_HEADER;
use tracing::Instrument;

use crate::CoordinatorError;

/// Persistent delivery mode: the message survives a broker restart.
const PERSISTENT: u8 = 2;

pub async fn connect(amqp_url: &str) -> Result<Connection, CoordinatorError> {
    // A broker host that drops packets instead of refusing them would otherwise hold the
    // connect for the kernel's TCP timeout (minutes), and with it everything waiting for the
    // runs' connection: runs, `/readyz`, the fleet gauges, shutdown.
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        Ok(Connection::connect(amqp_url, ConnectionProperties::default()).await?)
    })
    .await
    .map_err(|_| CoordinatorError::BrokerConnectTimeout(CONNECT_TIMEOUT))?
}

/// Longest a connection to the broker may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Declares the batch queue and the priority lane's queue (durable quorum queues with the
/// delivery limit, dead-lettering to the dead-letter exchange), the dead-letter exchange
/// (durable direct) and queue (durable quorum) bound to it, and the results exchange
/// (durable topic). Workers declare the same, with the same arguments (both take them from
/// [`Topology`]), so either side may start first.
pub async fn declare_topology(
    channel: &Channel,
    topology: &Topology,
) -> Result<(), CoordinatorError> {
    channel
        .exchange_declare(
            topology.dead_letter_exchange().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            topology.dead_letter_queue().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            field_table(topology.dead_letter_queue_arguments()),
        )
        .await?;
    channel
        .queue_bind(
            topology.dead_letter_queue().into(),
            topology.dead_letter_exchange().into(),
            topology.dead_letter_queue().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for queue in [topology.batch_queue(), topology.priority_queue()] {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                field_table(topology.batch_queue_arguments()),
            )
            .await?;
    }
    channel
        .exchange_declare(
            topology.results_exchange().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Queue arguments as AMQP fields (the same conversion as the worker's).
fn field_table(arguments: Vec<(&'static str, QueueArgument)>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in arguments {
        let value = match value {
            QueueArgument::Text(text) => AMQPValue::LongString(text.into()),
            QueueArgument::Number(n) => AMQPValue::LongLongInt(n),
        };
        table.insert(name.into(), value);
    }
    table
}

/// Publishes batches to the batch queue with publisher confirms.
#[derive(Debug)]
pub struct BatchPublisher {
    channel: Channel,
    queue: String,
}

impl BatchPublisher {
    pub async fn new(
        connection: &Connection,
        topology: &Topology,
    ) -> Result<Self, CoordinatorError> {
        Self::to_queue(connection, topology, topology.batch_queue()).await
    }

    /// A publisher to the priority lane ([`Topology::priority_queue`]): one-user batches of
    /// "provision on demand", which workers take beside the batch queue, not behind it.
    pub async fn priority(
        connection: &Connection,
        topology: &Topology,
    ) -> Result<Self, CoordinatorError> {
        Self::to_queue(connection, topology, topology.priority_queue()).await
    }

    async fn to_queue(
        connection: &Connection,
        topology: &Topology,
        queue: String,
    ) -> Result<Self, CoordinatorError> {
        let channel = connection.create_channel().await?;
        declare_topology(&channel, topology).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel, queue })
    }

    /// Whether the channel is still open (a closed one refuses every publish).
    pub fn is_open(&self) -> bool {
        self.channel.status().connected()
    }

    /// [`Self::publish`] of a batch encoded here.
    pub async fn publish_batch(&self, batch: &BatchMessage) -> Result<(), CoordinatorError> {
        self.publish(batch.tenant_id, batch.run_id, batch.seq, &batch.encode())
            .await
    }

    /// Returns once the broker has taken responsibility for the batch `seq` of `run`, given
    /// as the bytes of an encoded [`BatchMessage`] (see [`Self::send`]).
    pub async fn publish(
        &self,
        tenant: TenantId,
        run: RunId,
        seq: u32,
        batch: &[u8],
    ) -> Result<(), CoordinatorError> {
        self.send(tenant, run, seq, batch).await?.confirmed().await
    }

    /// Sends the batch `seq` of `run` and returns without waiting for the broker's confirm,
    /// so that several batches can be on their way at once; the caller awaits
    /// [`Unconfirmed::confirmed`] before it may forget the batch. The message carries the
    /// trace context of this `publish` span (W3C `traceparent`), so the worker's processing
    /// of the batch is its child in the run's trace, and the publish time, for the workers'
    /// lag metric.
    pub async fn send(
        &self,
        tenant: TenantId,
        run: RunId,
        seq: u32,
        batch: &[u8],
    ) -> Result<Unconfirmed, CoordinatorError> {
        let span = tracing::info_span!(
            "publish",
            otel.kind = "producer",
            messaging.system = "rabbitmq",
            messaging.operation.type = "send",
            messaging.operation.name = "publish",
            messaging.destination.name = %self.queue,
            messaging.message.body.size = batch.len(),
            tenant_id = %tenant,
            run_id = %run,
            seq,
        );
        async {
            let mut stamped = dirsync_telemetry::amqp::inject_current();
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            stamped.insert(PUBLISHED_MS_HEADER.into(), AMQPValue::LongLongInt(now_ms));
            // Attribution that survives a body nobody can decode (see `dead_letters`).
            stamped.insert(
                headers::TENANT.into(),
                AMQPValue::LongString(tenant.to_string().into()),
            );
            stamped.insert(
                headers::RUN.into(),
                AMQPValue::LongString(run.to_string().into()),
            );
            stamped.insert(headers::SEQ.into(), AMQPValue::LongLongInt(i64::from(seq)));
            let confirm = self
                .channel
                .basic_publish(
                    "".into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    batch,
                    BasicProperties::default()
                        .with_delivery_mode(PERSISTENT)
                        .with_content_type("application/json".into())
                        .with_headers(stamped),
                )
                .await?;
            Ok(Unconfirmed { seq, confirm })
        }
        .instrument(span)
        .await
    }
}

/// A batch sent to the broker whose confirm has not been awaited yet.
#[derive(Debug)]
#[must_use = "a batch is the broker's only once its confirm is awaited"]
pub struct Unconfirmed {
    seq: u32,
    confirm: PublisherConfirm,
}

impl Unconfirmed {
    /// The batch's sequence number in its run.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Returns once the broker has taken responsibility for the batch (an unroutable or
    /// refused message is an error).
    pub async fn confirmed(self) -> Result<(), CoordinatorError> {
        match self.confirm.await? {
            Confirmation::Ack(None) => Ok(()),
            _ => Err(CoordinatorError::PublishNacked),
        }
    }
}

/// Result events of one run, from an exclusive queue bound to the run's routing key.
/// Events are hints that something was recorded: PostgreSQL stays the source of truth.
#[derive(Debug)]
pub struct RunResults {
    channel: Channel,
    consumer: tokio::task::JoinHandle<()>,
    pub events: mpsc::Receiver<BatchResultEvent>,
}

impl RunResults {
    pub async fn subscribe(
        connection: &Connection,
        topology: &Topology,
        run: RunId,
    ) -> Result<Self, CoordinatorError> {
        let channel = connection.create_channel().await?;
        declare_topology(&channel, topology).await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                topology.results_exchange().into(),
                Topology::result_routing_key(run).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (tx, events) = mpsc::channel(1024);
        let consumer = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let event = BatchResultEvent::decode(&delivery.data);
                // Nothing depends on this ack: the event is a wake-up call for the tracker.
                let _ = delivery.ack(BasicAckOptions::default()).await;
                match event {
                    Ok(event) => {
                        if tx.send(event).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "undecodable result event ignored"),
                }
            }
        });
        Ok(Self {
            channel,
            consumer,
            events,
        })
    }
}

impl Drop for RunResults {
    /// Whatever way the run ends, its channel and exclusive queue go with it.
    fn drop(&mut self) {
        self.consumer.abort();
        let channel = self.channel.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = channel.close(200, "run finished".into()).await;
            });
        }
    }
}
