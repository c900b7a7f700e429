//! The tracing side of the repeated-event limiter: a layer wrapping the log writer (the fmt
//! layer) so suppressed WARN/ERROR events are not written, while traces still get them.
//!
//! The summary of an ended window cannot be logged with `tracing::warn!` from inside the
//! subscriber (a nested dispatch on the same thread is dropped by tracing), so it is built
//! as an event of this module's own static callsite and handed straight to the wrapped
//! layer. Windows are checked on every event, but only against an atomic "next due"
//! instant, so the common path takes no lock. What is still open at exit is logged by
//! [`RateLimiter::log_remaining`].

use std::fmt::{Debug, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tracing::field::{Field, FieldSet, Value, Visit, display};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_core::callsite::{DefaultCallsite, Identifier};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_subscriber::layer::{Context, Layer};

use super::{Limiter, Summary};
use crate::RateLimit;

/// Where "now" comes from; tests pass a fake clock.
pub(crate) type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Longest message kept as part of a key and repeated in its summary.
const MAX_MESSAGE: usize = 256;

/// `next_due` value meaning "no window open".
const NONE_DUE: u64 = u64::MAX;

type Key = (Identifier, String);

/// The limiter's state, shared by its layer and the [`crate::Telemetry`] that drains it.
#[derive(Clone)]
pub(crate) struct RateLimiter(Arc<State>);

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
}

struct State {
    limiter: Mutex<Limiter<Key>>,
    /// Nanoseconds after `base` at which the earliest window ends, or [`NONE_DUE`].
    next_due: AtomicU64,
    base: Instant,
    clock: Clock,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit, clock: Clock) -> Self {
        let base = clock();
        Self(Arc::new(State {
            limiter: Mutex::new(Limiter::new(limit)),
            next_due: AtomicU64::new(NONE_DUE),
            base,
            clock,
        }))
    }

    /// Wraps `inner` (the layer that writes log lines).
    pub(crate) fn layer<L>(&self, inner: L) -> RateLimited<L> {
        RateLimited {
            inner,
            limiter: self.clone(),
        }
    }

    /// Ends every open window and logs the summaries of those that suppressed events
    /// (at exit, through the ordinary dispatcher).
    pub(crate) fn log_remaining(&self) {
        let ended = {
            let mut limiter = self.lock();
            let ended = limiter.drain();
            self.store_due(limiter.next_due());
            ended
        };
        for s in ended {
            let text = summary_text(&s);
            let (suppressed, suppressed_target) = (s.suppressed, s.target);
            if s.level == Level::ERROR {
                tracing::error!(target: SUMMARY_TARGET, suppressed, suppressed_target, "{text}");
            } else {
                tracing::warn!(target: SUMMARY_TARGET, suppressed, suppressed_target, "{text}");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Limiter<Key>> {
        // A panic while counting leaves counts that are still usable.
        self.0
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn nanos(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.0.base).as_nanos();
        u64::try_from(nanos).unwrap_or(NONE_DUE - 1)
    }

    fn store_due(&self, due: Option<Instant>) {
        let value = due.map_or(NONE_DUE, |d| self.nanos(d));
        self.0.next_due.store(value, Ordering::Relaxed);
    }

    fn is_due(&self, now: Instant) -> bool {
        let due = self.0.next_due.load(Ordering::Relaxed);
        due != NONE_DUE && self.nanos(now) >= due
    }

    /// The verdict on `event` and the windows ended by now.
    fn judge(&self, event: &Event<'_>) -> (bool, Vec<Summary>) {
        let meta = event.metadata();
        let now = (self.0.clock)();
        let level = *meta.level();
        if level == Level::WARN || level == Level::ERROR {
            let message = message_of(event);
            let mut limiter = self.lock();
            let seen = limiter.observe(
                (meta.callsite(), message.clone()),
                level,
                meta.target(),
                &message,
                now,
            );
            self.store_due(limiter.next_due());
            (seen.pass, seen.ended)
        } else if self.is_due(now) {
            let mut limiter = self.lock();
            let ended = limiter.sweep(now);
            self.store_due(limiter.next_due());
            (true, ended)
        } else {
            (true, Vec::new())
        }
    }
}

/// A layer that forwards everything to `inner` except suppressed repeats.
pub(crate) struct RateLimited<L> {
    inner: L,
    limiter: RateLimiter,
}

impl<S: Subscriber, L: Layer<S>> Layer<S> for RateLimited<L> {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }
    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }
    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }
    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }
    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let (pass, ended) = self.limiter.judge(event);
        for summary in &ended {
            emit_summary(&self.inner, summary, ctx.clone());
        }
        if pass {
            self.inner.on_event(event, ctx);
        }
    }
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }
    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }
}

/// The event's `message` field as text, cut to [`MAX_MESSAGE`] bytes.
fn message_of(event: &Event<'_>) -> String {
    struct Message(String);
    impl Visit for Message {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.0.push_str(value);
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, "{value:?}");
            }
        }
    }
    let mut message = Message(String::new());
    event.record(&mut message);
    let mut text = message.0;
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn summary_text(s: &Summary) -> String {
    format!(
        "suppressed {} repeats within {}s of: {}",
        s.suppressed,
        s.window.as_secs(),
        s.message
    )
}

const SUMMARY_FIELDS: &[&str] = &["message", "suppressed", "suppressed_target"];
const SUMMARY_TARGET: &str = "dirsync_telemetry::ratelimit";

static WARN_CALLSITE: DefaultCallsite = DefaultCallsite::new(&WARN_SUMMARY);
static WARN_SUMMARY: Metadata<'static> = Metadata::new(
    "repeated events suppressed",
    SUMMARY_TARGET,
    Level::WARN,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(SUMMARY_FIELDS, Identifier(&WARN_CALLSITE)),
    Kind::EVENT,
);
static ERROR_CALLSITE: DefaultCallsite = DefaultCallsite::new(&ERROR_SUMMARY);
static ERROR_SUMMARY: Metadata<'static> = Metadata::new(
    "repeated events suppressed",
    SUMMARY_TARGET,
    Level::ERROR,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(SUMMARY_FIELDS, Identifier(&ERROR_CALLSITE)),
    Kind::EVENT,
);

/// Writes one summary line through `inner`, at the level of the suppressed events. It is
/// an explicit root event, so it gets no trace ids of whatever span happens to be current
/// (the JSON writer still names that span under `span`).
fn emit_summary<S: Subscriber, L: Layer<S>>(inner: &L, s: &Summary, ctx: Context<'_, S>) {
    let meta = if s.level == Level::ERROR {
        &ERROR_SUMMARY
    } else {
        &WARN_SUMMARY
    };
    let fields = meta.fields();
    let (Some(message), Some(suppressed), Some(target)) = (
        fields.field("message"),
        fields.field("suppressed"),
        fields.field("suppressed_target"),
    ) else {
        return;
    };
    let text = summary_text(s);
    let text = display(&text);
    let values = [
        (&message, Some(&text as &dyn Value)),
        (&suppressed, Some(&s.suppressed as &dyn Value)),
        (&target, Some(&s.target as &dyn Value)),
    ];
    let values = fields.value_set(&values);
    inner.on_event(&Event::new_child_of(None, meta, &values), ctx);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::testing::CapturedLogs;

    /// A limiter on a clock that moves only when the test says so.
    fn fake_clock() -> (Clock, Arc<AtomicU64>) {
        let t0 = Instant::now();
        let secs = Arc::new(AtomicU64::new(0));
        let at = secs.clone();
        let clock: Clock = Arc::new(move || t0 + Duration::from_secs(at.load(Ordering::Relaxed)));
        (clock, secs)
    }

    fn lines(logs: &CapturedLogs) -> Vec<serde_json::Value> {
        logs.json_lines()
    }

    #[test]
    fn repeats_are_suppressed_and_summarised_when_the_window_ends() {
        let (clock, secs) = fake_clock();
        let limiter = RateLimiter::new(RateLimit::default(), clock);
        let logs = CapturedLogs::default();
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(logs.clone());
        let subscriber = tracing_subscriber::registry().with(limiter.layer(fmt));
        let _guard = tracing::subscriber::set_default(subscriber);

        for _ in 0..8 {
            tracing::warn!(status = 503, "scim is down");
        }
        for i in 0..7 {
            // Same callsite, different messages: not repeats.
            tracing::warn!("batch {i} failed");
        }
        for _ in 0..7 {
            tracing::error!("broker gone");
        }
        for _ in 0..10 {
            tracing::info!("progress");
        }
        let written = lines(&logs);
        let count = |m: &str| written.iter().filter(|l| l["message"] == m).count();
        assert_eq!(count("scim is down"), 5);
        assert_eq!(count("batch 6 failed"), 1);
        assert_eq!(count("broker gone"), 5);
        assert_eq!(count("progress"), 10);
        assert_eq!(written.len(), 5 + 7 + 5 + 10);

        secs.store(59, Ordering::Relaxed);
        tracing::info!("still inside the window");
        assert_eq!(lines(&logs).len(), written.len() + 1);

        secs.store(60, Ordering::Relaxed);
        tracing::info!("tick");
        let after = lines(&logs);
        let new: Vec<_> = after[written.len() + 1..].to_vec();
        assert_eq!(new.len(), 3, "{new:#?}");
        let scim = new
            .iter()
            .find(|l| l["suppressed"] == 3)
            .expect("a summary of the scim warnings");
        assert_eq!(scim["level"], "WARN");
        assert_eq!(
            scim["message"],
            "suppressed 3 repeats within 60s of: scim is down"
        );
        assert_eq!(scim["target"], SUMMARY_TARGET);
        assert_eq!(
            scim["suppressed_target"],
            "dirsync_telemetry::ratelimit::layer::tests"
        );
        let broker = new.iter().find(|l| l["suppressed"] == 2).unwrap();
        assert_eq!(broker["level"], "ERROR");
        assert_eq!(new[2]["message"], "tick");

        // The next window writes the event again.
        tracing::warn!(status = 503, "scim is down");
        assert_eq!(lines(&logs).last().unwrap()["message"], "scim is down");
    }

    #[test]
    fn open_windows_are_logged_at_exit() {
        let (clock, _secs) = fake_clock();
        let limiter = RateLimiter::new(RateLimit::default(), clock);
        let logs = CapturedLogs::default();
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(logs.clone());
        let subscriber = tracing_subscriber::registry().with(limiter.layer(fmt));
        let _guard = tracing::subscriber::set_default(subscriber);
        for _ in 0..9 {
            tracing::error!("redis unreachable");
        }
        limiter.log_remaining();
        let last = lines(&logs).pop().unwrap();
        assert_eq!(last["level"], "ERROR");
        assert_eq!(
            last["message"],
            "suppressed 4 repeats within 60s of: redis unreachable"
        );
        assert_eq!(last["suppressed"], 4);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let (clock, _secs) = fake_clock();
        let limiter = RateLimiter::new(RateLimit::default(), clock);
        let logs = CapturedLogs::default();
        let fmt = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(logs.clone());
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(limiter.layer(fmt)),
        );
        let long = "é".repeat(300);
        for _ in 0..6 {
            tracing::warn!("{long}");
        }
        limiter.log_remaining();
        let last = lines(&logs).pop().unwrap();
        let text = last["fields"]["message"].as_str().unwrap();
        assert!(text.ends_with(&"é".repeat(128)), "{text}");
        assert!(!text.ends_with(&"é".repeat(129)), "{text}");
    }
}
