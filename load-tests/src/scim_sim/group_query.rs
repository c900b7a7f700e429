//! Query parameters of the `/Groups` endpoints (webex-scim.md §2, §3):
//! - `GET /Groups`: the list parameters of `list.rs` (`sortBy` ∈ displayName, id,
//!   meta.lastModified), plus `includeMembers` (default false: no members), `memberType`
//!   (user | machine | group) and `excludedAttributes` (`members` honoured, others ignored).
//! - One group (`GET`, `PUT`, `PATCH`, `POST` answers): `excludedAttributes=members`.
//! - `GET /Groups/{id}/Members`: `startIndex`, `count` (default and maximum 500), `memberType`.
//!
//! Groups hold user members only, so `memberType=machine` or `group` shows no members.
//! `attributes` is accepted and ignored, as on `/Users`.

use super::ScimSimConfig;
use super::error::{ScimError, ScimType};
use super::group_filter;
use super::group_schema::{MEMBERS_PAGE_MAX, MEMBERS_SHOWN_MAX};
use super::list::{GROUP_SORTS, ListQuery, parse_count, parse_query_with, parse_start_index};

const MEMBER_TYPES: [&str; 3] = ["user", "machine", "group"];

/// `GET /Groups`: which groups, and how many members each shows (0: no `members`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupListQuery {
    pub list: ListQuery,
    pub shown: usize,
}

/// `GET /Groups/{id}/Members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembersQuery {
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    /// False when `memberType` asks for machines or groups, which the simulator never holds.
    pub users: bool,
}

fn invalid(detail: String) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

fn params(raw: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
}

/// Does an `excludedAttributes` list name `members` (also as `urn:…:Group:members`)?
fn excludes_members(value: &str) -> bool {
    value.split(',').any(|a| {
        let a = a.trim();
        let attr = a.rsplit_once(':').map_or(a, |(_, attr)| attr);
        attr.eq_ignore_ascii_case("members")
    })
}

/// True when `memberType` admits user members; an unknown type is a 400.
fn member_type_is_user(value: &str) -> Result<bool, ScimError> {
    match MEMBER_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(value.trim()))
    {
        Some(t) => Ok(*t == "user"),
        None => Err(invalid(format!(
            "memberType {value:?} is not one of user, machine, group"
        ))),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ScimError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(format!("{name} {value:?} is not true or false"))),
    }
}

pub fn parse_group_list(
    raw: Option<&str>,
    config: &ScimSimConfig,
) -> Result<GroupListQuery, ScimError> {
    let (mut include, mut excluded, mut users) = (false, false, true);
    let list = parse_query_with(raw, config, GROUP_SORTS, |key, value| {
        match key {
            "includemembers" => include = parse_bool("includeMembers", value)?,
            "excludedattributes" => excluded |= excludes_members(value),
            "membertype" => users = member_type_is_user(value)?,
            _ => {}
        }
        Ok(())
    })?;
    if let Some(f) = &list.filter {
        group_filter::check(f)?;
    }
    let shown = if include && !excluded && users {
        MEMBERS_SHOWN_MAX
    } else {
        0
    };
    Ok(GroupListQuery { list, shown })
}

/// How many members a single-group answer shows: [`MEMBERS_SHOWN_MAX`], or 0 with
/// `excludedAttributes=members`.
pub fn parse_shown(raw: Option<&str>) -> usize {
    let excluded = params(raw).any(|(k, v)| k == "excludedattributes" && excludes_members(&v));
    if excluded { 0 } else { MEMBERS_SHOWN_MAX }
}

pub fn parse_members_query(raw: Option<&str>) -> Result<MembersQuery, ScimError> {
    let mut q = MembersQuery {
        start_index: 1,
        count: MEMBERS_PAGE_MAX,
        users: true,
    };
    for (key, value) in params(raw) {
        match key.as_str() {
            "startindex" => q.start_index = parse_start_index(&value)?,
            "count" => q.count = parse_count(&value, MEMBERS_PAGE_MAX)?,
            "membertype" => q.users = member_type_is_user(&value)?,
            _ => {}
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim_sim::list::SortBy;

    fn cfg() -> ScimSimConfig {
        ScimSimConfig::default()
    }

    #[test]
    fn parses_group_lists() {
        // (query, members shown, count, sortBy)
        let cases: Vec<(&str, usize, usize, Option<SortBy>)> = vec![
            ("", 0, 100, None),
            ("includeMembers=false", 0, 100, None),
            ("includeMembers=true", 500, 100, None),
            ("includeMembers=TRUE&count=5", 500, 5, None),
            (
                "includeMembers=true&excludedAttributes=members",
                0,
                100,
                None,
            ),
            (
                "includeMembers=true&excludedAttributes=meta,Members",
                0,
                100,
                None,
            ),
            (
                "includeMembers=true&excludedAttributes=urn:ietf:params:scim:schemas:core:2.0:Group:members",
                0,
                100,
                None,
            ),
            (
                "includeMembers=true&excludedAttributes=meta",
                500,
                100,
                None,
            ),
            ("excludedAttributes=members", 0, 100, None),
            ("includeMembers=true&memberType=user", 500, 100, None),
            ("includeMembers=true&memberType=Group", 0, 100, None),
            ("includeMembers=true&memberType=machine", 0, 100, None),
            ("attributes=displayName", 0, 100, None),
            ("sortBy=displayName", 0, 100, Some(SortBy::DisplayName)),
            ("count=5000", 0, 1000, None),
            (
                "filter=displayName+Eq+%22a%22+or+displayName+Eq+%22b%22",
                0,
                100,
                None,
            ),
            (
                "filter=members%5Bvalue+eq+%22a%22%5D&includeMembers=true",
                500,
                100,
                None,
            ),
        ];
        for (raw, shown, count, sort_by) in cases {
            let q = parse_group_list(Some(raw), &cfg()).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(
                (q.shown, q.list.count, q.list.sort_by),
                (shown, count, sort_by),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_bad_group_lists() {
        let cases = [
            ("includeMembers=yes", ScimType::InvalidValue),
            ("memberType=robot", ScimType::InvalidValue),
            ("sortBy=userName", ScimType::InvalidValue),
            ("count=x", ScimType::InvalidValue),
            ("filter=displayName+co+%22a%22", ScimType::InvalidFilter),
            (
                "filter=members%5Btype+eq+%22user%22%5D",
                ScimType::InvalidFilter,
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_group_list(Some(raw), &cfg()).unwrap_err().scim_type(),
                Some(want),
                "{raw}"
            );
        }
    }

    #[test]
    fn parses_single_group_and_member_page_queries() {
        let shown = [
            ("", 500),
            ("excludedAttributes=members", 0),
            ("EXCLUDEDATTRIBUTES=MEMBERS", 0),
            ("excludedAttributes=externalId", 500),
            ("excludedAttributes=xmembers", 500),
            ("excludedAttributes=members.value", 500),
        ];
        for (raw, want) in shown {
            assert_eq!(parse_shown(Some(raw)), want, "{raw}");
        }
        assert_eq!(parse_shown(None), 500);

        // (query, startIndex, count, users)
        let pages = [
            ("", 1, 500, true),
            ("startIndex=501&count=100", 501, 100, true),
            ("count=1000", 1, 500, true),
            ("count=0", 1, 0, true),
            ("startIndex=-3", 1, 500, true),
            ("memberType=user", 1, 500, true),
            ("memberType=group", 1, 500, false),
        ];
        for (raw, start, count, users) in pages {
            assert_eq!(
                parse_members_query(Some(raw)).unwrap(),
                MembersQuery {
                    start_index: start,
                    count,
                    users
                },
                "{raw}"
            );
        }
        for bad in ["count=many", "startIndex=1.5", "memberType=robot"] {
            assert_eq!(
                parse_members_query(Some(bad)).unwrap_err().scim_type(),
                Some(ScimType::InvalidValue),
                "{bad}"
            );
        }
    }
}
