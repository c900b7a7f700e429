//! How long to hold a batch that failed for a transient reason before requeueing it.
//!
//! Quorum queues count deliveries (`x-delivery-count`) and drop or dead-letter a message
//! past their delivery limit, so requeueing at once during an outage of PostgreSQL, Redis
//! or the broker would burn through that limit in seconds. The hold doubles with each
//! delivery, capped, so the limit spans minutes of outage.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable};

/// Longest hold before a requeue.
pub const MAX_REQUEUE_DELAY: Duration = Duration::from_secs(60);

/// The broker's count of earlier deliveries of this message (0 on the first delivery).
pub fn delivery_count(headers: Option<&FieldTable>) -> u32 {
    let Some(value) = headers.and_then(|h| h.inner().get("x-delivery-count")) else {
        return 0;
    };
    let count: Option<i64> = match value {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    };
    count.and_then(|c| u32::try_from(c).ok()).unwrap_or(0)
}

/// `base` doubled per earlier delivery, capped at [`MAX_REQUEUE_DELAY`].
pub fn requeue_delay(base: Duration, delivery_count: u32) -> Duration {
    let factor = 2u32.saturating_pow(delivery_count.min(16));
    base.saturating_mul(factor).min(MAX_REQUEUE_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;
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
