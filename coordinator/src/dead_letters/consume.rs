//! The consumer of the dead-letter queue: each dead letter is kept and its batch recorded
//! as failed ([`super::store::take`]), its failures added to the run's live counters, and
//! only then acked; what cannot be stored yet (PostgreSQL or Redis down) is requeued after
//! a pause. Every few seconds it also resolves re-driven letters whose batch was recorded.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use dirsync_proto::Topology;

use super::letter::DeadLetter;
use super::{counters, store};
use crate::CoordinatorError;

/// Dead letters taken at once: they are rare, and each is one transaction.
const PREFETCH: u16 = 4;
/// Pause before requeueing a letter that could not be stored, and before reconnecting.
const PAUSE: Duration = Duration::from_secs(1);
/// How often re-driven letters are looked at (see [`store::resolve_recorded`]).
const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// Consumes the dead-letter queue of `topology` until `shutdown`, reconnecting to the
/// broker whenever the connection breaks. `redis`: the live counters; without it only
/// PostgreSQL is written (progress then reads PostgreSQL).
pub async fn serve(
    pool: PgPool,
    amqp_url: String,
    topology: Topology,
    redis: Option<ConnectionManager>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match consume(&pool, &amqp_url, &topology, redis.clone(), &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "dead-letter consumer lost the broker; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(PAUSE) => {}
                }
            }
        }
    }
}

async fn consume(
    pool: &PgPool,
    amqp_url: &str,
    topology: &Topology,
    mut redis: Option<ConnectionManager>,
    shutdown: &CancellationToken,
) -> Result<(), CoordinatorError> {
    let connection = crate::broker::connect(amqp_url).await?;
    let channel = connection.create_channel().await?;
    crate::broker::declare_topology(&channel, topology).await?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            topology.dead_letter_queue().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %topology.dead_letter_queue(), "consuming dead letters");
    let mut resolve = tokio::time::interval(RESOLVE_EVERY);
    let outcome = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => handle(pool, topology, redis.as_mut(), delivery).await,
                Some(Err(e)) => break Err(e.into()),
                None => break Err(CoordinatorError::Broker(lapin::Error::from(
                    lapin::ErrorKind::InvalidChannelState(
                        lapin::ChannelState::Closed,
                        "the broker ended the dead-letter consumer",
                    ),
                ))),
            },
            _ = resolve.tick() => match store::resolve_recorded(pool).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(resolved = n, "re-driven batches recorded"),
                Err(e) => tracing::warn!(error = %e, "cannot resolve re-driven dead letters"),
            },
        }
    };
    let _ = connection
        .close(200, "dead-letter consumer stopping".into())
        .await;
    outcome
}

/// Takes one dead letter; acks it once it is stored and counted, else requeues it.
async fn handle(
    pool: &PgPool,
    topology: &Topology,
    redis: Option<&mut ConnectionManager>,
    delivery: Delivery,
) {
    let letter = DeadLetter::read(delivery.properties.headers().as_ref(), &delivery.data);
    let stored = match store::take(pool, &letter).await {
        Ok(taken) => match (taken.counted, redis) {
            (Some(batch), Some(conn)) => counters::add_failed(conn, topology, batch)
                .await
                .map(|_| taken)
                .map_err(|e| format!("redis: {e}")),
            _ => Ok(taken),
        },
        Err(e) => Err(e.to_string()),
    };
    let settled = match stored {
        Ok(taken) => {
            if taken.newly {
                tracing::warn!(
                    dead_letter = %taken.id,
                    tenant_id = ?letter.tenant.map(|t| t.to_string()),
                    run_id = ?letter.run.map(|r| r.to_string()),
                    seq = ?letter.seq,
                    queue = %letter.queue,
                    reason = %letter.reason,
                    deliveries = ?letter.delivery_count,
                    decodable = letter.decode_error.is_none(),
                    users_failed = letter.users,
                    groups_failed = letter.groups,
                    "batch dead-lettered; recorded as failed"
                );
            }
            delivery.acker.ack(BasicAckOptions::default()).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a dead letter yet; requeueing it");
            tokio::time::sleep(PAUSE).await;
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await
        }
    };
    if let Err(e) = settled {
        // The channel is gone: the broker hands the letter over again, and taking it twice
        // changes nothing.
        tracing::warn!(error = %e, "cannot settle a dead letter");
    }
}
