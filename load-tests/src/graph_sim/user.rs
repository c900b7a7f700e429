//! `GET /v1.0/users/{id | userPrincipalName}`: one user, as "provision on demand" reads it.
//!
//! Graph addresses a user by object id or by user principal name (matched without case).
//! `$select` names the properties returned (each selected one is present, `null` when it has
//! no value, `[]` for `businessPhones`); `manager` is a relationship, not a property, so it
//! comes with `$expand=manager` (optionally `($select=id)`) as an object holding the
//! manager's `id`, and is left out for a user without one. Deleted users (soft or hard) are
//! not in the directory: like unknown ones they answer `404 Request_ResourceNotFound`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::envelope::RequestIds;
use super::{GraphSim, UserState};
use crate::synthetic::{Prop, TenantUser};

/// What a request asks for: the selected properties and whether the manager is expanded.
#[derive(Debug, PartialEq)]
struct UserQuery {
    select: Vec<Prop>,
    expand_manager: bool,
}

/// Parses `$select` and `$expand`; `Err` says what Graph would refuse.
fn parse_query(raw: Option<&str>) -> Result<UserQuery, String> {
    let mut query = UserQuery {
        select: Prop::ALL
            .into_iter()
            .filter(|p| *p != Prop::Manager)
            .collect(),
        expand_manager: false,
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "$select" => {
                let mut select = Vec::new();
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if name.eq_ignore_ascii_case("id") {
                        continue;
                    }
                    match Prop::from_wire_name(name) {
                        Some(Prop::Manager) | None => {
                            return Err(format!(
                                "Could not find a property named '{name}' on type 'microsoft.graph.user'."
                            ));
                        }
                        Some(prop) => select.push(prop),
                    }
                }
                query.select = select;
            }
            "$expand" => {
                let expand = value.trim();
                let target = expand.split('(').next().unwrap_or_default();
                if !target.eq_ignore_ascii_case("manager") {
                    return Err(format!(
                        "Parsing OData Select and Expand failed: '{expand}'."
                    ));
                }
                query.expand_manager = true;
            }
            _ => {}
        }
    }
    Ok(query)
}

/// The user as the request asks for it.
fn render(user: &TenantUser, query: &UserQuery, manager_live: bool) -> Value {
    let mut object = Map::new();
    for prop in &query.select {
        let value = user.user.value(*prop).unwrap_or(match prop {
            Prop::BusinessPhones => json!([]),
            _ => Value::Null,
        });
        object.insert(prop.wire_name().to_string(), value);
    }
    object.insert("id".into(), json!(user.user.id));
    if query.expand_manager
        && manager_live
        && let Some(manager) = &user.user.manager_id
    {
        object.insert(
            "manager".into(),
            json!({ "@odata.type": "#microsoft.graph.user", "id": manager }),
        );
    }
    Value::Object(object)
}

/// `GET /v1.0/users/{user}` for the tenant of the bearer token.
pub(crate) async fn get(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let ids = RequestIds::new(&headers);
    let tenant = match super::http::authenticated(&sim, &headers, &ids) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    let query = match parse_query(raw.as_deref()) {
        Ok(query) => query,
        Err(message) => return ids.graph_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let store = tenant.read();
    let live = |u: &&TenantUser| u.state == UserState::Live;
    let found = match store.initial_item(&key, false) {
        Some(item) => Some(item.user),
        None => store.users().iter().filter(live).find(|u| {
            u.user
                .value(Prop::UserPrincipalName)
                .and_then(|v| v.as_str().map(|s| s.eq_ignore_ascii_case(&key)))
                .unwrap_or(false)
        }),
    };
    let Some(user) = found.filter(live) else {
        return ids.graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let manager_live = user
        .user
        .manager_id
        .as_deref()
        .and_then(|m| store.initial_item(m, false))
        .is_some();
    let body = render(user, &query, manager_live);
    ids.stamp(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse() {
        let q = parse_query(Some(
            "$select=id,displayName,mail&$expand=manager($select=id)",
        ))
        .unwrap();
        assert_eq!(q.select, [Prop::DisplayName, Prop::Mail]);
        assert!(q.expand_manager);
        let all = parse_query(None).unwrap();
        assert!(!all.expand_manager && !all.select.contains(&Prop::Manager));
        assert_eq!(all.select.len(), Prop::ALL.len() - 1);
        assert!(parse_query(Some("$select=manager")).is_err());
        assert!(parse_query(Some("$select=shoeSize")).is_err());
        assert!(parse_query(Some("$expand=memberOf")).is_err());
    }
}
