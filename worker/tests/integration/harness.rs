//! Helpers for tests that drive a running worker through the broker: starting and stopping
//! it, building batches, publishing them, reading result events and a run's counts in Redis.

use std::collections::HashMap;
use std::time::Duration;

use dirsync_proto::{
    BatchMessage, BatchResultEvent, RemovedReason, RunId, SourceUser, TenantId, Topology,
    WIRE_VERSION,
};
use dirsync_worker::{Worker, WorkerError, WorkerSettings};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use redis::aio::ConnectionManager;
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::common::{amqp_url, redis};

/// A worker running on its own task, with the connections a test uses to talk to it.
pub struct RunningWorker {
    pub amqp: Connection,
    pub redis: ConnectionManager,
    /// A channel of the test's own, for publishing batches and reading results.
    pub channel: Channel,
    topology: Topology,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), WorkerError>>,
}

impl RunningWorker {
    /// Connects to the broker and Redis, builds a worker on `topology` (which declares its
    /// queue and exchange) and runs it until `stop`.
    pub async fn start(pool: PgPool, topology: &Topology, mut settings: WorkerSettings) -> Self {
        settings
            .secrets
            .get_or_insert_with(crate::common::secrets_key);
        let amqp = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let redis = redis().await;
        let worker = Worker::new(pool, redis.clone(), &amqp, topology.clone(), settings)
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(worker.run(shutdown.clone()));
        let channel = amqp.create_channel().await.unwrap();
        RunningWorker {
            amqp,
            redis,
            channel,
            topology: topology.clone(),
            shutdown,
            handle,
        }
    }

    /// Cancels the worker and asserts it returned `Ok` within 30 s, then closes the
    /// connection. Returns how many messages its batch queue still held once it had
    /// stopped: anything it did not settle would be back in the queue by then.
    pub async fn stop(self) -> u32 {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the worker stops within 30 s")
            .expect("the worker task does not panic")
            .expect("the worker stops without error");
        let queue = self
            .channel
            .queue_declare(
                ShortString::from(self.topology.batch_queue()),
                QueueDeclareOptions {
                    passive: true,
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = self.amqp.close(200, ShortString::from("done")).await;
        queue.message_count()
    }
}

pub fn user(id: &str, attrs: Value) -> SourceUser {
    SourceUser {
        id: id.into(),
        removed: None,
        attributes: attrs.as_object().cloned().unwrap(),
    }
}

pub fn tombstone(id: &str, reason: RemovedReason) -> SourceUser {
    SourceUser {
        id: id.into(),
        removed: Some(reason),
        attributes: Default::default(),
    }
}

pub fn batch(tenant: TenantId, run: RunId, seq: u32, users: Vec<SourceUser>) -> BatchMessage {
    BatchMessage {
        version: WIRE_VERSION,
        tenant_id: tenant,
        run_id: run,
        seq,
        users,
        groups: Vec::new(),
        dry_run: false,
    }
}

pub async fn publish_raw(channel: &Channel, topology: &Topology, payload: &[u8]) {
    channel
        .basic_publish(
            ShortString::from(""),
            ShortString::from(topology.batch_queue()),
            BasicPublishOptions::default(),
            payload,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

pub async fn results_consumer(channel: &Channel, topology: &Topology, run: RunId) -> Consumer {
    let queue = channel
        .queue_declare(
            ShortString::from(""),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            ShortString::from(topology.results_exchange()),
            ShortString::from(Topology::result_routing_key(run)),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .basic_consume(
            queue.name().clone(),
            ShortString::from(""),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
}

pub async fn next_event(consumer: &mut Consumer) -> BatchResultEvent {
    let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("a result event within 30 s")
        .expect("consumer open")
        .expect("delivery");
    BatchResultEvent::decode(&delivery.data).unwrap()
}

pub async fn run_counts(
    conn: &mut redis::aio::ConnectionManager,
    topology: &Topology,
    run: RunId,
) -> HashMap<String, u64> {
    redis::cmd("HGETALL")
        .arg(topology.run_counts_key(run))
        .query_async(conn)
        .await
        .unwrap()
}
