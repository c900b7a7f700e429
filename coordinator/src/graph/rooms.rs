//! Graph `places/microsoft.graph.room`: which users are rooms. Pure parsing; no I/O.
//!
//! Entra keeps a room mailbox as a user object (with a disabled account); only the places
//! API says it is a room, and it names rooms by email address, not by user id. A tenant
//! that syncs rooms reads the list once per run (rooms are few) and marks the users whose
//! `mail` or `userPrincipalName` matches with [`dirsync_proto::ROOM_ATTRIBUTE`].

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use dirsync_proto::{ROOM_ATTRIBUTE, SourceUser};

use crate::CoordinatorError;

/// One page of the room list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomsPage {
    /// Email addresses of the rooms, lowercased.
    pub emails: Vec<String>,
    /// The next page, if any (the list has no deltaLink).
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct RawPage {
    value: Vec<RawRoom>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct RawRoom {
    #[serde(rename = "emailAddress")]
    email_address: Option<String>,
}

/// Parses one page of `places/microsoft.graph.room`. A place without an email address
/// cannot be matched to a user and is skipped.
pub fn parse_rooms_page(body: &[u8]) -> Result<RoomsPage, CoordinatorError> {
    let raw: RawPage = serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::GraphPage(format!("rooms page: {e}")))?;
    Ok(RoomsPage {
        emails: raw
            .value
            .into_iter()
            .filter_map(|r| r.email_address)
            .filter(|e| !e.is_empty())
            .map(|e| e.to_lowercase())
            .collect(),
        next: raw.next_link,
    })
}

/// Marks the users of a page that are rooms (by `mail` or `userPrincipalName`).
pub fn mark_rooms(users: &mut [SourceUser], rooms: &HashSet<String>) {
    if rooms.is_empty() {
        return;
    }
    for user in users {
        let is_room = ["mail", "userPrincipalName"]
            .iter()
            .filter_map(|p| user.str_attr(p))
            .any(|address| rooms.contains(&address.to_lowercase()));
        if is_room {
            user.attributes
                .insert(ROOM_ATTRIBUTE.to_string(), Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_documented_room_list() {
        let body = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#places/microsoft.graph.room",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/places/microsoft.graph.room?$skiptoken=2",
            "value": [
                { "id": "3162F1E1-C4C0-604B-51D8-91DA78989EB1", "emailAddress": "cf100@contoso.com",
                  "displayName": "Conf Room 100", "capacity": 50, "bookingType": "standard" },
                { "id": "4162F1E1-C4C0-604B-51D8-91DA78989EB1", "displayName": "No Mailbox" },
                { "id": "5162F1E1-C4C0-604B-51D8-91DA78989EB1", "emailAddress": "CF200@Contoso.com" }
            ]
        });
        let page = parse_rooms_page(body.to_string().as_bytes()).unwrap();
        assert_eq!(page.emails, ["cf100@contoso.com", "cf200@contoso.com"]);
        assert!(page.next.unwrap().contains("skiptoken=2"));
        let last = parse_rooms_page(br#"{"value": []}"#).unwrap();
        assert_eq!(last.next, None);
        assert!(parse_rooms_page(b"{\"value\": 3}").is_err());
    }

    #[test]
    fn marks_users_whose_mail_or_upn_is_a_room() {
        let user = |id: &str, attrs: Value| SourceUser {
            id: id.into(),
            removed: None,
            attributes: attrs.as_object().cloned().unwrap(),
        };
        let mut users = vec![
            user(
                "a",
                json!({"mail": "CF100@contoso.com", "userPrincipalName": "x@contoso.com"}),
            ),
            user("b", json!({"userPrincipalName": "cf200@contoso.com"})),
            user(
                "c",
                json!({"userPrincipalName": "ada@contoso.com", "mail": null}),
            ),
        ];
        let rooms: HashSet<String> = ["cf100@contoso.com", "cf200@contoso.com"]
            .map(String::from)
            .into();
        mark_rooms(&mut users, &rooms);
        let marked: Vec<bool> = users.iter().map(SourceUser::is_room).collect();
        assert_eq!(marked, [true, true, false]);
    }
}
