//! JSON log lines carry the OpenTelemetry `trace_id` and `span_id` of the span they happen
//! in, so a line found in the logs leads to its trace and back.
//!
//! tracing-opentelemetry keeps its per-span data private, so the ids are read from the
//! OpenTelemetry context that its layer makes current while a tracing span is entered
//! (context activation, on by default). An event outside any span, or an explicit root
//! event (`parent: None`), gets no ids.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps the stock JSON event formatter and appends the ids as two more members of the
/// object. (Text lines stay as they are: buffering them would lose their colours, and a
/// person at a terminal follows spans by their names.)
pub(crate) struct WithTraceIds<F>(pub(crate) F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        match line.trim_end().strip_suffix('}') {
            Some(open) if ids.is_valid() && !event.is_root() => writeln!(
                writer,
                "{open},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                ids.trace_id(),
                ids.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}
