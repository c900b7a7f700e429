//! Injected failures: the five ways Graph says "your delta state is gone" after a
//! synchronization reset (graph.md §1.4, §1.8 F5), and transient 503/504 answers.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::delta::{DeltaError, SYNC_STATE_NOT_FOUND};
use super::render::Selection;

/// How deltaLinks issued before a reset are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetMode {
    /// `410 Gone` + `Location` with an empty `$deltatoken=` (an initial query).
    GoneWithLocation,
    /// `410 Gone` without `Location`.
    GoneWithoutLocation,
    /// `400 syncStateNotFound`, as for an expired token.
    SyncStateNotFound,
    /// `410 SyncStateNotFound` (capital S), as seen in the wild.
    SyncStateNotFoundCapitalised,
    /// `400` whose `resyncRequired` code sits in a nested `innerError`.
    ResyncRequiredNested,
}

const RESYNC_REQUIRED: &str = "Resync required.";
const TOKEN_NO_LONGER_VALID: &str =
    "The delta token is no longer valid, and the app must reset the sync state.";

impl ResetMode {
    /// The refusal of a pre-reset deltaLink of a chain with `selection`, links on `base_url`.
    pub(crate) fn refusal(self, base_url: &str, selection: Selection) -> DeltaError {
        let gone = |code: &'static str, message: &str| DeltaError {
            status: StatusCode::GONE,
            code,
            message: message.into(),
            ..DeltaError::default()
        };
        let refusal = match self {
            ResetMode::GoneWithLocation => {
                // The initial query of the same chain: its `$select` and an empty token.
                let select = selection
                    .query()
                    .map(|s| format!("$select={s}&"))
                    .unwrap_or_default();
                DeltaError {
                    location: Some(format!("{base_url}/v1.0/users/delta?{select}$deltatoken=")),
                    ..gone("resyncRequired", RESYNC_REQUIRED)
                }
            }
            ResetMode::GoneWithoutLocation => gone("resyncRequired", RESYNC_REQUIRED),
            ResetMode::SyncStateNotFound => DeltaError::sync_state_not_found(),
            ResetMode::SyncStateNotFoundCapitalised => {
                gone("SyncStateNotFound", SYNC_STATE_NOT_FOUND)
            }
            ResetMode::ResyncRequiredNested => {
                let mut inner = Map::new();
                inner.insert(
                    "innerError".into(),
                    json!({ "code": "resyncRequired", "message": TOKEN_NO_LONGER_VALID }),
                );
                DeltaError {
                    status: StatusCode::BAD_REQUEST,
                    code: "badRequest",
                    message: TOKEN_NO_LONGER_VALID.into(),
                    inner,
                    ..DeltaError::default()
                }
            }
        };
        DeltaError {
            reset: true,
            ..refusal
        }
    }
}

/// An injected transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transient {
    ServiceUnavailable,
    GatewayTimeout,
}

impl Transient {
    /// The fault of request `seq` (from 1) when every `every`th fails: 503, 504, 503, …
    pub(crate) fn nth(seq: u64, every: u64) -> Option<Transient> {
        if every == 0 || !seq.is_multiple_of(every) {
            return None;
        }
        Some(if (seq / every) % 2 == 1 {
            Transient::ServiceUnavailable
        } else {
            Transient::GatewayTimeout
        })
    }

    /// Status, Graph error code and message (Graph errors doc).
    pub(crate) fn answer(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Transient::ServiceUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is temporarily unavailable for maintenance or is overloaded. You may repeat the request after a delay.",
            ),
            Transient::GatewayTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "The operation timed out before completion.",
            ),
        }
    }
}

/// The extra `innerError` members of a 429 (throttling doc "Sample response").
pub(crate) fn throttled_inner() -> Map<String, Value> {
    let mut inner = Map::new();
    inner.insert("code".into(), json!("429"));
    inner.insert("status".into(), json!("429"));
    inner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_faults_alternate() {
        let got: Vec<Option<Transient>> = (1..=9).map(|seq| Transient::nth(seq, 3)).collect();
        use Transient::*;
        assert_eq!(
            got,
            [
                None,
                None,
                Some(ServiceUnavailable),
                None,
                None,
                Some(GatewayTimeout),
                None,
                None,
                Some(ServiceUnavailable)
            ]
        );
        assert_eq!(Transient::nth(5, 0), None);
        assert_eq!(ServiceUnavailable.answer().0.as_u16(), 503);
        assert_eq!(GatewayTimeout.answer().0.as_u16(), 504);
    }

    #[test]
    fn reset_refusals() {
        let selection = Selection::parse(Some("displayName,mail")).unwrap();
        // (mode, status, code, Location, nested code)
        let cases = [
            (
                ResetMode::GoneWithLocation,
                410,
                "resyncRequired",
                Some("http://h/v1.0/users/delta?$select=displayName,mail&$deltatoken="),
                None,
            ),
            (
                ResetMode::GoneWithoutLocation,
                410,
                "resyncRequired",
                None,
                None,
            ),
            (
                ResetMode::SyncStateNotFound,
                400,
                "syncStateNotFound",
                None,
                None,
            ),
            (
                ResetMode::SyncStateNotFoundCapitalised,
                410,
                "SyncStateNotFound",
                None,
                None,
            ),
            (
                ResetMode::ResyncRequiredNested,
                400,
                "badRequest",
                None,
                Some("resyncRequired"),
            ),
        ];
        for (mode, status, code, location, nested) in cases {
            let e = mode.refusal("http://h", selection);
            assert!(e.reset);
            assert_eq!(
                (
                    e.status.as_u16(),
                    e.code,
                    e.location.as_deref(),
                    e.inner
                        .get("innerError")
                        .and_then(|i| i.get("code"))
                        .and_then(Value::as_str)
                ),
                (status, code, location, nested),
                "{mode:?}"
            );
        }
        let wire: Vec<String> = [
            ResetMode::GoneWithLocation,
            ResetMode::SyncStateNotFoundCapitalised,
            ResetMode::ResyncRequiredNested,
        ]
        .iter()
        .map(|m| serde_json::to_string(m).unwrap())
        .collect();
        assert_eq!(
            wire,
            [
                "\"gone_with_location\"",
                "\"sync_state_not_found_capitalised\"",
                "\"resync_required_nested\""
            ]
        );
    }
}
