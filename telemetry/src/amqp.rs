//! W3C trace context in AMQP message headers, so a batch's trace runs from the
//! coordinator's publish through the queue into the worker that handles it.
//!
//! The publisher writes `traceparent` (and `tracestate`) into the message's header table
//! from the current tracing span; the consumer reads them and makes the remote span the
//! parent of its own span. Header values are AMQP long strings; short strings are read too.
//!
//! ```ignore
//! // coordinator, inside the publish span:
//! let props = BasicProperties::default().with_headers(dirsync_telemetry::amqp::inject_current());
//! // worker, before the span is entered:
//! let span = tracing::info_span!("batch.process", otel.kind = "consumer");
//! dirsync_telemetry::amqp::set_parent_from(&span, delivery.properties.headers().as_ref());
//! handle(delivery).instrument(span).await;
//! ```

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, global};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The message header with the publish time (unix milliseconds, an AMQP long-long int):
/// the consumer's lag is its start time minus this.
pub const PUBLISHED_MS_HEADER: &str = "x-dirsync-published-ms";

/// A header table holding the current span's trace context.
///
/// Reading the current span's context starts its OpenTelemetry span, so call this inside
/// the span that should be the consumer's parent, not before creating it.
pub fn inject_current() -> FieldTable {
    let mut headers = FieldTable::default();
    inject_into(&mut headers);
    headers
}

/// Adds the current span's trace context to `headers` (replacing earlier trace headers,
/// keeping the others).
pub fn inject_into(headers: &mut FieldTable) {
    inject_context(&tracing::Span::current().context(), headers);
}

/// Adds the trace context of `cx` to `headers`.
pub fn inject_context(cx: &Context, headers: &mut FieldTable) {
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut HeaderInjector(headers)));
}

/// The remote context carried by `headers` (an empty context when they carry none).
pub fn extract(headers: &FieldTable) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Makes the span of `headers`' trace context the parent of `span`.
///
/// Call it before `span` is entered (or instrumented and polled): an OpenTelemetry span
/// starts when its tracing span is first entered and its parent is fixed then. Without
/// headers, or without trace context in them, `span` stays a root. A failure (span already
/// started, filtered out, or no OpenTelemetry layer) is logged at DEBUG: the message is
/// handled either way.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&FieldTable>) {
    let Some(headers) = headers else { return };
    let parent = extract(headers);
    if !parent.span().span_context().is_valid() {
        return;
    }
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "trace context from message headers not applied");
    }
}

/// Writes propagator fields as AMQP long strings.
struct HeaderInjector<'a>(&'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(
            ShortString::from(key),
            AMQPValue::LongString(LongString::from(value)),
        );
    }
}

/// Reads propagator fields from AMQP string headers; other value types are ignored.
struct HeaderExtractor<'a>(&'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(key)? {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            AMQPValue::ShortString(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}

/// An AMQP header value as an integer, whatever integer width the broker or publisher
/// chose (RabbitMQ writes `x-delivery-count` as a long-long, other peers may not).
pub fn header_int(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceId};
    use tracing::Instrument as _;

    use super::*;
    use crate::testing::TestTelemetry;

    fn header(headers: &FieldTable, key: &str) -> Option<String> {
        HeaderExtractor(headers).get(key).map(str::to_owned)
    }

    #[test]
    fn injection_writes_a_w3c_traceparent_of_the_current_span() {
        let coordinator = TestTelemetry::new("coordinator");
        let _guard = coordinator.set_default();
        let mut headers = FieldTable::default();
        headers.insert("x-dirsync".into(), AMQPValue::LongString("kept".into()));
        tracing::info_span!("publish").in_scope(|| inject_into(&mut headers));

        let spans = coordinator.spans();
        assert_eq!(spans.len(), 1);
        let sc = &spans[0].span_context;
        assert_eq!(
            header(&headers, "traceparent").unwrap(),
            format!("00-{}-{}-01", sc.trace_id(), sc.span_id())
        );
        assert_eq!(header(&headers, "x-dirsync").as_deref(), Some("kept"));
    }

    #[tokio::test]
    async fn the_consumer_span_continues_the_producer_trace() {
        let coordinator = TestTelemetry::new("coordinator");
        let worker = TestTelemetry::new("worker");
        let headers = {
            let _guard = coordinator.set_default();
            tracing::info_span!("batch.publish", otel.kind = "producer").in_scope(inject_current)
        };
        {
            let _guard = worker.set_default();
            let span = tracing::info_span!("batch.process", otel.kind = "consumer");
            set_parent_from(&span, Some(&headers));
            async { tracing::info!("handled") }.instrument(span).await;
        }
        let (published, processed) = (coordinator.spans(), worker.spans());
        assert_eq!((published.len(), processed.len()), (1, 1));
        let (producer, consumer) = (&published[0], &processed[0]);
        assert_eq!(
            consumer.span_context.trace_id(),
            producer.span_context.trace_id()
        );
        assert_eq!(consumer.parent_span_id, producer.span_context.span_id());
        assert!(consumer.parent_span_is_remote);
        assert_eq!(consumer.span_kind, opentelemetry::trace::SpanKind::Consumer);
        assert_eq!(producer.span_kind, opentelemetry::trace::SpanKind::Producer);
    }

    #[test]
    fn without_trace_headers_the_consumer_span_is_a_root() {
        let worker = TestTelemetry::new("worker");
        let _guard = worker.set_default();
        let mut foreign = FieldTable::default();
        foreign.insert("traceparent".into(), AMQPValue::LongLongInt(7));
        for headers in [None, Some(&FieldTable::default()), Some(&foreign)] {
            let span = tracing::info_span!("batch.process");
            set_parent_from(&span, headers);
            span.in_scope(|| {});
        }
        let spans = worker.spans();
        assert_eq!(spans.len(), 3);
        for span in &spans {
            assert_eq!(span.parent_span_id, SpanId::INVALID);
            assert_ne!(span.span_context.trace_id(), TraceId::INVALID);
        }
    }

    #[test]
    fn short_string_headers_are_read_too() {
        global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let mut headers = FieldTable::default();
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        headers.insert(
            "traceparent".into(),
            AMQPValue::ShortString(traceparent.into()),
        );
        let cx = extract(&headers);
        let span = cx.span();
        assert_eq!(
            span.span_context().trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(span.span_context().is_remote());
    }
}
