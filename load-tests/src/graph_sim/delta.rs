//! `GET /v1.0/users/delta`: turns query parameters and state tokens into one page, its
//! `@odata.nextLink` or `@odata.deltaLink`, or a Graph error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::render::{self, Selection};
use super::store::{Page, PageItem, id_key};
use super::token::{Phase, SyncState};
use super::{Counters, GraphSimConfig, Tenant};

/// The documented `syncStateNotFound` message (graph.md §1.4, §1.8 F5).
pub(crate) const SYNC_STATE_NOT_FOUND: &str = "The sync state generation is not found. The delta token is expired and data must be synchronized again.";

/// The query parameters the simulator looks at, already percent-decoded.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeltaQuery {
    pub select: Option<String>,
    pub skiptoken: Option<String>,
    pub deltatoken: Option<String>,
    /// A parameter users/delta does not support (`$expand`, `$orderby`, `$filter`, `$search`).
    pub unsupported: Option<String>,
}

impl DeltaQuery {
    /// Parses a raw query string. Names match with or without `$`, case-insensitively, as
    /// Graph v1.0 does; `$top` and unknown parameters are ignored.
    pub(crate) fn parse(raw: Option<&str>) -> DeltaQuery {
        let mut query = DeltaQuery::default();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let name = key.trim_start_matches('$').to_ascii_lowercase();
            let value = value.into_owned();
            match name.as_str() {
                "select" => query.select = Some(value),
                "skiptoken" => query.skiptoken = Some(value),
                "deltatoken" => query.deltatoken = Some(value),
                "expand" | "orderby" | "filter" | "search" => {
                    query.unsupported = Some(format!("${name}"))
                }
                _ => {}
            }
        }
        query
    }
}

/// A delta request's failure: status, Graph error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeltaError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl DeltaError {
    fn sync_state_not_found() -> DeltaError {
        DeltaError {
            status: StatusCode::BAD_REQUEST,
            code: "syncStateNotFound",
            message: SYNC_STATE_NOT_FOUND.into(),
        }
    }

    fn bad_request(code: &'static str, message: String) -> DeltaError {
        DeltaError {
            status: StatusCode::BAD_REQUEST,
            code,
            message,
        }
    }
}

/// Where this request reads from.
enum Position {
    Initial {
        upto: u64,
        after: Option<u128>,
    },
    Round {
        base: u64,
        upto: u64,
        after: Option<(u64, usize)>,
    },
    /// `$deltatoken=latest`: no data, just a deltaLink from now.
    Latest,
}

/// Serves one delta request for `tenant`; links are built on `base_url` (`http://host:port`).
pub(crate) fn respond(
    tenant: &Tenant,
    config: &GraphSimConfig,
    query: &DeltaQuery,
    base_url: &str,
    minimal: bool,
) -> Result<Value, DeltaError> {
    let result = page(tenant, config, query, base_url, minimal);
    let counters = &tenant.counters;
    match &result {
        Ok(body) => {
            let returned = body["value"].as_array().map_or(0, Vec::len) as u64;
            Counters::bump(&counters.delta_pages, 1);
            Counters::bump(&counters.objects_returned, returned);
            if query.skiptoken.is_none() {
                Counters::bump(&counters.delta_rounds, 1);
            }
        }
        Err(e) if e.code == "syncStateNotFound" => {
            Counters::bump(&counters.sync_state_not_found, 1)
        }
        Err(_) => Counters::bump(&counters.bad_requests, 1),
    }
    result
}

fn page(
    tenant: &Tenant,
    config: &GraphSimConfig,
    query: &DeltaQuery,
    base_url: &str,
    minimal: bool,
) -> Result<Value, DeltaError> {
    let store = tenant.read();
    let version = store.version();
    let now_ms = now_ms();
    let decode = |token: &str| SyncState::decode(token).filter(|s| s.epoch == tenant.epoch);

    let (selection, position) = if let Some(token) = &query.skiptoken {
        let state = decode(token).ok_or_else(DeltaError::sync_state_not_found)?;
        let selection =
            Selection::from_bits(state.select).ok_or_else(DeltaError::sync_state_not_found)?;
        let position = match state.phase {
            Phase::Initial { upto, after } if upto <= version => Position::Initial {
                upto,
                after: Some(id_key(&after).ok_or_else(DeltaError::sync_state_not_found)?),
            },
            Phase::Round { base, upto, after } if base <= upto && upto <= version => {
                Position::Round {
                    base,
                    upto,
                    after: Some(after),
                }
            }
            _ => return Err(DeltaError::sync_state_not_found()),
        };
        (selection, position)
    } else {
        if let Some(unsupported) = &query.unsupported {
            return Err(DeltaError::bad_request(
                "Request_UnsupportedQuery",
                format!("Unsupported query: {unsupported} is not supported on users/delta."),
            ));
        }
        match query.deltatoken.as_deref().map(str::trim) {
            Some("latest") => (parse_select(query)?, Position::Latest),
            // An empty token is what a 410 Location header carries: a fresh initial query.
            None | Some("") => (
                parse_select(query)?,
                Position::Initial {
                    upto: version,
                    after: None,
                },
            ),
            Some(token) => {
                let state = decode(token).ok_or_else(DeltaError::sync_state_not_found)?;
                let selection = Selection::from_bits(state.select)
                    .ok_or_else(DeltaError::sync_state_not_found)?;
                let Phase::Delta { base, issued_ms } = state.phase else {
                    return Err(DeltaError::sync_state_not_found());
                };
                let age = Duration::from_millis(now_ms.saturating_sub(issued_ms));
                if base > version || age > config.delta_token_lifetime {
                    return Err(DeltaError::sync_state_not_found());
                }
                (
                    selection,
                    Position::Round {
                        base,
                        upto: version,
                        after: None,
                    },
                )
            }
        }
    };

    let select = selection.props();
    let link_state = |phase: Phase| {
        SyncState {
            epoch: tenant.epoch,
            select: selection.bits(),
            phase,
        }
        .encode()
    };
    let skip_link = |phase| {
        format!(
            "{base_url}/v1.0/users/delta?$skiptoken={}",
            link_state(phase)
        )
    };
    let delta_link = |base| {
        format!(
            "{base_url}/v1.0/users/delta?$deltatoken={}",
            link_state(Phase::Delta {
                base,
                issued_ms: now_ms
            })
        )
    };

    let (items, link) = match position {
        Position::Latest => (Vec::new(), ("@odata.deltaLink", delta_link(version))),
        Position::Initial { upto, after } => {
            let Page { items, next } =
                store.initial_page(after, config.page_size, config.initial_round_tombstones);
            let link = match next {
                Some(after) => {
                    let after = uuid::Uuid::from_u128(after).to_string();
                    ("@odata.nextLink", skip_link(Phase::Initial { upto, after }))
                }
                None => ("@odata.deltaLink", delta_link(upto)),
            };
            (items, link)
        }
        Position::Round { base, upto, after } => {
            let Page { items, next } =
                store.round_page(base, upto, after, config.page_size, select);
            let link = match next {
                Some(after) => (
                    "@odata.nextLink",
                    skip_link(Phase::Round { base, upto, after }),
                ),
                None => ("@odata.deltaLink", delta_link(upto)),
            };
            (items, link)
        }
    };

    let value: Vec<Value> = items
        .iter()
        .map(|item: &PageItem<'_>| render::render(item, select, minimal))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(selection.context(base_url)),
    );
    body.insert(link.0.into(), Value::String(link.1));
    body.insert("value".into(), Value::Array(value));
    Ok(Value::Object(body))
}

fn parse_select(query: &DeltaQuery) -> Result<Selection, DeltaError> {
    Selection::parse(query.select.as_deref()).map_err(|name| {
        DeltaError::bad_request(
            "BadRequest",
            format!("Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.user'."),
        )
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        // (raw query, select, skiptoken, deltatoken, unsupported)
        let cases = [
            (None, None, None, None, None),
            (
                Some("$select=displayName,mail&$top=5"),
                Some("displayName,mail"),
                None,
                None,
                None,
            ),
            (
                Some("%24select=id&select=surname"),
                Some("surname"),
                None,
                None,
                None,
            ),
            (Some("$skiptoken=abc-_"), None, Some("abc-_"), None, None),
            (Some("$deltaToken=latest"), None, None, Some("latest"), None),
            (Some("$deltatoken="), None, None, Some(""), None),
            (Some("$expand=manager"), None, None, None, Some("$expand")),
            (
                Some("$filter=id%20eq%20'1'"),
                None,
                None,
                None,
                Some("$filter"),
            ),
        ];
        for (raw, select, skip, delta, unsupported) in cases {
            let q = DeltaQuery::parse(raw);
            assert_eq!(
                (
                    q.select.as_deref(),
                    q.skiptoken.as_deref(),
                    q.deltatoken.as_deref(),
                    q.unsupported.as_deref()
                ),
                (select, skip, delta, unsupported),
                "{raw:?}"
            );
        }
    }
}
