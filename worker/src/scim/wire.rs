//! SCIM 2.0 wire types the client reads, the request body encoder, and the error body parser.
//!
//! Responses are read leniently: only the fields the worker needs are typed, and an error
//! body that is not SCIM-shaped still yields a usable reason (a short excerpt of it).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::WorkerError;

pub const CORE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A request body's bytes, serialized once and sent as is by every attempt.
pub fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(&mut out, value);
    out
}

/// Appends the JSON of `value` to a body being written.
pub fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    // Only JSON values, strings and the client's own wire structs come here: every map key
    // is a string, so serde_json has nothing to refuse.
    serde_json::to_writer(out, value).expect("a json body with string keys always serializes");
}

/// The part of a SCIM user resource the worker needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserResource {
    #[serde(deserialize_with = "resource_id")]
    pub id: String,
    #[serde(rename = "userName", default)]
    pub user_name: Option<String>,
    /// The rest of the resource, read only for [`UserResource::entry_paths`].
    #[serde(flatten, default)]
    pub rest: serde_json::Map<String, Value>,
}

impl UserResource {
    /// The typed entries of multi-valued attributes the user has (`emails`,
    /// `phoneNumbers`, `addresses`, ...), as paths `attr[type eq "t"].value`: what
    /// [`crate::diff::entries_to_add`] needs to know which entries a PATCH may replace and
    /// which it must add. A user adopted from the org may lack entries we would replace.
    pub fn entry_paths(&self) -> crate::map::ScimAttributes {
        self.rest
            .iter()
            .filter_map(|(attr, v)| Some((attr, v.as_array()?)))
            .flat_map(|(attr, items)| {
                items.iter().filter_map(move |item| {
                    let kind = item.get("type")?.as_str()?;
                    Some((format!("{attr}[type eq \"{kind}\"].value"), Value::Null))
                })
            })
            .collect()
    }
}

/// A resource's `id`, which must be usable in a `/Users/{id}` path: an empty or blank one
/// would aim later PATCH and DELETE requests at the collection itself.
pub(crate) fn resource_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    if id.trim().is_empty() || id.contains(char::is_control) {
        return Err(serde::de::Error::custom(format!(
            "unusable resource id {:?}",
            id.chars().take(100).collect::<String>()
        )));
    }
    Ok(id)
}

/// A SCIM `ListResponse` (RFC 7644 §3.4.2).
#[derive(Debug, Clone, Deserialize)]
pub struct ListResponse<T> {
    #[serde(rename = "totalResults", default)]
    pub total_results: u64,
    #[serde(rename = "Resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(rename = "scimType")]
    scim_type: Option<String>,
    detail: Option<String>,
    #[serde(rename = "trackingId", alias = "TrackingID", alias = "trackingID")]
    tracking_id: Option<String>,
    #[serde(rename = "urn:scim:schemas:extension:cisco:webexidentity:api:messages:2.0:Error")]
    cisco: Option<CiscoError>,
    /// Non-SCIM Webex identity errors: `{"error":{"message":[{"description":...}]}}`.
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct CiscoError {
    #[serde(rename = "trackingId")]
    tracking_id: Option<String>,
    details: Option<String>,
}

const EXCERPT_CHARS: usize = 200;

/// Turns a non-success response into a [`WorkerError::ScimStatus`].
///
/// `header_tracking_id` is the `TrackingID` response header, used when the body has none.
pub fn error_from_response(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    header_tracking_id: Option<String>,
) -> WorkerError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let cisco = parsed.cisco.unwrap_or_default();
    let detail = parsed
        .detail
        .or(cisco.details)
        .or_else(|| parsed.error.as_ref().and_then(webex_error_description))
        .map(|detail| cut(&detail))
        .unwrap_or_else(|| excerpt(body, status));
    let tracking_id = parsed
        .tracking_id
        .or(cisco.tracking_id)
        .or(header_tracking_id);
    WorkerError::ScimStatus {
        status,
        scim_type: parsed.scim_type,
        detail,
        tracking_id,
        retry_after,
    }
}

fn webex_error_description(error: &Value) -> Option<String> {
    error
        .get("message")?
        .as_array()?
        .first()?
        .get("description")?
        .as_str()
        .map(str::to_string)
}

fn excerpt(body: &[u8], status: u16) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("http status {status}");
    }
    cut(text)
}

/// At most [`EXCERPT_CHARS`] of `text`, control characters blanked: a detail is stored as the
/// user's failure reason and shown on operators' terminals.
fn cut(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Quotes a value as a SCIM filter string literal (a JSON string).
pub fn filter_string(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        status: u16,
        body: &'static str,
        header: Option<&'static str>,
        scim_type: Option<&'static str>,
        detail: &'static str,
        tracking: Option<&'static str>,
    }

    #[test]
    fn parses_error_bodies() {
        let cases = [
            Case {
                name: "rfc error",
                status: 409,
                body: r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName already exists"}"#,
                header: None,
                scim_type: Some("uniqueness"),
                detail: "userName already exists",
                tracking: None,
            },
            Case {
                name: "cisco extension",
                status: 400,
                body: r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","urn:scim:schemas:extension:cisco:webexidentity:api:messages:2.0:Error":{"trackingId":"TRK_1","errorCode":400001,"details":"bad thing"}}"#,
                header: Some("HDR"),
                scim_type: None,
                detail: "bad thing",
                tracking: Some("TRK_1"),
            },
            Case {
                name: "webex identity error",
                status: 401,
                body: r#"{"error":{"key":"401","message":[{"code":"701018","description":"Request unauthorized"}]},"trackingId":"ATLAS_1"}"#,
                header: None,
                scim_type: None,
                detail: "Request unauthorized",
                tracking: Some("ATLAS_1"),
            },
            Case {
                name: "not json, header tracking id",
                status: 502,
                body: "<html>Bad Gateway</html>",
                header: Some("HDR_2"),
                scim_type: None,
                detail: "<html>Bad Gateway</html>",
                tracking: Some("HDR_2"),
            },
            Case {
                name: "empty body",
                status: 503,
                body: "",
                header: None,
                scim_type: None,
                detail: "http status 503",
                tracking: None,
            },
        ];
        for c in cases {
            let e = error_from_response(
                c.status,
                c.body.as_bytes(),
                None,
                c.header.map(str::to_string),
            );
            let WorkerError::ScimStatus {
                status,
                scim_type,
                detail,
                tracking_id,
                ..
            } = e
            else {
                panic!("case {}: not a scim status", c.name);
            };
            assert_eq!(status, c.status, "case {}", c.name);
            assert_eq!(scim_type.as_deref(), c.scim_type, "case {}", c.name);
            assert_eq!(detail, c.detail, "case {}", c.name);
            assert_eq!(tracking_id.as_deref(), c.tracking, "case {}", c.name);
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(1000);
        let e = error_from_response(500, body.as_bytes(), None, None);
        let WorkerError::ScimStatus { detail, .. } = e else {
            panic!()
        };
        assert_eq!(detail.chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn an_adopted_user_gets_the_entries_it_lacks_added() {
        let user: UserResource = serde_json::from_str(
            r#"{"id":"w1","userName":"a@x.com",
                "emails":[{"type":"work","value":"a@x.com","primary":true}],
                "phoneNumbers":[{"type":"mobile","value":"+1 555"}],
                "name":{"givenName":"A"}}"#,
        )
        .unwrap();
        let have = user.entry_paths();
        assert_eq!(
            have.keys().collect::<Vec<_>>(),
            [
                "emails[type eq \"work\"].value",
                "phoneNumbers[type eq \"mobile\"].value"
            ]
        );
        let ours: crate::map::ScimAttributes = [
            (
                "addresses[type eq \"work\"].country",
                serde_json::json!("GB"),
            ),
            (
                "phoneNumbers[type eq \"mobile\"].value",
                serde_json::json!("+1 666"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let changes = crate::diff::entries_to_add(ours, &have);
        // The missing address becomes an `add` of the whole entry; the mobile is replaced.
        assert_eq!(
            changes.get("addresses"),
            Some(&serde_json::json!([{"type": "work", "country": "GB"}]))
        );
        assert!(changes.contains_key("phoneNumbers[type eq \"mobile\"].value"));
        assert!(!changes.contains_key("addresses[type eq \"work\"].country"));
    }

    #[test]
    fn filter_strings_are_json_quoted() {
        assert_eq!(filter_string("ada@x.com"), "\"ada@x.com\"");
        assert_eq!(filter_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn list_response_reads_resources() {
        let list: ListResponse<UserResource> = serde_json::from_str(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"itemsPerPage":1,"startIndex":1,"Resources":[{"id":"w1","userName":"a@x.com","active":true}]}"#,
        )
        .unwrap();
        assert_eq!(list.total_results, 1);
        assert_eq!(
            list.resources,
            vec![UserResource {
                id: "w1".into(),
                user_name: Some("a@x.com".into()),
                rest: serde_json::json!({"active": true})
                    .as_object()
                    .unwrap()
                    .clone(),
            }]
        );
        let empty: ListResponse<UserResource> =
            serde_json::from_str(r#"{"totalResults":0}"#).unwrap();
        assert!(empty.resources.is_empty());
    }
}
