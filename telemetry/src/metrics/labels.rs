//! The closed sets of attribute values the fleet's metrics take.
//!
//! Every label is an enum, so no call site can put an id, a tenant or an error text into a
//! label and blow up the number of series; the HTTP status code is the one open-ended
//! value, and it is bounded by HTTP itself.

/// An enum whose variants are the values of one metric attribute.
macro_rules! label {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $value:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $value, "`")] $variant),+
        }

        impl $name {
            /// The attribute value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value),+
                }
            }
        }
    };
}

label! {
    /// What became of a batch delivery (`outcome` of `dirsync.batches.processed`).
    BatchOutcome { Ok => "ok", Requeued => "requeued", Rejected => "rejected" }
}

label! {
    /// What a batch carried (`kind` of `dirsync.batches.processed`).
    BatchKind { Users => "users", Groups => "groups", DryRun => "dry_run" }
}

label! {
    /// The result for one directory object (`outcome` of `dirsync.objects`).
    ObjectOutcome { Synced => "synced", Skipped => "skipped", Failed => "failed" }
}

label! {
    /// What was done (or tried) to one directory object (`action` of `dirsync.objects`).
    ObjectAction {
        Create => "create",
        Update => "update",
        Deactivate => "deactivate",
        Delete => "delete",
        Skip => "skip",
        Fail => "fail",
    }
}

label! {
    /// Why a SCIM request was retried (`reason` of `dirsync.scim.retries`).
    RetryReason { Throttled => "throttled", ServerError => "server_error", Transport => "transport" }
}

label! {
    /// Which broker queue (`queue` of `dirsync.queue.depth` and `dirsync.queue.consumers`).
    Queue { Batches => "batches", Priority => "priority" }
}

label! {
    /// Initial (full) or incremental run (`kind` of `dirsync.runs`, `dirsync.run.duration`).
    RunKind { Initial => "initial", Incremental => "incremental" }
}

label! {
    /// How a run ended (`outcome` of `dirsync.runs` and `dirsync.run.duration`).
    RunOutcome {
        Completed => "completed",
        Failed => "failed",
        Held => "held",
        Cancelled => "cancelled",
    }
}

label! {
    /// Which Microsoft Graph request (`kind` of `dirsync.graph.requests`).
    GraphRequestKind {
        UsersDelta => "users_delta",
        GroupsDelta => "groups_delta",
        Photo => "photo",
        Other => "other",
    }
}

/// `http.request.method`: the known methods as themselves, anything else as `_OTHER` (the
/// OpenTelemetry convention), so a bad caller cannot add series.
pub(crate) fn http_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .unwrap_or("_OTHER")
}

/// The class of an HTTP status (`2xx` … `5xx`), `transport` when no response came back.
pub(crate) fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "transport",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_http_collapse_to_other() {
        assert_eq!(http_method("patch"), "PATCH");
        assert_eq!(http_method("POST"), "POST");
        assert_eq!(http_method("BREW"), "_OTHER");
    }

    #[test]
    fn statuses_are_classed() {
        assert_eq!(status_class(Some(200)), "2xx");
        assert_eq!(status_class(Some(429)), "4xx");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(Some(999)), "other");
        assert_eq!(status_class(None), "transport");
    }
}
