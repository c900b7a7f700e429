//! The fleet's gauges, which no single batch or run can record: the depth and consumers of
//! the broker's batch queues (how far the workers are behind, and how many there are) and
//! the number of quarantined tenants. A serving coordinator samples them every
//! [`INTERVAL`]; with several coordinators each reports the same values, which a dashboard
//! takes the maximum of.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;

use dirsync_telemetry::labels::Queue;

use crate::{CoordinatorError, Runner};

/// How often the gauges are sampled.
pub const INTERVAL: Duration = Duration::from_secs(15);

/// Samples the gauges until `cancel` fires; a failed sample is logged and retried at the
/// next tick.
pub async fn serve(runner: Runner, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Shutdown does not wait for a sample stuck on a dead broker or database.
        let sampled = tokio::select! {
            _ = cancel.cancelled() => return,
            sampled = sample(&runner) => sampled,
        };
        if let Err(e) = sampled {
            tracing::warn!(error = %e, "cannot sample the fleet's gauges");
        }
    }
}

/// One sample of every gauge.
pub async fn sample(runner: &Runner) -> Result<(), CoordinatorError> {
    let quarantined: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenants WHERE status = 'Quarantine'")
            .fetch_one(runner.pool())
            .await?;
    dirsync_telemetry::metrics().tenants_quarantined(quarantined.max(0) as u64);
    // The runs' connection, opened again if the broker dropped it: a gauge that failed
    // until the next run happened to reconnect would go blind after a broker restart.
    let amqp = runner.connection().await?;
    // A passive declare of a queue that is not there closes its channel: one per sample.
    let channel = amqp.create_channel().await?;
    let topology = runner.topology();
    for (queue, name) in [
        (Queue::Batches, topology.batch_queue()),
        (Queue::Priority, topology.priority_queue()),
    ] {
        let declared = channel
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(q) => dirsync_telemetry::metrics().queue_state(
                queue,
                u64::from(q.message_count()),
                u64::from(q.consumer_count()),
            ),
            // Not declared yet: nobody has published or consumed.
            Err(_) => return Ok(()),
        }
    }
    let _ = channel.close(200, "sampled".into()).await;
    Ok(())
}
