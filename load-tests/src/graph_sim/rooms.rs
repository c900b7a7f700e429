//! `GET /v1.0/places/microsoft.graph.room`: the tenant's room mailboxes as places.
//!
//! Entra keeps a room as a user object with a disabled account; only the places API says
//! which users are rooms, by email address. A place has its own id (not the user's), so a
//! client matches places to users by `emailAddress`. Pages follow `page_size` with an
//! `@odata.nextLink` carrying the offset in `$skiptoken`; counted like delta requests.

use serde_json::{Value, json};

use super::delta::{DeltaError, DeltaQuery, Served};
use super::{Counters, GraphSimConfig, Tenant, UserState};

/// Serves one page of the room list.
pub(crate) fn respond(
    tenant: &Tenant,
    config: &GraphSimConfig,
    query: &DeltaQuery,
    base_url: &str,
    _minimal: bool,
) -> Result<Value, DeltaError> {
    let result = page(tenant, config, query, base_url);
    if result.is_ok() {
        Counters::bump(&tenant.counters.room_pages, 1);
    }
    super::delta::tally(tenant, query, result)
}

fn page(
    tenant: &Tenant,
    config: &GraphSimConfig,
    query: &DeltaQuery,
    base_url: &str,
) -> Result<Served, DeltaError> {
    let offset = match &query.skiptoken {
        None => 0,
        Some(token) => token.parse::<usize>().map_err(|_| DeltaError {
            message: format!("Invalid skip token '{token}'."),
            ..DeltaError::default()
        })?,
    };
    let store = tenant.read();
    let users = store.users();
    let size = config.page_size.max(1);
    let rooms: Vec<usize> = store
        .rooms()
        .iter()
        .copied()
        .filter(|&i| users[i].state == UserState::Live)
        .collect();
    let value: Vec<Value> = rooms
        .iter()
        .skip(offset)
        .take(size)
        .map(|&i| {
            let room = &users[i].user;
            json!({
                // A place id of its own, derived so that it is stable but not the user's.
                "id": format!("place-{}", room.id),
                "displayName": room.display_name,
                "emailAddress": room.user_principal_name,
                "capacity": 8,
                "bookingType": "standard",
            })
        })
        .collect();
    let mut body = json!({
        "@odata.context": format!("{base_url}/v1.0/$metadata#places/microsoft.graph.room"),
        "value": value,
    });
    if offset + size < rooms.len() {
        body["@odata.nextLink"] = Value::String(format!(
            "{base_url}/v1.0/places/microsoft.graph.room?$skiptoken={}",
            offset + size
        ));
    }
    Ok(Served {
        body,
        replays: 0,
        empty: false,
    })
}
