//! `GET /v1.0/users` and `GET /v1.0/groups`: listing and searching live users and groups, as
//! an admin does when picking who is in scope.
//!
//! Supported query options, as Graph documents them for directory objects:
//! - `$search="prop:term"`, clauses joined by `AND` / `OR` (`AND` binds tighter), a `"` in a
//!   term escaped as `\"` and a `\` as `\\`. Graph's search is tokenized: a value and a term
//!   are split into words (on anything but letters and digits, case-insensitively), and a
//!   clause matches when every word of its term begins some word of the value. `$search` is
//!   an advanced query: without the `ConsistencyLevel: eventual` header Graph answers 400
//!   `Request_UnsupportedQuery`, and so does the simulator.
//! - `$filter=startswith(prop,'text')`, clauses joined by `or`, a `'` in the text doubled;
//!   case-insensitive, like Graph's default collation. No header needed.
//! - `$select` (unknown properties refused), `$top` (1 to 999; default 100), `$count=true`
//!   (adds `@odata.count`), and `$skiptoken` from the `@odata.nextLink` of a longer result.
//!
//! Only live objects are listed, in generation order; the skiptoken is the index of the
//! next match, stable because objects are never removed from the store. A group's `mail` is
//! `<mailNickname>@<tenant domain>` for mail-enabled (non-security) groups and null for
//! security groups. These reads are not throttled here; they are counted in
//! `search_requests`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::envelope::RequestIds;
use super::{Counters, GraphSim, Tenant, UserState};
use crate::synthetic::{EntraGroup, EntraUser, Prop};

/// Most objects on one page (Graph's `$top` limit for users and groups).
pub(crate) const MAX_TOP: usize = 999;
/// Objects on a page without `$top` (Graph's default for directory lists).
const DEFAULT_TOP: usize = 100;

/// The user properties listed without `$select` (Graph's default set, less what the
/// simulator does not model).
const DEFAULT_USER_PROPS: &[Prop] = &[
    Prop::BusinessPhones,
    Prop::DisplayName,
    Prop::GivenName,
    Prop::JobTitle,
    Prop::Mail,
    Prop::MobilePhone,
    Prop::Surname,
    Prop::UserPrincipalName,
];

/// The group properties the simulator models; all are listed without `$select`.
const GROUP_PROPS: &[&str] = &[
    "displayName",
    "description",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
];

/// Which collection a request lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    Users,
    Groups,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Collection::Users => "users",
            Collection::Groups => "groups",
        }
    }

    fn entity(self) -> &'static str {
        match self {
            Collection::Users => "microsoft.graph.user",
            Collection::Groups => "microsoft.graph.group",
        }
    }
}

/// A refused request: status, Graph error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

fn bad(code: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        status: StatusCode::BAD_REQUEST,
        code,
        message: message.into(),
    }
}

/// One `prop:term` clause of a `$search`: the property (as sent) and the term's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    pub prop: String,
    pub words: Vec<String>,
}

/// A parsed `$search`: clauses OR-ed, each a list of clauses AND-ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Search(pub Vec<Vec<Clause>>);

/// Lower-cased words of a value or a term: runs of letters and digits.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Parses a `$search` value (quotes included).
pub(crate) fn parse_search(raw: &str) -> Result<Search, QueryError> {
    let syntax = |what: &str| bad("BadRequest", format!("Syntax error: {what} in $search."));
    let mut chars = raw.trim().chars().peekable();
    let mut any: Vec<Vec<Clause>> = vec![Vec::new()];
    let mut expect_clause = true;
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else { break };
        if expect_clause {
            if c != '"' {
                return Err(syntax("expected a quoted \"property:term\" clause"));
            }
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err(syntax("unterminated quote")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => text.push(escaped),
                        _ => return Err(syntax("invalid escape")),
                    },
                    Some(other) => text.push(other),
                }
            }
            let Some((prop, term)) = text.split_once(':') else {
                return Err(bad(
                    "Request_UnsupportedQuery",
                    "$search on directory objects needs \"property:term\" clauses.",
                ));
            };
            let clause = Clause {
                prop: prop.trim().to_string(),
                words: words(term),
            };
            if let Some(all) = any.last_mut() {
                all.push(clause);
            }
            expect_clause = false;
        } else {
            let mut word = String::new();
            while let Some(c) = chars.next_if(|c| c.is_ascii_alphabetic()) {
                word.push(c);
            }
            match word.as_str() {
                "AND" => {}
                "OR" => any.push(Vec::new()),
                _ => return Err(syntax("expected AND or OR between clauses")),
            }
            expect_clause = true;
        }
    }
    if expect_clause {
        return Err(syntax("expected a clause"));
    }
    Ok(Search(any))
}

/// One `startswith(prop,'text')` clause of a `$filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartsWith {
    pub prop: String,
    /// Lower-cased.
    pub prefix: String,
}

/// Parses a `$filter` of `startswith` clauses joined by `or`.
pub(crate) fn parse_filter(raw: &str) -> Result<Vec<StartsWith>, QueryError> {
    let unsupported = || {
        bad(
            "Request_UnsupportedQuery",
            "Unsupported query: $filter supports startswith(property,'text') clauses joined by or.",
        )
    };
    let mut rest = raw.trim();
    let mut clauses = Vec::new();
    loop {
        let head = rest.get(..11).ok_or_else(unsupported)?;
        if !head.eq_ignore_ascii_case("startswith(") {
            return Err(unsupported());
        }
        rest = &rest[11..];
        let (prop, after) = rest.split_once(',').ok_or_else(unsupported)?;
        rest = after
            .trim_start()
            .strip_prefix('\'')
            .ok_or_else(unsupported)?;
        let mut prefix = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(unsupported()),
                Some((i, '\'')) => {
                    if rest[i + 1..].starts_with('\'') {
                        prefix.push('\'');
                        chars.next();
                    } else {
                        break i + 1;
                    }
                }
                Some((_, c)) => prefix.push(c),
            }
        };
        rest = rest[end..]
            .trim_start()
            .strip_prefix(')')
            .ok_or_else(unsupported)?;
        clauses.push(StartsWith {
            prop: prop.trim().to_string(),
            prefix: prefix.to_lowercase(),
        });
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(clauses);
        }
        let (word, after) = rest.split_at(rest.find(char::is_whitespace).unwrap_or(rest.len()));
        if !word.eq_ignore_ascii_case("or") {
            return Err(unsupported());
        }
        rest = after.trim_start();
    }
}

/// Whether a value matches a search term's words: each begins some word of the value.
fn search_matches(value: &str, term: &[String]) -> bool {
    if term.is_empty() {
        return false;
    }
    let value = words(value);
    term.iter()
        .all(|t| value.iter().any(|w| w.starts_with(t.as_str())))
}

/// A listable object: whether it is live, and its properties by Graph name.
trait Listed {
    fn live(&self) -> bool;
    /// `Err` for a property the entity does not have; `Ok(None)` for one without a value.
    fn text(&self, prop: &str, domain: &str) -> Result<Option<String>, ()>;
    fn render(&self, select: &[String], domain: &str) -> Value;
}

fn user_prop(name: &str) -> Option<Prop> {
    // `manager` is a relationship, not a property of the list.
    Prop::from_wire_name(name).filter(|p| *p != Prop::Manager)
}

impl Listed for (&EntraUser, UserState) {
    fn live(&self) -> bool {
        self.1 == UserState::Live
    }

    fn text(&self, prop: &str, _domain: &str) -> Result<Option<String>, ()> {
        if prop.eq_ignore_ascii_case("id") {
            return Ok(Some(self.0.id.clone()));
        }
        let prop = user_prop(prop).ok_or(())?;
        Ok(match self.0.value(prop) {
            Some(Value::String(s)) => Some(s),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Some(other) => Some(other.to_string()),
            None => None,
        })
    }

    fn render(&self, select: &[String], _domain: &str) -> Value {
        let mut object = Map::new();
        for name in select {
            if let Some(prop) = user_prop(name) {
                let value = self.0.value(prop).unwrap_or(match prop {
                    Prop::BusinessPhones => json!([]),
                    _ => Value::Null,
                });
                object.insert(prop.wire_name().to_string(), value);
            }
        }
        object.insert("id".into(), json!(self.0.id));
        Value::Object(object)
    }
}

fn group_mail(group: &EntraGroup, domain: &str) -> Option<String> {
    (!group.security_enabled).then(|| format!("{}@{domain}", group.mail_nickname))
}

impl Listed for (&EntraGroup, UserState) {
    fn live(&self) -> bool {
        self.1 == UserState::Live
    }

    fn text(&self, prop: &str, domain: &str) -> Result<Option<String>, ()> {
        let g = self.0;
        let name = GROUP_PROPS
            .iter()
            .chain(&["id"])
            .find(|p| p.eq_ignore_ascii_case(prop))
            .ok_or(())?;
        Ok(match *name {
            "id" => Some(g.id.clone()),
            "displayName" => Some(g.display_name.clone()),
            "description" => g.description.clone(),
            "mail" => group_mail(g, domain),
            "mailNickname" => Some(g.mail_nickname.clone()),
            "mailEnabled" => Some((!g.security_enabled).to_string()),
            _ => Some(g.security_enabled.to_string()),
        })
    }

    fn render(&self, select: &[String], domain: &str) -> Value {
        let g = self.0;
        let mut object = Map::new();
        for name in select {
            let Some(name) = GROUP_PROPS.iter().find(|p| p.eq_ignore_ascii_case(name)) else {
                continue;
            };
            let value = match *name {
                "mailEnabled" => json!(!g.security_enabled),
                "securityEnabled" => json!(g.security_enabled),
                _ => self
                    .text(name, domain)
                    .ok()
                    .flatten()
                    .map_or(Value::Null, Value::String),
            };
            object.insert(name.to_string(), value);
        }
        object.insert("id".into(), json!(g.id));
        Value::Object(object)
    }
}

/// A list request's options, parsed and checked.
#[derive(Debug)]
struct ListQuery {
    search: Option<Search>,
    filter: Vec<StartsWith>,
    /// Selected property names (without `id`, which is always listed).
    select: Vec<String>,
    top: usize,
    count: bool,
    /// Index to start at.
    skip: usize,
    /// The query as sent, less `$skiptoken`, for the nextLink.
    pairs: Vec<(String, String)>,
}

fn parse_query(raw: Option<&str>, collection: Collection) -> Result<ListQuery, QueryError> {
    let mut query = ListQuery {
        search: None,
        filter: Vec::new(),
        select: match collection {
            Collection::Users => DEFAULT_USER_PROPS
                .iter()
                .map(|p| p.wire_name().to_string())
                .collect(),
            Collection::Groups => GROUP_PROPS.iter().map(|p| p.to_string()).collect(),
        },
        top: DEFAULT_TOP,
        count: false,
        skip: 0,
        pairs: Vec::new(),
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let name = key.trim_start_matches('$').to_ascii_lowercase();
        if name != "skiptoken" {
            query.pairs.push((key.to_string(), value.to_string()));
        }
        match name.as_str() {
            "search" => query.search = Some(parse_search(&value)?),
            "filter" => query.filter = parse_filter(&value)?,
            "select" => {
                query.select = value
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("id"))
                    .map(str::to_string)
                    .collect()
            }
            "top" => {
                query.top = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_TOP).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "Request_UnsupportedQuery",
                            format!("Invalid page size specified: '{value}'. Must be between 1 and {MAX_TOP} inclusive."),
                        )
                    })?
            }
            "count" => query.count = value.trim().eq_ignore_ascii_case("true"),
            "skiptoken" => {
                query.skip = value
                    .strip_prefix('X')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| bad("Request_UnsupportedQuery", "Invalid skip token."))?
            }
            "orderby" | "expand" => {
                return Err(bad(
                    "Request_UnsupportedQuery",
                    format!("${name} is not supported by the simulator."),
                ));
            }
            _ => {}
        }
    }
    Ok(query)
}

/// Checks that every property the query names exists on the entity.
fn check_props(
    query: &ListQuery,
    sample: &dyn Listed,
    collection: Collection,
) -> Result<(), QueryError> {
    let searched = query
        .search
        .iter()
        .flat_map(|s| s.0.iter().flatten())
        .map(|c| &c.prop);
    let filtered = query.filter.iter().map(|f| &f.prop);
    for prop in query.select.iter().chain(searched).chain(filtered) {
        if sample.text(prop, "").is_err() {
            return Err(bad(
                "BadRequest",
                format!(
                    "Could not find a property named '{prop}' on type '{}'.",
                    collection.entity()
                ),
            ));
        }
    }
    Ok(())
}

fn matches(object: &dyn Listed, query: &ListQuery, domain: &str) -> bool {
    if !object.live() {
        return false;
    }
    let value = |prop: &str| object.text(prop, domain).ok().flatten().unwrap_or_default();
    let searched = query.search.as_ref().is_none_or(|s| {
        s.0.iter().any(|all| {
            all.iter()
                .all(|c| search_matches(&value(&c.prop), &c.words))
        })
    });
    let filtered = query.filter.is_empty()
        || query
            .filter
            .iter()
            .any(|f| value(&f.prop).to_lowercase().starts_with(&f.prefix));
    searched && filtered
}

/// The answer to a list request over `objects` (pure but for the objects it reads).
fn answer(
    objects: &[&dyn Listed],
    query: &ListQuery,
    collection: Collection,
    domain: &str,
    base_url: &str,
) -> Value {
    let mut value = Vec::new();
    let mut next = None;
    for (i, object) in objects.iter().enumerate().skip(query.skip) {
        if !matches(*object, query, domain) {
            continue;
        }
        if value.len() == query.top {
            next = Some(i);
            break;
        }
        value.push(object.render(&query.select, domain));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "https://graph.microsoft.com/v1.0/$metadata#{}",
            collection.path()
        )),
    );
    if query.count {
        let total = objects
            .iter()
            .filter(|o| matches(**o, query, domain))
            .count();
        body.insert("@odata.count".into(), json!(total));
    }
    if let Some(next) = next {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query.pairs {
            serializer.append_pair(k, v);
        }
        serializer.append_pair("$skiptoken", &format!("X{next}"));
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{base_url}/v1.0/{}?{}",
                collection.path(),
                serializer.finish()
            )),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Value::Object(body)
}

/// Whether the request opted in to advanced queries (`ConsistencyLevel: eventual`).
fn eventual(headers: &HeaderMap) -> bool {
    headers
        .get_all("consistencylevel")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.trim().eq_ignore_ascii_case("eventual"))
}

fn respond(
    tenant: &Tenant,
    headers: &HeaderMap,
    raw: Option<&str>,
    collection: Collection,
) -> Result<Value, QueryError> {
    let query = parse_query(raw, collection)?;
    if query.search.is_some() && !eventual(headers) {
        return Err(bad(
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
        ));
    }
    let domain = tenant.spec.domain.to_ascii_lowercase();
    let base_url = super::http::base_url(headers);
    let store = tenant.read();
    match collection {
        Collection::Users => {
            let objects: Vec<(&EntraUser, UserState)> =
                store.users().iter().map(|u| (&u.user, u.state)).collect();
            let listed: Vec<&dyn Listed> = objects.iter().map(|o| o as &dyn Listed).collect();
            answer_checked(&listed, &query, collection, &domain, &base_url)
        }
        Collection::Groups => {
            let objects: Vec<(&EntraGroup, UserState)> = store
                .groups()
                .groups()
                .iter()
                .map(|g| (&g.group, g.state))
                .collect();
            let listed: Vec<&dyn Listed> = objects.iter().map(|o| o as &dyn Listed).collect();
            answer_checked(&listed, &query, collection, &domain, &base_url)
        }
    }
}

fn answer_checked(
    objects: &[&dyn Listed],
    query: &ListQuery,
    collection: Collection,
    domain: &str,
    base_url: &str,
) -> Result<Value, QueryError> {
    if let Some(sample) = objects.first() {
        check_props(query, *sample, collection)?;
    }
    Ok(answer(objects, query, collection, domain, base_url))
}

fn list(
    sim: &GraphSim,
    headers: &HeaderMap,
    raw: Option<&str>,
    collection: Collection,
) -> Response {
    let ids = RequestIds::new(headers);
    let tenant = match super::http::authenticated(sim, headers, &ids) {
        Ok(tenant) => tenant,
        Err(refused) => return *refused,
    };
    Counters::bump(&tenant.counters.search_requests, 1);
    match respond(&tenant, headers, raw, collection) {
        Ok(body) => ids.stamp(axum::Json(body).into_response()),
        Err(e) => ids.graph_error(e.status, e.code, &e.message),
    }
}

/// `GET /v1.0/users` for the tenant of the bearer token.
pub(crate) async fn users(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    list(&sim, &headers, raw.as_deref(), Collection::Users)
}

/// `GET /v1.0/groups` for the tenant of the bearer token.
pub(crate) async fn groups(
    State(sim): State<GraphSim>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    list(&sim, &headers, raw.as_deref(), Collection::Groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::generate_users;

    fn clause(prop: &str, words: &[&str]) -> Clause {
        Clause {
            prop: prop.into(),
            words: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    #[test]
    fn search_values_parse() {
        let cases: &[(&str, Option<Search>)] = &[
            (
                r#""displayName:ada""#,
                Some(Search(vec![vec![clause("displayName", &["ada"])]])),
            ),
            (
                r#""displayName:Ada Love" OR "mail:ada""#,
                Some(Search(vec![
                    vec![clause("displayName", &["ada", "love"])],
                    vec![clause("mail", &["ada"])],
                ])),
            ),
            (
                r#""displayName:a" AND "mail:b" OR "surname:c""#,
                Some(Search(vec![
                    vec![clause("displayName", &["a"]), clause("mail", &["b"])],
                    vec![clause("surname", &["c"])],
                ])),
            ),
            // Escaped quote and backslash: separators, so words split there.
            (
                r#""displayName:say \"hi\" a\\b""#,
                Some(Search(vec![vec![clause(
                    "displayName",
                    &["say", "hi", "a", "b"],
                )]])),
            ),
            (r#""displayName:ada"#, None),
            (r#"displayName:ada"#, None),
            (r#""ada""#, None),
            (r#""displayName:a" "mail:b""#, None),
            (r#""displayName:a" OR"#, None),
            (r#""displayName:a\x""#, None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_search(raw).ok(), *want, "{raw}");
        }
    }

    #[test]
    fn filter_values_parse() {
        let sw = |prop: &str, prefix: &str| StartsWith {
            prop: prop.into(),
            prefix: prefix.into(),
        };
        let cases: &[(&str, Option<Vec<StartsWith>>)] = &[
            (
                "startswith(displayName,'Ada')",
                Some(vec![sw("displayName", "ada")]),
            ),
            (
                "startsWith(displayName, 'O''Brien') or startswith(mail,'x')",
                Some(vec![sw("displayName", "o'brien"), sw("mail", "x")]),
            ),
            ("startswith(displayName,'a'')", None),
            ("startswith(displayName,'a') and startswith(mail,'b')", None),
            ("displayName eq 'a'", None),
            ("startswith(displayName,a)", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_filter(raw).ok(), *want, "{raw}");
        }
    }

    #[test]
    fn search_matches_word_prefixes() {
        let term = |t: &str| words(t);
        for (value, t, want) in [
            ("Ada Lovelace", "ada", true),
            ("Ada Lovelace", "love", true),
            ("Ada Lovelace", "lace", false),
            ("Ada Lovelace", "ada lo", true),
            ("Ada Lovelace", "ada x", false),
            ("ada.lovelace.3@contoso.example", "lovelace", true),
            ("Zoë Smith", "ZOË", true),
            ("Ada", "", false),
        ] {
            assert_eq!(search_matches(value, &term(t)), want, "{value} / {t}");
        }
    }

    #[test]
    fn pages_follow_top_and_skiptoken() {
        let users = generate_users(3, 300, "contoso.example");
        let objects: Vec<(&EntraUser, UserState)> =
            users.iter().map(|u| (u, UserState::Live)).collect();
        let listed: Vec<&dyn Listed> = objects.iter().map(|o| o as &dyn Listed).collect();
        let want: Vec<&str> = users
            .iter()
            .filter(|u| words(&u.display_name).iter().any(|w| w.starts_with("ada")))
            .map(|u| u.id.as_str())
            .collect();
        assert!(want.len() > 3, "the generator names few users Ada");
        let mut raw =
            r#"$search="displayName:Ada"&$top=2&$count=true&$select=displayName,mail"#.to_string();
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let query = parse_query(Some(&raw), Collection::Users).unwrap();
            let body = answer_checked(
                &listed,
                &query,
                Collection::Users,
                "contoso.example",
                "http://h",
            )
            .unwrap();
            assert_eq!(body["@odata.count"], want.len());
            let page = body["value"].as_array().unwrap();
            assert!(page.len() <= 2);
            for user in page {
                assert_eq!(user.as_object().unwrap().len(), 3, "{user}");
                got.push(user["id"].as_str().unwrap().to_string());
            }
            match body["@odata.nextLink"].as_str() {
                Some(next) => {
                    raw = next.split_once('?').unwrap().1.to_string();
                    assert!(next.starts_with("http://h/v1.0/users?"));
                }
                None => break,
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_properties_and_bad_pages_are_refused() {
        let users = generate_users(3, 2, "contoso.example");
        let objects: Vec<(&EntraUser, UserState)> =
            users.iter().map(|u| (u, UserState::Live)).collect();
        let listed: Vec<&dyn Listed> = objects.iter().map(|o| o as &dyn Listed).collect();
        for raw in [
            "$select=displayName,nope",
            "$select=manager",
            r#"$search="nope:x""#,
            "$filter=startswith(nope,'x')",
            "$top=0",
            "$top=1000",
            "$skiptoken=12",
        ] {
            let refused = parse_query(Some(raw), Collection::Users)
                .and_then(|q| answer_checked(&listed, &q, Collection::Users, "d", "http://h"));
            assert_eq!(
                refused.map_err(|e| e.status),
                Err(StatusCode::BAD_REQUEST),
                "{raw}"
            );
        }
        assert!(parse_query(Some("$top=999"), Collection::Users).is_ok());
    }
}
