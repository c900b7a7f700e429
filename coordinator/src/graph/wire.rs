//! Graph delta page wire format, parsed into neutral [`SourceUser`]s. Pure: no I/O.

use serde::Deserialize;
use serde_json::{Map, Value};

use dirsync_proto::{RemovedReason, SourceUser};

use crate::CoordinatorError;

/// Where the walk goes after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageLink {
    /// More pages: follow this `@odata.nextLink` verbatim.
    Next(String),
    /// End of the round: persist this `@odata.deltaLink` for the next run.
    Delta(String),
}

/// One parsed page of `users/delta`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPage {
    pub users: Vec<SourceUser>,
    pub link: PageLink,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
    #[serde(default)]
    value: Vec<Map<String, Value>>,
}

/// The Graph error envelope: `{"error":{"code":..,"message":..,"innerError":{..}}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(rename = "innerError", alias = "innererror", default)]
    pub inner_error: Option<Box<Value>>,
}

impl ErrorEnvelope {
    /// Every `code` in the error and its nested `innerError` chain.
    pub fn codes(&self) -> Vec<String> {
        let mut codes = vec![self.error.code.clone()];
        let mut next = self.error.inner_error.as_deref();
        while let Some(inner) = next {
            if let Some(code) = inner.get("code").and_then(Value::as_str) {
                codes.push(code.to_string());
            }
            next = inner.get("innerError").or_else(|| inner.get("innererror"));
        }
        codes
    }
}

/// Splits a delta page body (users or groups) into its objects and where the walk goes next.
pub(crate) fn page_objects(
    body: &[u8],
) -> Result<(Vec<Map<String, Value>>, PageLink), CoordinatorError> {
    let raw: RawPage =
        serde_json::from_slice(body).map_err(|e| CoordinatorError::GraphPage(e.to_string()))?;
    let link = match (raw.next_link, raw.delta_link) {
        (Some(next), _) => PageLink::Next(next),
        (None, Some(delta)) => PageLink::Delta(delta),
        (None, None) => {
            return Err(CoordinatorError::GraphPage(
                "page has neither a nextLink nor a deltaLink".into(),
            ));
        }
    };
    Ok((raw.value, link))
}

/// Longest object id taken: Entra ids are GUIDs, and a mirror row's key must stay far below
/// PostgreSQL's index row limit.
const MAX_ID_LEN: usize = 256;

/// Longest piece of a hostile value quoted in an error message.
const EXCERPT_CHARS: usize = 100;

/// A value quoted in an error message, cut short: a page may carry megabyte strings.
pub(crate) fn excerpt(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Whether `id` can be an object id: 1 to [`MAX_ID_LEN`] bytes, no control characters.
pub(crate) fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && !id.contains(char::is_control)
}

/// Whether any string of the value, key or content, holds U+0000, which PostgreSQL cannot
/// store in `text` or `jsonb` (the mirror would refuse the whole batch).
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Takes an object's `id` and its `@removed` annotation, if any, out of it. The rest of the
/// object must be storable (no U+0000).
pub(crate) fn take_identity(
    obj: &mut Map<String, Value>,
) -> Result<(String, Option<RemovedReason>), CoordinatorError> {
    let id = match obj.remove("id") {
        Some(Value::String(id)) if usable_id(&id) => id,
        other => {
            return Err(CoordinatorError::GraphPage(format!(
                "object without a usable id (a string of 1 to {MAX_ID_LEN} bytes without control characters): {}",
                excerpt(&other)
            )));
        }
    };
    let removed = match obj.remove("@removed") {
        None => None,
        Some(r) => match r.get("reason").and_then(Value::as_str) {
            Some(reason) if reason.eq_ignore_ascii_case("changed") => Some(RemovedReason::Changed),
            Some(reason) if reason.eq_ignore_ascii_case("deleted") => Some(RemovedReason::Deleted),
            _ => {
                return Err(CoordinatorError::GraphPage(format!(
                    "object {id}: unknown @removed reason {}",
                    excerpt(&r)
                )));
            }
        },
    };
    if obj.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)) {
        return Err(CoordinatorError::GraphPage(format!(
            "object {id}: a property holds a nul character (u+0000)"
        )));
    }
    Ok((id, removed))
}

/// Parses one `users/delta` page body.
pub fn parse_page(body: &[u8]) -> Result<DeltaPage, CoordinatorError> {
    let (objects, link) = page_objects(body)?;
    let users = objects
        .into_iter()
        .map(parse_user)
        .collect::<Result<_, _>>()?;
    Ok(DeltaPage { users, link })
}

fn parse_user(mut obj: Map<String, Value>) -> Result<SourceUser, CoordinatorError> {
    let (id, removed) = take_identity(&mut obj)?;
    let manager = obj.remove("manager@delta");
    // Other annotations (`@odata.type`, `@odata.context`, ...) are not user properties.
    obj.retain(|k, _| !k.starts_with('@') && !k.contains("@odata."));
    if let Some(Value::Array(entries)) = manager {
        // The last entry wins; a removed manager link clears the reference.
        if let Some(last) = entries.last() {
            let value = match (last.get("@removed"), last.get("id").and_then(Value::as_str)) {
                (None, Some(mid)) => Value::String(mid.to_string()),
                (Some(_), _) => Value::Null,
                // Garbage must not clear the user's manager in Webex.
                (None, None) => {
                    return Err(CoordinatorError::GraphPage(format!(
                        "user {id}: manager@delta entry without a string id: {}",
                        excerpt(last)
                    )));
                }
            };
            obj.insert("manager".into(), value);
        }
    }
    Ok(SourceUser {
        id,
        removed,
        attributes: obj,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_documented_fixtures() {
        // F1 and F3 of the Graph reference.
        let f1 = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(displayName,givenName,surname)",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=FIXTURE-SKIP-0001",
            "value": [
                { "displayName": "Ada Lovelace", "givenName": "Ada", "surname": "Lovelace", "id": "u1" },
                { "id": "u2", "@removed": { "reason": "deleted" } },
                { "displayName": "Conf Room 7", "id": "u3" }
            ]
        });
        let page = parse_page(f1.to_string().as_bytes()).unwrap();
        assert_eq!(
            page.link,
            PageLink::Next(
                "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=FIXTURE-SKIP-0001".into()
            )
        );
        assert_eq!(page.users.len(), 3);
        assert_eq!(page.users[0].str_attr("surname"), Some("Lovelace"));
        assert_eq!(page.users[1].removed, Some(RemovedReason::Deleted));
        assert!(page.users[1].attributes.is_empty());
        assert!(
            !page.users[2].attributes.contains_key("givenName"),
            "never-set properties stay absent"
        );

        let f3 = json!({
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D2",
            "value": [
                { "id": "u4", "@removed": { "reason": "changed" } },
                { "id": "u5", "mobilePhone": null, "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m1"}] }
            ]
        });
        let page = parse_page(f3.to_string().as_bytes()).unwrap();
        assert_eq!(
            page.link,
            PageLink::Delta("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D2".into())
        );
        assert_eq!(page.users[0].removed, Some(RemovedReason::Changed));
        assert_eq!(
            page.users[1].attributes.get("mobilePhone"),
            Some(&Value::Null),
            "explicit null is kept"
        );
        assert_eq!(page.users[1].str_attr("manager"), Some("m1"));
    }

    #[test]
    fn empty_page_with_next_link_is_valid() {
        let page = parse_page(br#"{"@odata.nextLink":"n","value":[]}"#).unwrap();
        assert!(page.users.is_empty());
        assert_eq!(page.link, PageLink::Next("n".into()));
    }

    #[test]
    fn malformed_pages_are_errors_not_panics() {
        for body in [
            &br#"{"value":[]}"#[..],
            br#"{"@odata.deltaLink":"d","value":[{"displayName":"no id"}]}"#,
            br#"{"@odata.deltaLink":"d","value":[{"id":7}]}"#,
            br#"{"@odata.deltaLink":"d","value":[{"id":"x","@removed":{"reason":"vanished"}}]}"#,
            br#"{"@odata.deltaLink":"d","value":"#,
            b"<html>oops</html>",
        ] {
            assert!(
                matches!(parse_page(body), Err(CoordinatorError::GraphPage(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn nested_inner_error_codes_are_collected() {
        let env: ErrorEnvelope = serde_json::from_value(json!({
            "error": {"code": "badRequest", "message": "m", "innerError": {"code": "x", "innerError": {"code": "resyncRequired"}}}
        }))
        .unwrap();
        assert_eq!(env.codes(), vec!["badRequest", "x", "resyncRequired"]);
    }
}
