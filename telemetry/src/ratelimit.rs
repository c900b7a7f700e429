//! Rate limiting of repeated WARN/ERROR log lines, the pure part.
//!
//! A failing dependency (Webex down, a broker reconnect loop) makes every batch log the
//! same error; thousands of identical lines bury everything else and cost money in a log
//! store. Events are grouped by a key (the layer uses callsite + message): the first
//! `max_repeats` of a key in a window pass, the rest are counted, and when the window ends
//! one [`Summary`] says how many were suppressed. Time is passed in, so tests drive a fake
//! clock. The tracing side lives in [`layer`].

pub(crate) mod layer;

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use tracing::Level;

use crate::RateLimit;

/// Keys tracked at once. Beyond it new keys pass unlimited (fail open) until windows end:
/// a flood of distinct messages must not grow memory without bound.
const MAX_KEYS: usize = 256;

/// One window of one key that suppressed events: written when the window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) level: Level,
    /// Target of the suppressed events (usually their module path).
    pub(crate) target: &'static str,
    pub(crate) message: String,
    pub(crate) suppressed: u64,
    pub(crate) window: Duration,
}

struct Window {
    start: Instant,
    seen: u64,
    level: Level,
    target: &'static str,
    message: String,
}

/// What [`Limiter::observe`] decided, and the windows that ended meanwhile.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Observation {
    pub(crate) pass: bool,
    pub(crate) ended: Vec<Summary>,
}

pub(crate) struct Limiter<K> {
    limit: RateLimit,
    windows: HashMap<K, Window>,
    /// Earliest end of a tracked window, so callers skip sweeping until then.
    next_due: Option<Instant>,
}

impl<K: Hash + Eq> Limiter<K> {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            windows: HashMap::new(),
            next_due: None,
        }
    }

    /// When the earliest tracked window ends (`None`: nothing tracked).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.next_due
    }

    /// Counts one event of `key` at `now`; the summaries of windows ended by `now`
    /// (including an earlier window of `key`) come back with the verdict.
    pub(crate) fn observe(
        &mut self,
        key: K,
        level: Level,
        target: &'static str,
        message: &str,
        now: Instant,
    ) -> Observation {
        let ended = self.sweep(now);
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_KEYS {
            return Observation { pass: true, ended };
        }
        let window = self.windows.entry(key).or_insert_with(|| Window {
            start: now,
            seen: 0,
            level,
            target,
            message: message.to_owned(),
        });
        window.seen += 1;
        let pass = window.seen <= u64::from(self.limit.max_repeats);
        let end = window.start + self.limit.window;
        self.next_due = Some(self.next_due.map_or(end, |due| due.min(end)));
        Observation { pass, ended }
    }

    /// Forgets the windows ended by `now`; returns the ones that suppressed something.
    pub(crate) fn sweep(&mut self, now: Instant) -> Vec<Summary> {
        if self.next_due.is_none_or(|due| now < due) {
            return Vec::new();
        }
        let (limit, length) = (self.limit, self.limit.window);
        let mut ended = Vec::new();
        self.windows.retain(|_, w| {
            if now < w.start + length {
                return true;
            }
            ended.extend(summary(w, limit));
            false
        });
        self.next_due = self.windows.values().map(|w| w.start + length).min();
        ended
    }

    /// Ends every window now (process exit): the summaries of all that suppressed events.
    pub(crate) fn drain(&mut self) -> Vec<Summary> {
        self.next_due = None;
        let limit = self.limit;
        self.windows
            .drain()
            .filter_map(|(_, w)| summary(&w, limit))
            .collect()
    }
}

/// The summary of an ended window, if it suppressed anything.
fn summary(w: &Window, limit: RateLimit) -> Option<Summary> {
    let suppressed = w.seen.saturating_sub(u64::from(limit.max_repeats));
    (suppressed > 0).then(|| Summary {
        level: w.level,
        target: w.target,
        message: w.message.clone(),
        suppressed,
        window: limit.window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        max_repeats: 5,
        window: Duration::from_secs(60),
    };

    fn warn(l: &mut Limiter<&'static str>, key: &'static str, now: Instant) -> Observation {
        l.observe(key, Level::WARN, "dirsync_worker::consume", key, now)
    }

    #[test]
    fn the_first_repeats_pass_and_the_rest_are_counted_until_the_window_ends() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LIMIT);
        let passed: Vec<bool> = (0..8)
            .map(|i| warn(&mut l, "scim down", t0 + Duration::from_secs(i)).pass)
            .collect();
        assert_eq!(passed, [true, true, true, true, true, false, false, false]);
        assert_eq!(l.next_due(), Some(t0 + LIMIT.window));
        assert!(l.sweep(t0 + Duration::from_secs(59)).is_empty());

        let ended = l.sweep(t0 + LIMIT.window);
        assert_eq!(
            ended,
            [Summary {
                level: Level::WARN,
                target: "dirsync_worker::consume",
                message: "scim down".to_owned(),
                suppressed: 3,
                window: LIMIT.window,
            }]
        );
        assert_eq!(l.next_due(), None);
        // A new window: the same event passes again.
        assert!(warn(&mut l, "scim down", t0 + Duration::from_secs(61)).pass);
    }

    #[test]
    fn keys_are_limited_independently_and_quiet_windows_end_silently() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LIMIT);
        for i in 0..7 {
            warn(&mut l, "a", t0 + Duration::from_secs(i));
        }
        let later = t0 + Duration::from_secs(30);
        assert!(warn(&mut l, "b", later).pass);
        assert_eq!(l.next_due(), Some(t0 + LIMIT.window));

        // The next event of any key after "a"'s window ends reports "a".
        let o = warn(&mut l, "b", t0 + Duration::from_secs(65));
        assert!(o.pass);
        assert_eq!(o.ended.len(), 1);
        assert_eq!(
            (o.ended[0].message.as_str(), o.ended[0].suppressed),
            ("a", 2)
        );
        assert_eq!(l.next_due(), Some(later + LIMIT.window));
        // "b" never exceeded the limit: its window ends without a summary.
        assert!(l.sweep(later + LIMIT.window).is_empty());
    }

    #[test]
    fn an_event_after_its_own_window_reports_the_old_window_and_starts_a_new_one() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LIMIT);
        for _ in 0..6 {
            warn(&mut l, "a", t0);
        }
        let o = warn(&mut l, "a", t0 + Duration::from_secs(120));
        assert!(o.pass);
        assert_eq!(o.ended.len(), 1);
        assert_eq!(o.ended[0].suppressed, 1);
    }

    #[test]
    fn draining_reports_open_windows_that_suppressed() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LIMIT);
        for _ in 0..9 {
            warn(&mut l, "a", t0);
        }
        warn(&mut l, "b", t0);
        let drained = l.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(
            (drained[0].message.as_str(), drained[0].suppressed),
            ("a", 4)
        );
        assert_eq!(l.next_due(), None);
        assert!(l.drain().is_empty());
    }

    #[test]
    fn beyond_the_key_budget_new_keys_pass_unlimited() {
        let t0 = Instant::now();
        let mut l: Limiter<String> = Limiter::new(LIMIT);
        for i in 0..MAX_KEYS {
            l.observe(format!("k{i}"), Level::ERROR, "t", "m", t0);
        }
        for _ in 0..10 {
            assert!(l.observe("new".to_owned(), Level::ERROR, "t", "m", t0).pass);
        }
        assert_eq!(l.windows.len(), MAX_KEYS);
    }
}
