//! Finding users and groups by name: `GET /v1.0/users` and `/v1.0/groups` with `$search`, for
//! the admin who adds users and groups to an instance's scope.
//!
//! `$search="displayName:ada" OR "mail:ada"` is Graph's tokenized search (a word of the text
//! matches the start of a word of the value, without case), an advanced query: every request
//! carries `ConsistencyLevel: eventual`, without which Graph refuses it. Inside a `$search`
//! clause a `"` is escaped as `\"` and a `\` as `\\`; the query is percent-encoded with spaces
//! as `%20`. Results come in Graph's pages (`$top` up to 999); nextLinks are followed until
//! the limit is reached.

use serde::{Deserialize, Serialize};

use super::GraphClient;
use crate::CoordinatorError;

/// Longest search text, in characters.
pub const MAX_SEARCH_CHARS: usize = 256;
/// Most results Graph returns on one page of a directory list.
pub const MAX_TOP: usize = 999;

/// The properties read for a user found.
const USER_SEARCH_SELECT: &str = "id,displayName,userPrincipalName,mail";
/// The properties read for a group found.
const GROUP_SEARCH_SELECT: &str = "id,displayName,mail,description";
/// The header Graph's `$search` requires.
const EVENTUAL: (&str, &str) = ("ConsistencyLevel", "eventual");

/// A user found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundUser {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
}

/// A group found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundGroup {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Deserialize)]
struct WirePage<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// One page of a search: the objects found and the nextLink, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage<T> {
    pub found: Vec<T>,
    pub next: Option<String>,
}

fn parse_page<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    what: &str,
) -> Result<SearchPage<T>, CoordinatorError> {
    let page: WirePage<T> = serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::GraphPage(format!("{what} search: {e}")))?;
    Ok(SearchPage {
        found: page.value,
        next: page.next_link,
    })
}

/// Parses a page of `GET /v1.0/users`.
pub fn parse_users_page(body: &[u8]) -> Result<SearchPage<FoundUser>, CoordinatorError> {
    parse_page(body, "user")
}

/// Parses a page of `GET /v1.0/groups`.
pub fn parse_groups_page(body: &[u8]) -> Result<SearchPage<FoundGroup>, CoordinatorError> {
    parse_page(body, "group")
}

/// The search text as Graph reads it: trimmed, neither empty nor longer than
/// [`MAX_SEARCH_CHARS`], without control characters.
pub fn checked_text(text: &str) -> Result<&str, CoordinatorError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CoordinatorError::Invalid(
            "search must not be empty: give part of a name".into(),
        ));
    }
    if text.chars().count() > MAX_SEARCH_CHARS {
        return Err(CoordinatorError::Invalid(format!(
            "search is too long: at most {MAX_SEARCH_CHARS} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(CoordinatorError::Invalid(
            "search must not hold control characters".into(),
        ));
    }
    Ok(text)
}

/// One `"property:text"` clause of a `$search`, the text's `\` and `"` escaped.
pub fn search_clause(property: &str, text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{property}:{escaped}\"")
}

/// Percent-encodes a query value: form encoding with spaces as `%20` (a `+` in the value is
/// encoded as `%2B`, so every `+` of the form encoding is a space).
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The first request of a search of `collection` (`users` or `groups`) for `text` in the
/// display name or mail, reading `select`, `top` per page (1 to [`MAX_TOP`]).
pub fn search_url(
    graph_base_url: &str,
    collection: &str,
    select: &str,
    text: &str,
    top: usize,
) -> Result<String, CoordinatorError> {
    let text = checked_text(text)?;
    let search = format!(
        "{} OR {}",
        search_clause("displayName", text),
        search_clause("mail", text)
    );
    let base = format!("{}/v1.0/{collection}", graph_base_url.trim_end_matches('/'));
    // Checked, so that a bad base URL is an error here rather than a transport error later.
    url::Url::parse(&base)
        .map_err(|e| CoordinatorError::Invalid(format!("graph base url: {e}")))?;
    Ok(format!(
        "{base}?$search={}&$select={}&$top={}",
        encode(&search),
        encode(select),
        top.clamp(1, MAX_TOP)
    ))
}

impl GraphClient {
    /// Up to `limit` live users whose display name or mail has a word starting with each word
    /// of `text`, in Graph's order.
    pub async fn search_users(
        &self,
        text: &str,
        limit: usize,
    ) -> Result<Vec<FoundUser>, CoordinatorError> {
        let url = search_url(
            self.graph_base_url(),
            "users",
            USER_SEARCH_SELECT,
            text,
            limit,
        )?;
        self.search_pages(url, limit, parse_users_page).await
    }

    /// Up to `limit` live groups whose display name or mail matches `text`, likewise.
    pub async fn search_groups(
        &self,
        text: &str,
        limit: usize,
    ) -> Result<Vec<FoundGroup>, CoordinatorError> {
        let url = search_url(
            self.graph_base_url(),
            "groups",
            GROUP_SEARCH_SELECT,
            text,
            limit,
        )?;
        self.search_pages(url, limit, parse_groups_page).await
    }

    /// Follows a search's pages until `limit` objects are found or the pages end.
    async fn search_pages<T>(
        &self,
        mut url: String,
        limit: usize,
        parse: fn(&[u8]) -> Result<SearchPage<T>, CoordinatorError>,
    ) -> Result<Vec<T>, CoordinatorError> {
        let mut found = Vec::new();
        loop {
            let page = self.fetch_with_headers(&url, &[EVENTUAL], parse).await?;
            found.extend(page.found);
            match page.next {
                Some(next) if found.len() < limit => url = next,
                _ => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_escape_quotes_and_backslashes() {
        for (text, want) in [
            ("ada", r#""displayName:ada""#),
            ("Ada Lovelace", r#""displayName:Ada Lovelace""#),
            (r#"say "hi""#, r#""displayName:say \"hi\"""#),
            (r"a\b", r#""displayName:a\\b""#),
            (r#"\""#, r#""displayName:\\\"""#),
            ("O'Brien", r#""displayName:O'Brien""#),
        ] {
            assert_eq!(search_clause("displayName", text), want, "{text}");
        }
    }

    #[test]
    fn search_urls_are_percent_encoded() {
        let url = search_url("http://g/", "users", "id,displayName", " Ada Lo ", 25).unwrap();
        assert_eq!(
            url,
            "http://g/v1.0/users?$search=%22displayName%3AAda%20Lo%22%20OR%20%22mail%3AAda%20Lo%22\
             &$select=id%2CdisplayName&$top=25"
        );
        // What a server decodes is the clause as written.
        let parsed = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs[0],
            (
                "$search".to_string(),
                r#""displayName:Ada Lo" OR "mail:Ada Lo""#.to_string()
            )
        );
        // Characters that mean something in a query or a clause arrive intact.
        for text in [r#"a+b&c=d"#, r#"x"y\z"#, "50% #1", "Zoë/伟?"] {
            let url = search_url("https://graph.microsoft.com", "groups", "id", text, 5).unwrap();
            let parsed = url::Url::parse(&url).unwrap();
            let search = parsed
                .query_pairs()
                .find(|(k, _)| k == "$search")
                .unwrap()
                .1
                .into_owned();
            let want = format!(
                "{} OR {}",
                search_clause("displayName", text),
                search_clause("mail", text)
            );
            assert_eq!(search, want, "{text}");
            assert_eq!(parsed.query_pairs().count(), 3, "{url}");
        }
    }

    #[test]
    fn search_text_and_page_size_are_checked() {
        let long = "a".repeat(MAX_SEARCH_CHARS + 1);
        let longest = "é".repeat(MAX_SEARCH_CHARS);
        for (text, ok) in [
            ("", false),
            ("   ", false),
            (long.as_str(), false),
            (longest.as_str(), true),
            ("a\nb", false),
            ("a", true),
        ] {
            assert_eq!(
                search_url("http://g", "users", "id", text, 10).is_ok(),
                ok,
                "{text:?}"
            );
        }
        for (top, want) in [(0, "1"), (25, "25"), (5000, "999")] {
            let url = search_url("http://g", "users", "id", "a", top).unwrap();
            assert!(url.ends_with(&format!("$top={want}")), "{url}");
        }
        assert!(search_url("not a url", "users", "id", "a", 1).is_err());
    }

    #[test]
    fn pages_parse() {
        let body = br#"{
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=X1",
            "value": [
                {"id": "u1", "displayName": "Ada Lovelace",
                 "userPrincipalName": "ada@contoso.example", "mail": null},
                {"id": "u2"}
            ]
        }"#;
        let page = parse_users_page(body).unwrap();
        assert_eq!(
            page.next.as_deref(),
            Some("https://graph.microsoft.com/v1.0/users?$skiptoken=X1")
        );
        assert_eq!(
            page.found,
            vec![
                FoundUser {
                    id: "u1".into(),
                    display_name: Some("Ada Lovelace".into()),
                    user_principal_name: Some("ada@contoso.example".into()),
                    mail: None,
                },
                FoundUser {
                    id: "u2".into(),
                    display_name: None,
                    user_principal_name: None,
                    mail: None,
                },
            ]
        );
        let groups = parse_groups_page(
            br#"{"value": [{"id": "g1", "displayName": "Sales", "mail": "sales@c.example",
                 "description": "All of sales"}]}"#,
        )
        .unwrap();
        assert_eq!(groups.next, None);
        assert_eq!(groups.found[0].description.as_deref(), Some("All of sales"));
        for bad in [
            &br#"{"value": [{"displayName": "x"}]}"#[..],
            b"{}",
            b"<html>",
        ] {
            assert!(parse_users_page(bad).is_err());
        }
    }
}
