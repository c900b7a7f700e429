//! List query parameters and the ListResponse page of `GET /Users` and `GET /Groups`
//! (webex-scim.md §2, §3; RFC 7644 §3.4.2): 1-based `startIndex` (< 1 → 1), `count` defaulted
//! and capped, `count=0` → totals only, `sortBy` from a per-resource set (Users: userName, id,
//! meta.lastModified; Groups: displayName, id, meta.lastModified). On `/Users`, `attributes`,
//! `excludedAttributes` and the Webex group parameters are accepted and ignored; `/Groups`
//! reads its own parameters through [`parse_query_with`].

use serde_json::{Map, Value, json};

use super::ScimSimConfig;
use super::error::{ScimError, ScimType};
use super::filter::{Filter, parse_filter};
use super::schema::LIST_RESPONSE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    UserName,
    DisplayName,
    Id,
    LastModified,
}

/// The `sortBy` values `/Users` accepts.
pub const USER_SORTS: &[(&str, SortBy)] = &[
    ("userName", SortBy::UserName),
    ("id", SortBy::Id),
    ("meta.lastModified", SortBy::LastModified),
];

/// The `sortBy` values `/Groups` accepts.
pub const GROUP_SORTS: &[(&str, SortBy)] = &[
    ("displayName", SortBy::DisplayName),
    ("id", SortBy::Id),
    ("meta.lastModified", SortBy::LastModified),
];

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    pub sort_by: Option<SortBy>,
    pub descending: bool,
}

fn invalid(detail: String) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

/// Parses the raw (URL-encoded) query string of `GET /Users`.
pub fn parse_query(raw: Option<&str>, config: &ScimSimConfig) -> Result<ListQuery, ScimError> {
    parse_query_with(raw, config, USER_SORTS, |_, _| Ok(()))
}

/// Parses the list parameters every list shares; `sorts` are the accepted `sortBy` values and
/// `other(lower-cased name, value)` sees each remaining parameter.
pub fn parse_query_with(
    raw: Option<&str>,
    config: &ScimSimConfig,
    sorts: &[(&str, SortBy)],
    mut other: impl FnMut(&str, &str) -> Result<(), ScimError>,
) -> Result<ListQuery, ScimError> {
    let mut q = ListQuery {
        filter: None,
        start_index: 1,
        count: config.default_count.min(config.max_count),
        sort_by: None,
        descending: false,
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.to_ascii_lowercase().as_str() {
            "filter" => {
                let f = parse_filter(&value).map_err(|e| {
                    ScimError::bad(ScimType::InvalidFilter, format!("filter {value:?}: {e}"))
                })?;
                q.filter = Some(f);
            }
            "startindex" => q.start_index = parse_start_index(&value)?,
            "count" => q.count = parse_count(&value, config.max_count)?,
            "sortby" => {
                let Some((_, by)) = sorts.iter().find(|(n, _)| n.eq_ignore_ascii_case(&value))
                else {
                    let names: Vec<&str> = sorts.iter().map(|(n, _)| *n).collect();
                    return Err(invalid(format!(
                        "sortBy {value:?} is not one of {}",
                        names.join(", ")
                    )));
                };
                q.sort_by = Some(*by);
            }
            "sortorder" => {
                q.descending = match value.to_ascii_lowercase().as_str() {
                    "ascending" => false,
                    "descending" => true,
                    _ => {
                        return Err(invalid(format!(
                            "sortOrder {value:?} is not ascending or descending"
                        )));
                    }
                };
            }
            other_key => other(other_key, &value)?,
        }
    }
    Ok(q)
}

/// A 1-based `startIndex`; below 1 means 1 (RFC 7644 §3.4.2.4).
pub fn parse_start_index(value: &str) -> Result<usize, ScimError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(format!("startIndex {value:?} is not an integer")))?;
    Ok(usize::try_from(n.max(1)).unwrap_or(usize::MAX))
}

/// A `count`, negative as 0, capped at `max` (the server may return fewer than asked).
pub fn parse_count(value: &str, max: usize) -> Result<usize, ScimError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(format!("count {value:?} is not an integer")))?;
    Ok(usize::try_from(n.max(0)).unwrap_or(usize::MAX).min(max))
}

/// The sort key of a user or group for `sort_by`.
pub fn sort_key(resource: &Map<String, Value>, sort_by: SortBy) -> String {
    let s = match sort_by {
        SortBy::UserName => resource.get("userName"),
        SortBy::DisplayName => resource.get("displayName"),
        SortBy::Id => resource.get("id"),
        SortBy::LastModified => resource.get("meta").and_then(|m| m.get("lastModified")),
    };
    s.and_then(Value::as_str).unwrap_or_default().to_lowercase()
}

/// The `[from, to)` range of a result list that a page covers.
pub fn page_range(total: usize, q: &ListQuery) -> (usize, usize) {
    let from = q.start_index.saturating_sub(1).min(total);
    let to = from.saturating_add(q.count).min(total);
    (from, to)
}

pub fn list_response(total: usize, start_index: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

/// The ListResponse for `hits`, which come in creation order: sorted as `q` asks (a stable
/// sort, so equal keys keep creation order and lists stay stable across pages), then paged.
/// `key` gives a hit's sort key and `render` the resource a page shows.
pub fn sorted_page<T>(
    mut hits: Vec<T>,
    q: &ListQuery,
    key: impl Fn(&T, SortBy) -> String,
    render: impl Fn(&T) -> Value,
) -> Value {
    if let Some(sort_by) = q.sort_by {
        let mut keyed: Vec<(String, T)> = hits.into_iter().map(|h| (key(&h, sort_by), h)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        if q.descending {
            keyed.reverse();
        }
        hits = keyed.into_iter().map(|(_, h)| h).collect();
    }
    let (from, to) = page_range(hits.len(), q);
    let page = hits[from..to].iter().map(render).collect();
    list_response(hits.len(), q.start_index, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ScimSimConfig {
        ScimSimConfig {
            max_count: 1000,
            default_count: 100,
            ..ScimSimConfig::default()
        }
    }

    #[test]
    fn parses_queries() {
        // raw, start_index, count, sort_by, descending, has_filter
        type Case = (
            Option<&'static str>,
            usize,
            usize,
            Option<SortBy>,
            bool,
            bool,
        );
        let cases: Vec<Case> = vec![
            (None, 1, 100, None, false, false),
            (Some("startIndex=5&count=10"), 5, 10, None, false, false),
            (Some("startIndex=0"), 1, 100, None, false, false),
            (Some("startIndex=-7"), 1, 100, None, false, false),
            (Some("count=0"), 1, 0, None, false, false),
            (Some("count=-3"), 1, 0, None, false, false),
            (Some("count=5000"), 1, 1000, None, false, false),
            (
                Some("filter=userName+eq+%22a%40x%22"),
                1,
                100,
                None,
                false,
                true,
            ),
            (
                Some("filter=userName%20eq%20%22%2B1%22&excludedAttributes=groups"),
                1,
                100,
                None,
                false,
                true,
            ),
            (
                Some("sortBy=userName&sortOrder=descending"),
                1,
                100,
                Some(SortBy::UserName),
                true,
                false,
            ),
            (
                Some("SORTBY=meta.lastModified"),
                1,
                100,
                Some(SortBy::LastModified),
                false,
                false,
            ),
        ];
        for (raw, start, count, sort, desc, has_filter) in cases {
            let q = parse_query(raw, &cfg()).unwrap();
            assert_eq!(
                (
                    q.start_index,
                    q.count,
                    q.sort_by,
                    q.descending,
                    q.filter.is_some()
                ),
                (start, count, sort, desc, has_filter),
                "{raw:?}"
            );
        }
        let plus = parse_query(Some("filter=phoneNumbers.value+eq+%22%2B1%22"), &cfg()).unwrap();
        assert!(format!("{:?}", plus.filter).contains("\"+1\""));
    }

    #[test]
    fn rejects_bad_queries() {
        let cases = [
            ("filter=userName+co+%22a%22", ScimType::InvalidFilter),
            ("filter=", ScimType::InvalidFilter),
            ("startIndex=abc", ScimType::InvalidValue),
            ("count=1.5", ScimType::InvalidValue),
            ("sortBy=displayName", ScimType::InvalidValue),
            ("sortOrder=up", ScimType::InvalidValue),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_query(Some(raw), &cfg()).unwrap_err().scim_type(),
                Some(want),
                "{raw}"
            );
        }
    }

    #[test]
    fn groups_sort_by_their_own_attributes() {
        // (sortBy, accepted by /Users, accepted by /Groups)
        let cases = [
            ("userName", Some(SortBy::UserName), None),
            ("displayName", None, Some(SortBy::DisplayName)),
            ("DISPLAYNAME", None, Some(SortBy::DisplayName)),
            ("id", Some(SortBy::Id), Some(SortBy::Id)),
            (
                "meta.lastModified",
                Some(SortBy::LastModified),
                Some(SortBy::LastModified),
            ),
        ];
        for (by, users, groups) in cases {
            let raw = format!("sortBy={by}");
            for (sorts, want) in [(USER_SORTS, users), (GROUP_SORTS, groups)] {
                let got = parse_query_with(Some(&raw), &cfg(), sorts, |_, _| Ok(()));
                match want {
                    Some(w) => assert_eq!(got.unwrap().sort_by, Some(w), "{raw}"),
                    None => assert_eq!(
                        got.unwrap_err().scim_type(),
                        Some(ScimType::InvalidValue),
                        "{raw}"
                    ),
                }
            }
        }
        let mut seen = Vec::new();
        let q = parse_query_with(
            Some("includeMembers=true&count=3&memberType=user"),
            &cfg(),
            GROUP_SORTS,
            |k, v| {
                seen.push(format!("{k}={v}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(q.count, 3);
        assert_eq!(seen, ["includemembers=true", "membertype=user"]);
    }

    #[test]
    fn pages() {
        let q = |start, count| ListQuery {
            filter: None,
            start_index: start,
            count,
            sort_by: None,
            descending: false,
        };
        let cases = [
            ((10, 1, 3), (0, 3)),
            ((10, 9, 3), (8, 10)),
            ((10, 11, 3), (10, 10)),
            ((10, 50, 3), (10, 10)),
            ((10, 1, 0), (0, 0)),
            ((0, 1, 100), (0, 0)),
        ];
        for ((total, start, count), want) in cases {
            assert_eq!(
                page_range(total, &q(start, count)),
                want,
                "{total} {start} {count}"
            );
        }
    }
}
