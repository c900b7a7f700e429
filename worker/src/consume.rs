//! One delivery, from either lane: decoded, processed by [`BatchProcessor::process`] and
//! settled (ack on success, requeue on a transient failure or a panic, reject when it can
//! never succeed). The batch queue and the priority lane share this path, so a user
//! provisioned on demand goes through exactly the pipeline a run's batch does.
//!
//! Nothing is lost and nothing loops forever: both queues dead-letter (see
//! [`dirsync_proto::Topology::batch_queue_arguments`]) a rejected delivery at once and a
//! requeued one past the delivery limit, to the dead-letter queue, where a coordinator
//! records the batch as failed so its run completes, and keeps it for an operator to see
//! and re-drive.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dirsync_proto::BatchMessage;
use dirsync_telemetry::labels::{BatchOutcome, Queue};
use futures_util::FutureExt;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::batch::BatchProcessor;
use crate::observe::{batch_kind, error_type};
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

    /// The lane's `queue` metric label.
    pub fn queue_label(self) -> Queue {
        match self {
            Lane::Batches => Queue::Batches,
            Lane::Priority => Queue::Priority,
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
        error!(error = %e, "a batch task panicked outside its processing");
    }
}

/// Processes one delivery from `queue` and settles it: ack on success, requeue on a
/// transient failure or a panic of the processing (both counted by the broker against the
/// delivery limit), reject (no requeue: dead-lettered at once) when it can never succeed.
///
/// Everything happens inside a `batch` span (OpenTelemetry messaging conventions, kind
/// consumer), the child of the span that published the message when its headers carry W3C
/// trace context, so the batch's processing is part of its run's trace.
pub(crate) async fn handle_delivery(
    processor: Arc<BatchProcessor>,
    delivery: Delivery,
    base_delay: Duration,
    lane: Lane,
    queue: Arc<str>,
    stopping: CancellationToken,
) {
    let headers = delivery.properties.headers().as_ref();
    if let Some(lag) = publish_lag(headers, SystemTime::now()) {
        dirsync_telemetry::metrics().batch_lag(lane.queue_label(), lag);
    }
    let span = batch_span(&delivery, lane, &queue);
    // Before the span is first entered: that is when its OpenTelemetry span starts.
    dirsync_telemetry::amqp::set_parent_from(&span, headers);
    let work = async {
        let batch = match BatchMessage::decode(&delivery.data) {
            Ok(batch) => batch,
            Err(e) => {
                error!(error = %e, delivery_tag = delivery.delivery_tag, "undecodable batch, dead-lettering it");
                settle(&delivery, Settle::Reject).await;
                return;
            }
        };
        let span = tracing::Span::current();
        span.record("tenant_id", tracing::field::display(batch.tenant_id));
        span.record("run_id", tracing::field::display(batch.run_id));
        span.record("seq", batch.seq);
        span.record("users", batch.users.len());
        span.record("groups", batch.groups.len());
        span.record("dry_run", batch.dry_run);
        let kind = batch_kind(&batch);
        // A panic is treated like a transient failure: the broker counts the requeue, so a
        // batch that panics every time is dead-lettered at the limit instead of holding a
        // prefetch slot, unsettled, until the worker stops.
        let settled = match guarded(processor.process(&batch)).await {
            Err(panic) => {
                let count = delivery_count(delivery.properties.headers().as_ref());
                let hold = requeue_delay(base_delay, count);
                span.record("otel.status_code", "error");
                span.record("error.type", "panic");
                error!(panic = %panic, deliveries = count.saturating_add(1), ?hold, "batch processing panicked, requeueing it (dead-lettered past the delivery limit)");
                hold_back(hold, &stopping).await;
                settle(&delivery, Settle::Requeue).await
            }
            Ok(Ok(counts)) => {
                info!(
                    synced = counts.synced,
                    skipped = counts.skipped,
                    failed = counts.failed,
                    "batch done"
                );
                settle(&delivery, Settle::Ack).await
            }
            Ok(Err(e)) if e.is_retryable() => {
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
                span.record("otel.status_code", "error");
                span.record("error.type", error_type(&e));
                warn!(error = %e, deliveries = count.saturating_add(1), ?hold, "batch failed, requeueing it (dead-lettered past the delivery limit)");
                hold_back(hold, &stopping).await;
                settle(&delivery, Settle::Requeue).await
            }
            Ok(Err(e)) => {
                span.record("otel.status_code", "error");
                span.record("error.type", error_type(&e));
                error!(error = %e, "batch cannot succeed, dead-lettering it");
                settle(&delivery, Settle::Reject).await
            }
        };
        dirsync_telemetry::metrics().batch_processed(kind, settled);
    }
    .instrument(span);
    // A priority delivery's SCIM requests go ahead of the slots the batches reserved.
    match lane {
        Lane::Priority => crate::ratelimit::with_priority(work).await,
        Lane::Batches => work.await,
    }
}

/// Waits `hold` before a requeue, or only until the worker starts stopping: the wait merely
/// spaces out the redeliveries of a failing batch, and a stopping worker must hand the batch
/// back at once instead of keeping it (and its own exit) for up to a minute.
async fn hold_back(hold: Duration, stopping: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(hold) => {}
        () = stopping.cancelled() => {}
    }
}

/// Runs `work`, turning a panic into its message instead of unwinding the task.
async fn guarded<T>(work: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|panic| panic_message(panic.as_ref()))
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The `batch` span of a delivery (OpenTelemetry messaging conventions: kind consumer,
/// `process` operation); the batch's own fields are recorded once it is decoded.
fn batch_span(delivery: &Delivery, lane: Lane, queue: &str) -> tracing::Span {
    let span = info_span!(
        "batch",
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        messaging.system = "rabbitmq",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %queue,
        messaging.message.id = tracing::field::Empty,
        messaging.message.body.size = delivery.data.len(),
        messaging.rabbitmq.message.delivery_tag = delivery.delivery_tag,
        error.type = tracing::field::Empty,
        tenant_id = tracing::field::Empty,
        run_id = tracing::field::Empty,
        seq = tracing::field::Empty,
        users = tracing::field::Empty,
        groups = tracing::field::Empty,
        dry_run = tracing::field::Empty,
        redelivered = delivery.redelivered,
        lane = lane.as_str(),
    );
    if let Some(id) = delivery.properties.message_id() {
        span.record("messaging.message.id", id.as_str());
    }
    span
}

/// How long the message waited since its publisher stamped it (header
/// [`PUBLISHED_MS_HEADER`], unix milliseconds). `None` without a stamp, or when the stamp
/// is later than `now` (the hosts' clocks disagree): no lag is better than a wrong one.
pub fn publish_lag(headers: Option<&FieldTable>, now: SystemTime) -> Option<Duration> {
    let published_ms = match headers?.inner().get(PUBLISHED_MS_HEADER)? {
        AMQPValue::LongLongInt(ms) => u64::try_from(*ms).ok()?,
        AMQPValue::LongUInt(ms) => u64::from(*ms),
        AMQPValue::LongInt(ms) => u64::try_from(*ms).ok()?,
        AMQPValue::Timestamp(ms) => *ms,
        _ => return None,
    };
    let published = UNIX_EPOCH.checked_add(Duration::from_millis(published_ms))?;
    now.duration_since(published).ok()
}

/// The header in which the coordinator stamps a batch's publish time (unix ms, long-long).
pub const PUBLISHED_MS_HEADER: &str = "x-dirsync-published-ms";

enum Settle {
    Ack,
    Requeue,
    Reject,
}

/// Settles the delivery; returns what became of it (also when the channel is gone and the
/// broker requeues it by itself: the worker's decision is what counts).
async fn settle(delivery: &Delivery, how: Settle) -> BatchOutcome {
    let outcome = match how {
        Settle::Ack => BatchOutcome::Ok,
        Settle::Requeue => BatchOutcome::Requeued,
        Settle::Reject => BatchOutcome::Rejected,
    };
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
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopping_worker_hands_a_held_batch_back_at_once() {
        let stopping = CancellationToken::new();
        let waiting = tokio::spawn({
            let stopping = stopping.clone();
            async move { hold_back(Duration::from_secs(3600), &stopping).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the hold lasts while the worker runs"
        );
        stopping.cancel();
        // An hour's hold, cut short: the bound only keeps a broken test from hanging.
        tokio::time::timeout(Duration::from_secs(60), waiting)
            .await
            .expect("the hold ends when the worker stops")
            .unwrap();
    }

    fn stamped(value: AMQPValue) -> FieldTable {
        let mut headers = FieldTable::default();
        headers.insert(PUBLISHED_MS_HEADER.into(), value);
        headers
    }

    #[test]
    fn a_panic_s_message_is_kept() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        assert_eq!(panic_message(caught(|| panic!("boom")).as_ref()), "boom");
        assert_eq!(
            panic_message(caught(|| panic!("seq {}", 7)).as_ref()),
            "seq 7"
        );
        assert_eq!(
            panic_message(caught(|| std::panic::panic_any(7u8)).as_ref()),
            "a panic without a message"
        );
    }

    #[tokio::test]
    async fn a_panicking_batch_is_caught_with_its_message() {
        let panicking = async {
            if PUBLISHED_MS_HEADER.is_empty() {
                return 1u8;
            }
            panic!("mapping bug in seq {}", 3)
        };
        assert_eq!(guarded(panicking).await, Err("mapping bug in seq 3".into()));
        assert_eq!(guarded(async { 5u8 }).await, Ok(5));
    }

    #[test]
    fn the_lag_runs_from_the_publish_stamp() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_002_500);
        let cases = [
            (
                Some(stamped(AMQPValue::LongLongInt(1_700_000_000_000))),
                Some(Duration::from_millis(2_500)),
            ),
            (
                Some(stamped(AMQPValue::Timestamp(1_700_000_002_000))),
                Some(Duration::from_millis(500)),
            ),
            // the publisher's clock is ahead of ours
            (
                Some(stamped(AMQPValue::LongLongInt(1_700_000_003_000))),
                None,
            ),
            (Some(stamped(AMQPValue::LongLongInt(-5))), None),
            (
                Some(stamped(AMQPValue::LongString("1700000000000".into()))),
                None,
            ),
            (Some(FieldTable::default()), None),
            (None, None),
        ];
        for (i, (headers, lag)) in cases.into_iter().enumerate() {
            assert_eq!(publish_lag(headers.as_ref(), now), lag, "case {i}");
        }
    }
}
