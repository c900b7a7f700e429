//! Opaque delta state tokens (`$skiptoken`, `$deltatoken`): base64url of a small JSON document
//! carrying the tenant instance, the `$select` of the initial request and where the round is.
//!
//! Graph's tokens are opaque too; clients must follow links verbatim, so the encoding is free.
//! Decoding never panics: anything malformed is simply `None` (→ `syncStateNotFound`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::paging::Paging;
use super::store::RoundCursor;

/// Everything a state token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SyncState {
    /// The tenant instance's epoch.
    #[serde(rename = "e")]
    pub epoch: u64,
    /// `$select` of the initial request as [`PropSet`](crate::synthetic::PropSet) bits; `None`
    /// when there was no `$select`.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub select: Option<u32>,
    #[serde(rename = "p")]
    pub phase: Phase,
    /// Where the round's paging quirks are (skiptokens only, and only when quirks are on).
    #[serde(rename = "q", default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
    /// The ids of a `$filter=id eq …` chain: only those users are read.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Vec<String>>,
}

/// Where a token points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Phase {
    /// `$skiptoken` of an initial round: live users as of version `upto`, after id `after`.
    #[serde(rename = "i")]
    Initial { upto: u64, after: String },
    /// `$skiptoken` of a delta round from `base` to `upto`, after the cursor.
    #[serde(rename = "r")]
    Round {
        base: u64,
        upto: u64,
        after: RoundCursor,
    },
    /// `$deltatoken`: the next round starts after version `base`; issued at `issued_ms`
    /// (milliseconds since the Unix epoch) for expiry, in reset generation `generation`.
    #[serde(rename = "d")]
    Delta {
        base: u64,
        issued_ms: u64,
        #[serde(rename = "g", default)]
        generation: u64,
    },
}

/// Everything a `groups/delta` state token says. Its phases have their own tags, so a users
/// token never decodes as a groups token or the other way round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupSyncState {
    #[serde(rename = "e")]
    pub epoch: u64,
    /// `$select` as [`GroupProps`](super::group_render::GroupProps) bits; `None` without one.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub select: Option<u8>,
    #[serde(rename = "p")]
    pub phase: GroupPhase,
}

/// Where a groups token points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum GroupPhase {
    /// Initial round as of `upto`: the next page starts at group id `at` (inclusive), member
    /// offset `offset`.
    #[serde(rename = "gi")]
    Initial {
        upto: u64,
        at: String,
        offset: usize,
    },
    /// Delta round from `base` to `upto`: the next page starts at key `at`, member offset
    /// `offset`.
    #[serde(rename = "gr")]
    Round {
        base: u64,
        upto: u64,
        at: (u64, usize),
        offset: usize,
    },
    /// `$deltatoken`, as [`Phase::Delta`].
    #[serde(rename = "gd")]
    Delta {
        base: u64,
        issued_ms: u64,
        #[serde(rename = "g", default)]
        generation: u64,
    },
}

impl GroupSyncState {
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub(crate) fn decode(token: &str) -> Option<GroupSyncState> {
        let json = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

impl SyncState {
    pub(crate) fn encode(&self) -> String {
        // Serialising plain integers and strings cannot fail; an empty token would only ever
        // decode as invalid, never as someone else's state.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub(crate) fn decode(token: &str) -> Option<SyncState> {
        let json = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let states = [
            SyncState {
                epoch: 1,
                select: None,
                phase: Phase::Initial {
                    upto: 0,
                    after: "abc".into(),
                },
                paging: None,
                filter: None,
            },
            SyncState {
                epoch: u64::MAX,
                select: Some(7),
                phase: Phase::Round {
                    base: 3,
                    upto: 9,
                    after: (4, 17),
                },
                paging: Some(Paging {
                    emitted: 41,
                    page: 3,
                    pending: vec![7, 12],
                    done: true,
                }),
                filter: Some(vec!["a".into(), "b".into()]),
            },
            SyncState {
                epoch: 2,
                select: Some(0),
                phase: Phase::Delta {
                    base: 12,
                    issued_ms: 1_700_000_000_000,
                    generation: 2,
                },
                paging: None,
                filter: None,
            },
        ];
        for state in states {
            let token = state.encode();
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{token}"
            );
            assert_eq!(SyncState::decode(&token), Some(state));
        }
    }

    #[test]
    fn users_and_groups_tokens_do_not_mix() {
        let users = SyncState {
            epoch: 1,
            select: None,
            phase: Phase::Delta {
                base: 1,
                issued_ms: 2,
                generation: 0,
            },
            paging: None,
            filter: None,
        };
        let groups = GroupSyncState {
            epoch: 1,
            select: Some(3),
            phase: GroupPhase::Round {
                base: 1,
                upto: 2,
                at: (2, 7),
                offset: 500,
            },
        };
        assert_eq!(
            GroupSyncState::decode(&groups.encode()),
            Some(groups.clone())
        );
        assert_eq!(GroupSyncState::decode(&users.encode()), None);
        assert_eq!(SyncState::decode(&groups.encode()), None);
    }

    #[test]
    fn garbage_does_not_decode() {
        let not_json = URL_SAFE_NO_PAD.encode(b"hello");
        let wrong_shape = URL_SAFE_NO_PAD.encode(br#"{"e":1,"p":{"x":{}}}"#);
        for token in [
            "",
            "latest",
            "!!!",
            "FIXTURE-DELTA-0001",
            not_json.as_str(),
            wrong_shape.as_str(),
        ] {
            assert_eq!(SyncState::decode(token), None, "{token:?}");
        }
    }
}
