//! How long to hold a batch that failed for a transient reason before requeueing it.
//!
//! Quorum queues count deliveries (`x-delivery-count`) and drop or dead-letter a message
//! past their delivery limit, so requeueing at once during an outage of PostgreSQL, Redis
//! or the broker would burn through that limit in seconds. The hold doubles with each
//! delivery, capped, so the limit spans minutes of outage: with the default limit
//! (`Topology::delivery_limit`, 10) and the default 2 s first hold, about 6 minutes
//! ([`patience`]). A batch still failing then is dead-lettered and recorded as failed by a
//! coordinator, which keeps it for an operator to re-drive.

use std::time::Duration;

use lapin::types::FieldTable;

/// Longest hold before a requeue.
pub const MAX_REQUEUE_DELAY: Duration = Duration::from_secs(60);

/// The broker's count of earlier deliveries of this message (0 on the first delivery).
pub fn delivery_count(headers: Option<&FieldTable>) -> u32 {
    let Some(value) = headers.and_then(|h| h.inner().get("x-delivery-count")) else {
        return 0;
    };
    let count = dirsync_telemetry::amqp::header_int(value);
    count.and_then(|c| u32::try_from(c).ok()).unwrap_or(0)
}

/// `base` doubled per earlier delivery, capped at [`MAX_REQUEUE_DELAY`].
pub fn requeue_delay(base: Duration, delivery_count: u32) -> Duration {
    let factor = 2u32.saturating_pow(delivery_count.min(16));
    base.saturating_mul(factor).min(MAX_REQUEUE_DELAY)
}

/// The total hold a batch that fails every time goes through before the broker
/// dead-letters it: the holds of its first `delivery_limit` deliveries.
pub fn patience(base: Duration, delivery_limit: u32) -> Duration {
    (0..delivery_limit)
        .map(|count| requeue_delay(base, count))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::AMQPValue;
    use lapin::types::ShortString;

    fn headers(value: AMQPValue) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(ShortString::from("x-delivery-count"), value);
        t
    }

    #[test]
    fn reads_the_delivery_count() {
        let cases = vec![
            (None, 0),
            (Some(FieldTable::default()), 0),
            (Some(headers(AMQPValue::LongLongInt(3))), 3),
            (Some(headers(AMQPValue::LongInt(7))), 7),
            (Some(headers(AMQPValue::ShortUInt(2))), 2),
            (Some(headers(AMQPValue::LongLongInt(-1))), 0),
            (Some(headers(AMQPValue::Boolean(true))), 0),
        ];
        for (h, expected) in cases {
            assert_eq!(delivery_count(h.as_ref()), expected, "{h:?}");
        }
    }

    #[test]
    fn the_default_limit_rides_out_minutes_of_outage() {
        let limit = dirsync_proto::topology::DEFAULT_DELIVERY_LIMIT;
        // 2 + 4 + 8 + 16 + 32 + 5 × 60
        assert_eq!(
            patience(Duration::from_secs(2), limit),
            Duration::from_secs(362)
        );
        assert_eq!(
            patience(Duration::from_millis(1), 3),
            Duration::from_millis(7)
        );
        assert_eq!(patience(Duration::from_secs(2), 0), Duration::ZERO);
    }

    #[test]
    fn delay_doubles_and_is_capped() {
        let base = Duration::from_secs(2);
        let cases = [
            (0, 2),
            (1, 4),
            (2, 8),
            (4, 32),
            (5, 60),
            (40, 60),
            (u32::MAX, 60),
        ];
        for (count, secs) in cases {
            assert_eq!(
                requeue_delay(base, count),
                Duration::from_secs(secs),
                "count {count}"
            );
        }
    }
}
