//! `GET /v1.0/groups/delta`: one page of groups, its `@odata.nextLink` or `@odata.deltaLink`,
//! or a Graph error. Same token scheme, versions, expiry and resets as `users/delta`
//! (`delta.rs`); the paging quirks of users (replays, empty and short pages) are not applied.
//!
//! What a round returns (graph.md §1.2, §1.3):
//! - initial round: every group live when the round started, all selected properties, and with
//!   `members` selected its whole member list as `members@delta` slices (no annotation);
//! - delta round: groups created since the base in full; deleted ones as
//!   `{"id", "@removed": {"reason": "changed" | "deleted"}}`; groups whose membership changed
//!   with all selected properties and only the net membership change (added members plain,
//!   removed ones with `"@removed": {"reason": "deleted"}`); with `Prefer: return=minimal` just
//!   the id and the change. Without `members` selected, membership changes do not surface.
//! - `$filter` is refused on groups (`Request_UnsupportedQuery`), as are `$expand`, `$orderby`
//!   and `$search`.

use std::time::Duration;

use serde_json::{Map, Value};

use super::delta::{self, DeltaError, DeltaQuery, Served};
use super::group_render::{self, GroupProps, GroupSelection};
use super::render::Selection;
use super::store::id_key;
use super::token::{GroupPhase, GroupSyncState};
use super::{GraphSimConfig, Tenant};

/// Where this request reads from.
enum Position {
    Initial {
        upto: u64,
        from: Option<(u128, usize)>,
    },
    Round {
        base: u64,
        upto: u64,
        from: Option<((u64, usize), usize)>,
    },
    Latest,
}

/// Serves one groups delta request for `tenant`; links are built on `base_url`.
pub(crate) fn respond(
    tenant: &Tenant,
    config: &GraphSimConfig,
    query: &DeltaQuery,
    base_url: &str,
    minimal: bool,
) -> Result<Value, DeltaError> {
    delta::tally(
        tenant,
        query,
        page(tenant, config, query, base_url, minimal),
    )
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
    let now_ms = delta::now_ms();
    let (generation, reset) = tenant.reset_state();
    let decode = |token: &str| GroupSyncState::decode(token).filter(|s| s.epoch == tenant.epoch);
    let lost = DeltaError::sync_state_not_found;

    let (selection, position) = if let Some(token) = &query.skiptoken {
        let state = decode(token).ok_or_else(lost)?;
        let selection = GroupSelection::from_bits(state.select).ok_or_else(lost)?;
        let position = match state.phase {
            GroupPhase::Initial { upto, at, offset } if upto <= version => Position::Initial {
                upto,
                from: Some((id_key(&at).ok_or_else(lost)?, offset)),
            },
            GroupPhase::Round {
                base,
                upto,
                at,
                offset,
            } if base <= upto && upto <= version => Position::Round {
                base,
                upto,
                from: Some((at, offset)),
            },
            _ => return Err(lost()),
        };
        (selection, position)
    } else {
        let refused = query
            .unsupported
            .clone()
            .or_else(|| query.filter.as_ref().map(|_| "$filter".to_owned()));
        if let Some(unsupported) = refused {
            return Err(DeltaError::bad_request(
                "Request_UnsupportedQuery",
                format!("Unsupported query: {unsupported} is not supported on groups/delta."),
            ));
        }
        match query.deltatoken.as_deref().map(str::trim) {
            Some("latest") => (parse_select(query)?, Position::Latest),
            None | Some("") => (
                parse_select(query)?,
                Position::Initial {
                    upto: version,
                    from: None,
                },
            ),
            Some(token) => {
                let state = decode(token).ok_or_else(lost)?;
                let selection = GroupSelection::from_bits(state.select).ok_or_else(lost)?;
                let GroupPhase::Delta {
                    base,
                    issued_ms,
                    generation: issued_in,
                } = state.phase
                else {
                    return Err(lost());
                };
                if issued_in < generation
                    && let Some(mode) = reset
                {
                    let mut refusal =
                        mode.refusal(base_url, Selection::parse(None).map_err(|_| lost())?);
                    if refusal.location.is_some() {
                        let select = selection
                            .query()
                            .map(|s| format!("$select={s}&"))
                            .unwrap_or_default();
                        refusal.location =
                            Some(format!("{base_url}/v1.0/groups/delta?{select}$deltatoken="));
                    }
                    return Err(refusal);
                }
                let age = Duration::from_millis(now_ms.saturating_sub(issued_ms));
                if base > version || age > config.delta_token_lifetime {
                    return Err(lost());
                }
                (
                    selection,
                    Position::Round {
                        base,
                        upto: version,
                        from: None,
                    },
                )
            }
        }
    };

    let link = |kind: &str, phase: GroupPhase| {
        let token = GroupSyncState {
            epoch: tenant.epoch,
            select: selection.bits(),
            phase,
        }
        .encode();
        format!("{base_url}/v1.0/groups/delta?${kind}={token}")
    };
    let delta_link = |base| {
        link(
            "deltatoken",
            GroupPhase::Delta {
                base,
                issued_ms: now_ms,
                generation,
            },
        )
    };
    let props = selection.props();
    let members = props.contains(GroupProps::MEMBERS);
    let groups = store.groups();
    let page_size = config.page_size;
    let (value, link) = match position {
        Position::Latest => (Vec::new(), ("@odata.deltaLink", delta_link(version))),
        Position::Initial { upto, from } => {
            let page = groups.initial_page(upto, from, page_size, members);
            let value = render_all(&page.items, props, false);
            let link = match page.next {
                None => ("@odata.deltaLink", delta_link(upto)),
                Some((key, offset)) => (
                    "@odata.nextLink",
                    link(
                        "skiptoken",
                        GroupPhase::Initial {
                            upto,
                            at: uuid::Uuid::from_u128(key).to_string(),
                            offset,
                        },
                    ),
                ),
            };
            (value, link)
        }
        Position::Round { base, upto, from } => {
            let page = groups.round_page(base, upto, from, page_size, members);
            let value = render_all(&page.items, props, minimal);
            let link = match page.next {
                None => ("@odata.deltaLink", delta_link(upto)),
                Some((at, offset)) => (
                    "@odata.nextLink",
                    link(
                        "skiptoken",
                        GroupPhase::Round {
                            base,
                            upto,
                            at,
                            offset,
                        },
                    ),
                ),
            };
            (value, link)
        }
    };

    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(selection.context(base_url)),
    );
    body.insert(link.0.into(), Value::String(link.1));
    body.insert("value".into(), Value::Array(value));
    Ok(Served {
        body: Value::Object(body),
        replays: 0,
        empty: false,
    })
}

fn render_all(
    items: &[super::group_store::GroupItem<'_>],
    props: GroupProps,
    minimal: bool,
) -> Vec<Value> {
    items
        .iter()
        .map(|item| group_render::render(item, props, minimal))
        .collect()
}

fn parse_select(query: &DeltaQuery) -> Result<GroupSelection, DeltaError> {
    GroupSelection::parse(query.select.as_deref()).map_err(|name| {
        DeltaError::bad_request(
            "BadRequest",
            format!("Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.group'."),
        )
    })
}
