//! Helpers for tests that drive a running worker through the broker: building batches,
//! publishing them, reading result events and a run's counts in Redis.

use std::collections::HashMap;
use std::time::Duration;

use dirsync_proto::{
    BatchMessage, BatchResultEvent, RemovedReason, RunId, SourceUser, TenantId, Topology,
    WIRE_VERSION,
};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer};
use serde_json::Value;

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
