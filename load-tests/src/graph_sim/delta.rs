//! `GET /v1.0/users/delta`: turns query parameters and state tokens into one page, its
//! `@odata.nextLink` or `@odata.deltaLink`, or a Graph error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::filter::{FilterError, MAX_FILTER_IDS, parse_id_filter};
use super::paging::{Paging, Quirks, Replay};
use super::render::{self, Selection};
use super::store::{Page, id_key};
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
    /// `$filter`: users/delta supports only `id eq '…'`, OR-ed (`filter.rs`).
    pub filter: Option<String>,
    /// A parameter users/delta does not support (`$expand`, `$orderby`, `$search`).
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
                "filter" => query.filter = Some(value),
                "expand" | "orderby" | "search" => query.unsupported = Some(format!("${name}")),
                _ => {}
            }
        }
        query
    }
}

/// A delta request's failure: status, Graph error code, message, and what some failures add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeltaError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// A `Location` header (410 after a reset).
    pub location: Option<String>,
    /// Extra `innerError` members (a nested `innerError`).
    pub inner: Map<String, Value>,
    /// The refusal of a deltaLink issued before a reset.
    pub reset: bool,
}

impl Default for DeltaError {
    fn default() -> Self {
        DeltaError {
            status: StatusCode::BAD_REQUEST,
            code: "BadRequest",
            message: String::new(),
            location: None,
            inner: Map::new(),
            reset: false,
        }
    }
}

impl DeltaError {
    pub(crate) fn sync_state_not_found() -> DeltaError {
        DeltaError {
            code: "syncStateNotFound",
            message: SYNC_STATE_NOT_FOUND.into(),
            ..DeltaError::default()
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: String) -> DeltaError {
        DeltaError {
            code,
            message,
            ..DeltaError::default()
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

/// A page served, with what the paging quirks added to it.
pub(crate) struct Served {
    pub body: Value,
    pub replays: u64,
    pub empty: bool,
}

/// Serves one delta request for `tenant`; links are built on `base_url` (`http://host:port`).
pub(crate) fn respond(
    tenant: &Tenant,
    config: &GraphSimConfig,
    query: &DeltaQuery,
    base_url: &str,
    minimal: bool,
) -> Result<Value, DeltaError> {
    tally(
        tenant,
        query,
        page(tenant, config, query, base_url, minimal),
    )
}

/// Counts a delta request's outcome (users or groups) and returns its body or error.
pub(crate) fn tally(
    tenant: &Tenant,
    query: &DeltaQuery,
    result: Result<Served, DeltaError>,
) -> Result<Value, DeltaError> {
    let counters = &tenant.counters;
    match result {
        Ok(served) => {
            let returned = served.body["value"].as_array().map_or(0, Vec::len) as u64;
            Counters::bump(&counters.delta_pages, 1);
            Counters::bump(&counters.objects_returned, returned);
            Counters::bump(&counters.duplicates_returned, served.replays);
            Counters::bump(&counters.empty_pages, u64::from(served.empty));
            if query.skiptoken.is_none() {
                Counters::bump(&counters.delta_rounds, 1);
            }
            Counters::bump(&counters.filtered_reads, u64::from(query.filter.is_some()));
            Ok(served.body)
        }
        Err(e) => {
            let counter = if e.reset {
                &counters.reset_refusals
            } else if e.code == "syncStateNotFound" {
                &counters.sync_state_not_found
            } else {
                &counters.bad_requests
            };
            Counters::bump(counter, 1);
            Err(e)
        }
    }
}

fn page(
    tenant: &Tenant,
    config: &GraphSimConfig,
    query: &DeltaQuery,
    base_url: &str,
    minimal: bool,
) -> Result<Served, DeltaError> {
    let store = tenant.read();
    let version = store.version();
    let now_ms = now_ms();
    let quirks = Quirks::new(config);
    let (generation, reset) = tenant.reset_state();
    let decode = |token: &str| SyncState::decode(token).filter(|s| s.epoch == tenant.epoch);

    let (selection, position, paging, filter) = if let Some(token) = &query.skiptoken {
        let state = decode(token).ok_or_else(DeltaError::sync_state_not_found)?;
        let selection =
            Selection::from_bits(state.select).ok_or_else(DeltaError::sync_state_not_found)?;
        let paging = state.paging.unwrap_or_default();
        let position = match state.phase {
            Phase::Initial { upto, after } if upto <= version => Position::Initial {
                upto,
                // An exhausted round has no cursor left to read.
                after: if paging.done {
                    None
                } else {
                    Some(id_key(&after).ok_or_else(DeltaError::sync_state_not_found)?)
                },
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
        (selection, position, paging, state.filter)
    } else {
        if let Some(unsupported) = &query.unsupported {
            return Err(DeltaError::bad_request(
                "Request_UnsupportedQuery",
                format!("Unsupported query: {unsupported} is not supported on users/delta."),
            ));
        }
        let (selection, position, filter) = match query.deltatoken.as_deref().map(str::trim) {
            Some("latest") => (parse_select(query)?, Position::Latest, parse_filter(query)?),
            // An empty token is what a 410 Location header carries: a fresh initial query.
            None | Some("") => (
                parse_select(query)?,
                Position::Initial {
                    upto: version,
                    after: None,
                },
                parse_filter(query)?,
            ),
            Some(token) => {
                let state = decode(token).ok_or_else(DeltaError::sync_state_not_found)?;
                let selection = Selection::from_bits(state.select)
                    .ok_or_else(DeltaError::sync_state_not_found)?;
                let Phase::Delta {
                    base,
                    issued_ms,
                    generation: issued_in,
                } = state.phase
                else {
                    return Err(DeltaError::sync_state_not_found());
                };
                if issued_in < generation
                    && let Some(mode) = reset
                {
                    return Err(mode.refusal(base_url, selection));
                }
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
                    state.filter,
                )
            }
        };
        (selection, position, Paging::default(), filter)
    };

    let select = selection.props();
    let link_state = |phase: Phase, paging: Option<Paging>| {
        SyncState {
            epoch: tenant.epoch,
            select: selection.bits(),
            phase,
            paging,
            filter: filter.clone(),
        }
        .encode()
    };
    let delta_link = |base| {
        format!(
            "{base_url}/v1.0/users/delta?$deltatoken={}",
            link_state(
                Phase::Delta {
                    base,
                    issued_ms: now_ms,
                    generation,
                },
                None
            )
        )
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(selection.context(base_url)),
    );

    let (upto, round_base) = match position {
        Position::Latest => {
            body.insert(
                "@odata.deltaLink".into(),
                Value::String(delta_link(version)),
            );
            body.insert("value".into(), Value::Array(Vec::new()));
            return Ok(Served {
                body: Value::Object(body),
                replays: 0,
                empty: false,
            });
        }
        Position::Initial { upto, .. } => (upto, None),
        Position::Round { base, upto, .. } => (upto, Some(base)),
    };

    if let (Some(ids), None) = (&filter, round_base) {
        // A targeted read: the named users, all on one page (at most 50 of them).
        let value: Vec<Value> = ids
            .iter()
            .filter_map(|id| store.initial_item(id, config.initial_round_tombstones))
            .map(|item| render::render(&item, select, minimal))
            .collect();
        body.insert("@odata.deltaLink".into(), Value::String(delta_link(upto)));
        body.insert("value".into(), Value::Array(value));
        return Ok(Served {
            body: Value::Object(body),
            replays: 0,
            empty: false,
        });
    }

    let mut next = Paging {
        page: paging.page + 1,
        ..paging.clone()
    };
    let mut cursor = position;
    let mut value: Vec<Value> = Vec::new();
    let mut replays = 0;
    let empty = quirks.empty_page(paging.page);
    if !empty {
        let budget = quirks.budget(paging.page);
        let take = next.pending.len().min(budget);
        let replayed: Vec<usize> = next.pending.drain(..take).collect();
        for index in replayed {
            if let Some(item) = store.replay_item(index, round_base) {
                value.push(render::render(&item, select, minimal));
                replays += 1;
            }
        }
        let room = budget - take;
        if !next.done && room > 0 {
            let limit = quirks.fresh_limit(next.emitted, room);
            let (items, more) = match &mut cursor {
                Position::Initial { after, .. } => {
                    let Page { items, next } =
                        store.initial_page(*after, limit, config.initial_round_tombstones);
                    *after = next.or(*after);
                    (items, next.is_some())
                }
                Position::Round {
                    base, upto, after, ..
                } => {
                    let Page { mut items, next } =
                        store.round_page(*base, *upto, *after, limit, select);
                    if let Some(ids) = &filter {
                        items.retain(|item| ids.contains(&item.user.user.id));
                    }
                    *after = next.or(*after);
                    (items, next.is_some())
                }
                Position::Latest => (Vec::new(), false),
            };
            next.done = !more;
            let (mut same_page, mut later) = (Vec::new(), Vec::new());
            for item in &items {
                let rendered = render::render(item, select, minimal);
                match quirks.replay(next.emitted) {
                    Some(Replay::SamePage) => same_page.push((item.index, rendered.clone())),
                    Some(Replay::LaterPage) => later.push(item.index),
                    None => {}
                }
                value.push(rendered);
                next.emitted += 1;
            }
            for (index, rendered) in same_page {
                if value.len() < budget {
                    value.push(rendered);
                    replays += 1;
                } else {
                    later.push(index);
                }
            }
            next.pending.extend(later);
        }
    }

    let complete = next.done && next.pending.is_empty();
    let (name, link) = if complete && !empty && !quirks.empty_page(next.page) {
        ("@odata.deltaLink", delta_link(upto))
    } else {
        let phase = match cursor {
            Position::Initial { upto, after } => Phase::Initial {
                upto,
                after: after
                    .map(|a| uuid::Uuid::from_u128(a).to_string())
                    .unwrap_or_default(),
            },
            Position::Round { base, upto, after } => Phase::Round {
                base,
                upto,
                after: after.unwrap_or_default(),
            },
            Position::Latest => return Err(DeltaError::sync_state_not_found()),
        };
        let paging = quirks.active().then_some(next);
        (
            "@odata.nextLink",
            format!(
                "{base_url}/v1.0/users/delta?$skiptoken={}",
                link_state(phase, paging)
            ),
        )
    };
    body.insert(name.into(), Value::String(link));
    body.insert("value".into(), Value::Array(value));
    Ok(Served {
        body: Value::Object(body),
        replays,
        empty,
    })
}

/// The ids of a `$filter` on an initial request, if any.
fn parse_filter(query: &DeltaQuery) -> Result<Option<Vec<String>>, DeltaError> {
    let Some(raw) = &query.filter else {
        return Ok(None);
    };
    match parse_id_filter(raw) {
        // Object ids compare case-insensitively; synthetic ids are lowercase.
        Ok(ids) => Ok(Some(ids.iter().map(|id| id.to_ascii_lowercase()).collect())),
        Err(FilterError::Unsupported) => Err(DeltaError::bad_request(
            "Request_UnsupportedQuery",
            "Unsupported query: $filter on users/delta supports only id eq '...' clauses joined by or.".into(),
        )),
        Err(FilterError::TooMany(n)) => Err(DeltaError::bad_request(
            "Request_UnsupportedQuery",
            format!("Too many ids in $filter: {n}; at most {MAX_FILTER_IDS} are supported."),
        )),
    }
}

fn parse_select(query: &DeltaQuery) -> Result<Selection, DeltaError> {
    Selection::parse(query.select.as_deref()).map_err(|name| {
        DeltaError::bad_request(
            "BadRequest",
            format!("Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.user'."),
        )
    })
}

pub(crate) fn now_ms() -> u64 {
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
            (Some("$search=x"), None, None, None, Some("$search")),
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
        let q = DeltaQuery::parse(Some("$filter=id%20eq%20'1'"));
        assert_eq!(
            (q.filter.as_deref(), q.unsupported),
            (Some("id eq '1'"), None)
        );
    }
}
