//! The default attribute mapping from an Entra user (Graph names) to SCIM paths.
//!
//! Pure: no I/O. The output is keyed by SCIM PATCH path (`name.givenName`,
//! `emails[type eq "work"].value`), which is both what a PATCH needs and what the mirror
//! stores, so a later diff compares like with like. A source property that is absent or
//! `null` is absent from the output: the diff never turns it into a clear.

use std::collections::BTreeMap;

use dirsync_proto::SourceUser;
use serde_json::Value;

/// Mapped attributes of one user: SCIM path → value. Ordered, so it hashes canonically.
pub type ScimAttributes = BTreeMap<String, Value>;

/// SCIM path of the active flag.
pub const ACTIVE: &str = "active";
/// SCIM path of the Entra object id.
pub const EXTERNAL_ID: &str = "externalId";
/// SCIM path of the login name.
pub const USER_NAME: &str = "userName";
/// SCIM path of the work email, which Webex requires to equal `userName`.
pub const WORK_EMAIL: &str = "emails[type eq \"work\"].value";

/// String-valued Graph properties copied to SCIM paths by the default mapping.
const STRING_RULES: &[(&str, &[&str])] = &[
    ("userPrincipalName", &[USER_NAME, WORK_EMAIL]),
    ("displayName", &["displayName"]),
    ("givenName", &["name.givenName"]),
    ("surname", &["name.familyName"]),
];

/// Maps one Graph user with the default mapping.
///
/// A tombstone (`@removed`) maps to an inactive user: whatever its reason, Webex must not
/// keep it active; the diff decides between deactivating and deleting.
pub fn map_user(user: &SourceUser) -> ScimAttributes {
    let mut out = ScimAttributes::new();
    for (source, targets) in STRING_RULES {
        if let Some(value) = user.str_attr(source) {
            for target in *targets {
                out.insert((*target).to_string(), Value::String(value.to_string()));
            }
        }
    }
    out.insert(EXTERNAL_ID.to_string(), Value::String(user.id.clone()));
    let room = user.is_room();
    let active = if user.removed.is_some() {
        Some(false)
    } else if room {
        // A room's Entra account is disabled by design; the room itself is in use.
        Some(true)
    } else {
        user.bool_attr("accountEnabled")
    };
    if let Some(active) = active {
        out.insert(ACTIVE.to_string(), Value::Bool(active));
    }
    let user_type = if room { "room" } else { "user" };
    out.insert("userType".to_string(), Value::String(user_type.to_string()));
    out
}

/// The `active` value of mapped attributes, if they carry one.
pub fn active_of(attributes: &ScimAttributes) -> Option<bool> {
    attributes.get(ACTIVE).and_then(Value::as_bool)
}

/// Helpers for the tests of modules that work on mapped attributes.
#[cfg(test)]
pub(crate) mod test_support {
    use super::ScimAttributes;
    use serde_json::Value;

    /// A JSON object as path-keyed attributes.
    pub fn attrs(v: Value) -> ScimAttributes {
        v.as_object()
            .expect("test attributes are a JSON object")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dirsync_proto::RemovedReason;
    use serde_json::json;

    fn user(id: &str, removed: Option<RemovedReason>, attrs: Value) -> SourceUser {
        let attributes = match attrs {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        SourceUser {
            id: id.into(),
            removed,
            attributes,
        }
    }

    fn expect(pairs: Value) -> ScimAttributes {
        pairs
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn default_mapping_cases() {
        let cases: Vec<(&str, SourceUser, ScimAttributes)> = vec![
            (
                "full user",
                user(
                    "e1",
                    None,
                    json!({"userPrincipalName": "ada@example.com", "displayName": "Ada Lovelace",
                           "givenName": "Ada", "surname": "Lovelace", "accountEnabled": true,
                           "jobTitle": "Analyst"}),
                ),
                expect(json!({"userName": "ada@example.com",
                              "emails[type eq \"work\"].value": "ada@example.com",
                              "displayName": "Ada Lovelace", "name.givenName": "Ada",
                              "name.familyName": "Lovelace", "externalId": "e1", "active": true,
                              "userType": "user"})),
            ),
            (
                "missing names",
                user(
                    "e2",
                    None,
                    json!({"userPrincipalName": "x@example.com", "accountEnabled": true}),
                ),
                expect(json!({"userName": "x@example.com",
                              "emails[type eq \"work\"].value": "x@example.com",
                              "externalId": "e2", "active": true, "userType": "user"})),
            ),
            (
                "nulls are absent",
                user(
                    "e3",
                    None,
                    json!({"userPrincipalName": "y@example.com", "displayName": null,
                           "givenName": null, "surname": null, "accountEnabled": null}),
                ),
                expect(json!({"userName": "y@example.com",
                              "emails[type eq \"work\"].value": "y@example.com",
                              "externalId": "e3", "userType": "user"})),
            ),
            (
                "non-ascii kept verbatim",
                user(
                    "e4",
                    None,
                    json!({"userPrincipalName": "zoe@exämple.com", "displayName": "Zoë Ólafsdóttir 山田",
                           "givenName": "Zoë", "surname": "Ólafsdóttir", "accountEnabled": false}),
                ),
                expect(json!({"userName": "zoe@exämple.com",
                              "emails[type eq \"work\"].value": "zoe@exämple.com",
                              "displayName": "Zoë Ólafsdóttir 山田", "name.givenName": "Zoë",
                              "name.familyName": "Ólafsdóttir", "externalId": "e4",
                              "active": false, "userType": "user"})),
            ),
            (
                "a room is an active room whatever its entra account",
                user(
                    "e7",
                    None,
                    json!({"userPrincipalName": "cf1@example.com", "displayName": "Conf Room 1",
                           "accountEnabled": false, "dirsync.room": true}),
                ),
                expect(json!({"userName": "cf1@example.com",
                              "emails[type eq \"work\"].value": "cf1@example.com",
                              "displayName": "Conf Room 1", "externalId": "e7",
                              "active": true, "userType": "room"})),
            ),
            (
                "a removed room is inactive",
                user(
                    "e8",
                    Some(RemovedReason::Deleted),
                    json!({"dirsync.room": true}),
                ),
                expect(json!({"externalId": "e8", "active": false, "userType": "room"})),
            ),
            (
                "soft-deleted tombstone is inactive",
                user("e5", Some(RemovedReason::Changed), json!({})),
                expect(json!({"externalId": "e5", "active": false, "userType": "user"})),
            ),
            (
                "removed overrides accountEnabled",
                user(
                    "e6",
                    Some(RemovedReason::Deleted),
                    json!({"accountEnabled": true}),
                ),
                expect(json!({"externalId": "e6", "active": false, "userType": "user"})),
            ),
            (
                "wrong json types are ignored",
                user(
                    "e7",
                    None,
                    json!({"displayName": 42, "accountEnabled": "yes"}),
                ),
                expect(json!({"externalId": "e7", "userType": "user"})),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(map_user(&input), expected, "case {name}");
        }
    }

    #[test]
    fn active_of_reads_the_flag() {
        assert_eq!(active_of(&expect(json!({"active": false}))), Some(false));
        assert_eq!(active_of(&expect(json!({}))), None);
    }
}
