//! `/api/v1/tenants/{id}/entra/users` and `/entra/groups`: searching the Entra tenant by name
//! while editing the scope ("users in scope: search Entra by name and add"; "groups: search
//! and add"). Each result says whether the instance's scope already has it, so a picker can
//! show it as added.
//!
//! A user is in scope when the scope is "all users" or names the user; a group when the
//! scope's group list names it (with "all users" that list is kept but ignored by syncs, so
//! a group there still shows as added).

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use dirsync_proto::TenantId;

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use crate::graph::GraphClient;
use crate::graph::search::{FoundGroup, FoundUser, checked_text};
use crate::scope::Scope;
use crate::{CoordinatorError, Tenant};

/// Results when the request gives no limit.
pub const DEFAULT_LIMIT: usize = 25;
/// Most results one search returns.
pub const MAX_LIMIT: usize = 100;

/// The query of a search.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub search: Option<String>,
    /// Parsed here rather than by the extractor, so a bad value gets the API's error body.
    pub limit: Option<String>,
}

/// A user of the Entra tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserHit {
    /// Entra object id, as the scope names users.
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    /// The scope has this user already (all users, or chosen).
    pub in_scope: bool,
}

/// A group of the Entra tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupHit {
    /// Entra object id, as the scope names groups.
    pub id: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub description: Option<String>,
    /// The scope's groups name this group already.
    pub in_scope: bool,
}

/// The search text and the limit, checked (pure).
pub fn checked_query(query: &SearchQuery) -> Result<(String, usize), CoordinatorError> {
    let text = checked_text(query.search.as_deref().unwrap_or_default())?.to_string();
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                CoordinatorError::Invalid(format!(
                    "limit must be a number from 1 to {MAX_LIMIT}, not {raw:?}"
                ))
            })?,
    };
    Ok((text, limit))
}

/// Ids as the scope holds them, compared without case (object ids are GUIDs).
fn id_set(ids: &[String]) -> HashSet<String> {
    ids.iter()
        .map(|id| id.trim().to_ascii_lowercase())
        .collect()
}

/// The users found, each marked by whether the scope has it (pure).
pub fn mark_users(found: Vec<FoundUser>, scope: &Scope) -> Vec<UserHit> {
    let chosen = id_set(&scope.users);
    found
        .into_iter()
        .map(|u| UserHit {
            in_scope: scope.all || chosen.contains(&u.id.to_ascii_lowercase()),
            id: u.id,
            display_name: u.display_name,
            user_principal_name: u.user_principal_name,
            mail: u.mail,
        })
        .collect()
}

/// The groups found, each marked by whether the scope names it (pure).
pub fn mark_groups(found: Vec<FoundGroup>, scope: &Scope) -> Vec<GroupHit> {
    let chosen = id_set(&scope.groups);
    found
        .into_iter()
        .map(|g| GroupHit {
            in_scope: chosen.contains(&g.id.to_ascii_lowercase()),
            id: g.id,
            display_name: g.display_name,
            mail: g.mail,
            description: g.description,
        })
        .collect()
}

/// The tenant and a Graph client with its credentials.
async fn graph(s: &ApiState, id: uuid::Uuid) -> ApiResult<(Tenant, GraphClient)> {
    let tenant: Tenant = s.tenants.get(TenantId(id)).await?;
    let client = s.graph(&tenant);
    Ok((tenant, client))
}

/// Users of the Entra tenant whose display name or mail matches `search` (each word of it
/// begins a word of theirs), with whether the scope has each.
#[utoipa::path(get, path = "/tenants/{id}/entra/users", tag = "configuration",
    params(("id" = uuid::Uuid, Path, description = "instance id"),
           ("search" = String, Query, description = "part of a name: 1 to 256 characters"),
           ("limit" = Option<u32>, Query, description = "most results, 1 to 100 (default 25)")),
    responses((status = 200, body = Vec<UserHit>), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn users(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<Vec<UserHit>>> {
    let (text, limit) = checked_query(&query)?;
    let (tenant, graph) = graph(&s, id).await?;
    let found = graph.search_users(&text, limit).await?;
    Ok(Json(mark_users(found, &tenant.scope)))
}

/// Groups of the Entra tenant whose display name or mail matches `search`, with whether the
/// scope names each.
#[utoipa::path(get, path = "/tenants/{id}/entra/groups", tag = "configuration",
    params(("id" = uuid::Uuid, Path, description = "instance id"),
           ("search" = String, Query, description = "part of a name: 1 to 256 characters"),
           ("limit" = Option<u32>, Query, description = "most results, 1 to 100 (default 25)")),
    responses((status = 200, body = Vec<GroupHit>), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn groups(
    State(s): State<ApiState>,
    Path(id): Path<uuid::Uuid>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<Vec<GroupHit>>> {
    let (text, limit) = checked_query(&query)?;
    let (tenant, graph) = graph(&s, id).await?;
    let found = graph.search_groups(&text, limit).await?;
    Ok(Json(mark_groups(found, &tenant.scope)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(search: Option<&str>, limit: Option<&str>) -> SearchQuery {
        SearchQuery {
            search: search.map(str::to_string),
            limit: limit.map(str::to_string),
        }
    }

    #[test]
    fn queries_are_checked() {
        let long = "x".repeat(257);
        // (search, limit, Some((text, limit)) or refused)
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<(&'a str, usize)>);
        let cases: &[Case] = &[
            (Some("ada"), None, Some(("ada", DEFAULT_LIMIT))),
            (Some(" Ada Lo "), Some("100"), Some(("Ada Lo", 100))),
            (Some("ada"), Some("1"), Some(("ada", 1))),
            (Some("ada"), Some(""), Some(("ada", DEFAULT_LIMIT))),
            (Some("ada"), Some("0"), None),
            (Some("ada"), Some("101"), None),
            (Some("ada"), Some("ten"), None),
            (Some("ada"), Some("-1"), None),
            (None, None, None),
            (Some(""), None, None),
            (Some("  "), None, None),
            (Some(long.as_str()), None, None),
        ];
        for (search, limit, want) in cases {
            let got = checked_query(&query(*search, *limit)).ok();
            let want = want.map(|(t, n)| (t.to_string(), n));
            assert_eq!(got, want, "{search:?} {limit:?}");
        }
        let err = checked_query(&query(Some(""), None)).unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    fn user(id: &str) -> FoundUser {
        FoundUser {
            id: id.into(),
            display_name: Some(format!("User {id}")),
            user_principal_name: None,
            mail: None,
        }
    }

    fn group(id: &str) -> FoundGroup {
        FoundGroup {
            id: id.into(),
            display_name: None,
            mail: None,
            description: None,
        }
    }

    #[test]
    fn results_are_marked_by_the_scope() {
        let all = Scope::default();
        let chosen = Scope {
            all: false,
            users: vec!["AAA".into(), "ccc".into()],
            groups: vec!["g1".into()],
            ..Scope::default()
        };
        let found = || vec![user("aaa"), user("bbb"), user("CCC")];
        let flags = |hits: Vec<UserHit>| hits.into_iter().map(|h| h.in_scope).collect::<Vec<_>>();
        assert_eq!(flags(mark_users(found(), &all)), [true, true, true]);
        assert_eq!(flags(mark_users(found(), &chosen)), [true, false, true]);
        let hits = mark_users(found(), &chosen);
        assert_eq!(hits[0].display_name.as_deref(), Some("User aaa"));

        let groups = || vec![group("G1"), group("g2")];
        let flags = |hits: Vec<GroupHit>| hits.into_iter().map(|h| h.in_scope).collect::<Vec<_>>();
        assert_eq!(flags(mark_groups(groups(), &chosen)), [true, false]);
        // "All users" adds no group.
        assert_eq!(flags(mark_groups(groups(), &all)), [false, false]);
    }
}
