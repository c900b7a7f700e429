//! The default attribute mapping from an Entra user (Graph names) to SCIM paths.
//!
//! Pure: no I/O. The output is keyed by SCIM PATCH path (`name.givenName`,
//! `emails[type eq "work"].value`), which is both what a PATCH needs and what the mirror
//! stores, so a later diff compares like with like. A source property that is absent or
//! `null` is absent from the output: the diff never turns it into a clear.

use std::collections::BTreeMap;

use dirsync_proto::mapping::Mapping;
use dirsync_proto::{PHOTO_ATTRIBUTE, SourceUser};
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

/// The enterprise extension's schema URN, prefix of its attribute paths.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// SCIM path of the manager reference (a Webex user id, resolved by the pipeline).
pub const MANAGER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";
/// SCIM path of the work address's country (ISO 3166-1 alpha-2).
pub const COUNTRY: &str = "addresses[type eq \"work\"].country";
/// SCIM path of the work phone number.
pub const WORK_PHONE: &str = "phoneNumbers[type eq \"work\"].value";
/// SCIM path of the avatar: the URL at which dirsync serves the user's Entra photo.
pub const PHOTO: &str = "photos[type eq \"photo\"].value";

/// String-valued Graph properties copied to SCIM paths by the default mapping: the seed's
/// attribute table (usageLocation, businessPhones and manager have rules of their own).
const STRING_RULES: &[(&str, &[&str])] = &[
    ("userPrincipalName", &[USER_NAME, WORK_EMAIL]),
    ("displayName", &["displayName"]),
    ("givenName", &["name.givenName"]),
    ("surname", &["name.familyName"]),
    ("jobTitle", &["title"]),
    (
        "streetAddress",
        &["addresses[type eq \"work\"].streetAddress"],
    ),
    ("city", &["addresses[type eq \"work\"].locality"]),
    ("state", &["addresses[type eq \"work\"].region"]),
    ("postalCode", &["addresses[type eq \"work\"].postalCode"]),
    ("mobilePhone", &["phoneNumbers[type eq \"mobile\"].value"]),
    ("faxNumber", &["phoneNumbers[type eq \"fax\"].value"]),
    (
        "department",
        &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"],
    ),
    (
        "employeeId",
        &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"],
    ),
];

/// The SCIM paths whose Graph property this entry explicitly clears (`null`, or no phone
/// left in `businessPhones`): what "clear attributes" removes in Webex. Absent properties
/// (not returned) clear nothing.
pub fn cleared_paths(user: &SourceUser) -> Vec<&'static str> {
    let is_null = |name: &str| user.attributes.get(name).is_some_and(Value::is_null);
    let mut paths: Vec<&'static str> = STRING_RULES
        .iter()
        .filter(|(source, _)| is_null(source))
        .flat_map(|(_, targets)| targets.iter().copied())
        // userName and the work email are never cleared: Webex requires them.
        .filter(|path| *path != USER_NAME && *path != WORK_EMAIL)
        .collect();
    if is_null("usageLocation") {
        paths.push(COUNTRY);
    }
    let no_phone = match user.attributes.get("businessPhones") {
        Some(Value::Null) => true,
        Some(Value::Array(phones)) => !phones.iter().any(Value::is_string),
        _ => false,
    };
    if no_phone {
        paths.push(WORK_PHONE);
    }
    if is_null("manager") {
        paths.push(MANAGER);
    }
    paths
}

/// A usage location Webex accepts as a country: an ISO 3166-1 alpha-2 code.
pub fn valid_country(code: &str) -> bool {
    code.len() == 2 && isocountry::CountryCode::for_alpha2(code).is_ok()
}

/// Maps one Graph user with the default mapping.
///
/// A tombstone (`@removed`) maps to an inactive user: whatever its reason, Webex must not
/// keep it active; the diff decides between deactivating and deleting.
pub fn map_user(user: &SourceUser) -> ScimAttributes {
    let mut out = ScimAttributes::new();
    if user.is_partial() {
        return partial(user);
    }
    for (source, targets) in STRING_RULES {
        if let Some(value) = user.str_attr(source) {
            for target in *targets {
                out.insert((*target).to_string(), Value::String(value.to_string()));
            }
        }
    }
    // Not a valid code: not sent, rather than a user Webex refuses.
    if let Some(country) = user.str_attr("usageLocation").filter(|c| valid_country(c)) {
        out.insert(COUNTRY.to_string(), Value::String(country.to_string()));
    }
    let first_phone = user
        .attributes
        .get("businessPhones")
        .and_then(Value::as_array)
        .and_then(|phones| phones.iter().find_map(Value::as_str));
    if let Some(phone) = first_phone {
        out.insert(WORK_PHONE.to_string(), Value::String(phone.to_string()));
    }
    fixed_attributes(user, &mut out);
    out
}

/// What a tenant's own mapping gives for one user.
#[derive(Debug, Default)]
pub struct UserMapping {
    /// Written on create and on update.
    pub always: ScimAttributes,
    /// Written on create only.
    pub on_create: ScimAttributes,
    /// Paths the entry clears (for "clear attributes").
    pub cleared: Vec<String>,
    /// Why the mapping failed on this user's data, if it did: the user fails, as in Entra.
    pub error: Option<String>,
}

/// Maps one user with the tenant's own mapping, or without one, the default mapping. The
/// default mapping lists the paths to clear only with `clear_attributes` (the tenant's
/// setting): Graph returns unset properties as `null`, so most users have some, and
/// listing them for nothing was a tenth of mapping a user.
pub fn map_user_with(
    user: &SourceUser,
    mapping: Option<&Mapping>,
    clear_attributes: bool,
) -> UserMapping {
    let Some(mapping) = mapping else {
        let cleared = if clear_attributes {
            cleared_paths(user)
                .into_iter()
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        return UserMapping {
            always: map_user(user),
            cleared,
            ..UserMapping::default()
        };
    };
    let mut out = ScimAttributes::new();
    if user.is_partial() {
        return UserMapping {
            always: partial(user),
            ..UserMapping::default()
        };
    }
    let mapped = mapping.apply(user);
    let error = mapped
        .errors
        .first()
        .map(|(target, e)| format!("mapping of {target}: {e}"));
    // Whatever the source, Webex refuses a country that is not an ISO code.
    let valid = |(path, value): &(String, Value)| {
        path != COUNTRY || value.as_str().is_some_and(valid_country)
    };
    out.extend(mapped.always.into_iter().filter(valid));
    let on_create = mapped.on_create.into_iter().filter(valid).collect();
    let mut cleared = mapped.cleared;
    if user.attributes.get("manager").is_some_and(Value::is_null) {
        cleared.push(MANAGER.to_string());
    }
    fixed_attributes(user, &mut out);
    UserMapping {
        always: out,
        on_create,
        cleared,
        error,
    }
}

/// A follow-up pass entry: only what it carries changes (a manager reference is resolved
/// by the pipeline; an avatar URL is set, or removed when `null`).
fn partial(user: &SourceUser) -> ScimAttributes {
    let mut out = ScimAttributes::new();
    out.insert(EXTERNAL_ID.to_string(), Value::String(user.id.clone()));
    photo(user, &mut out);
    out
}

/// The avatar the coordinator attached ([`PHOTO_ATTRIBUTE`]). A removed photo is cleared
/// whatever "clear attributes" says: the URL is dirsync's own and would no longer answer.
fn photo(user: &SourceUser, out: &mut ScimAttributes) {
    match user.attributes.get(PHOTO_ATTRIBUTE) {
        Some(Value::String(url)) => {
            out.insert(PHOTO.to_string(), Value::String(url.clone()));
        }
        Some(Value::Null) => {
            out.insert(PHOTO.to_string(), Value::Null);
        }
        _ => {}
    }
}

/// The attributes dirsync sets itself, whatever the mapping: externalId, active, userType,
/// and the avatar when the coordinator attached one.
fn fixed_attributes(user: &SourceUser, out: &mut ScimAttributes) {
    photo(user, out);
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
                              "title": "Analyst", "userType": "user"})),
            ),
            (
                "the seed's attribute table",
                user(
                    "e9",
                    None,
                    json!({"userPrincipalName": "b@example.com", "usageLocation": "DE",
                           "city": "Köln", "streetAddress": "Domkloster 4", "state": "NRW",
                           "postalCode": "50667", "businessPhones": ["+49 221 1", "+49 221 2"],
                           "mobilePhone": "+49 171 1", "faxNumber": "+49 221 9",
                           "jobTitle": "Dombaumeisterin", "department": "Bau",
                           "employeeId": "E-9", "manager": "e1", "country": "Germany"}),
                ),
                expect(json!({"userName": "b@example.com",
                              "emails[type eq \"work\"].value": "b@example.com",
                              "addresses[type eq \"work\"].country": "DE",
                              "addresses[type eq \"work\"].locality": "Köln",
                              "addresses[type eq \"work\"].streetAddress": "Domkloster 4",
                              "addresses[type eq \"work\"].region": "NRW",
                              "addresses[type eq \"work\"].postalCode": "50667",
                              "phoneNumbers[type eq \"work\"].value": "+49 221 1",
                              "phoneNumbers[type eq \"mobile\"].value": "+49 171 1",
                              "phoneNumbers[type eq \"fax\"].value": "+49 221 9",
                              "title": "Dombaumeisterin",
                              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Bau",
                              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "E-9",
                              "externalId": "e9", "userType": "user"})),
            ),
            (
                "an invalid usage location is not sent",
                user(
                    "e10",
                    None,
                    json!({"usageLocation": "XX", "businessPhones": []}),
                ),
                expect(json!({"externalId": "e10", "userType": "user"})),
            ),
            (
                "a reference-pass entry maps only its id",
                user(
                    "e11",
                    None,
                    json!({"manager": "e1", "dirsync.partial": true}),
                ),
                expect(json!({"externalId": "e11"})),
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

    #[test]
    fn cleared_paths_are_the_nulls_of_mapped_properties() {
        let u = user(
            "e1",
            None,
            json!({"userPrincipalName": null, "jobTitle": null, "city": "Oslo",
                   "usageLocation": null, "businessPhones": [], "manager": null,
                   "department": null, "displayName": "Ada"}),
        );
        let mut got = cleared_paths(&u);
        got.sort();
        let mut want = vec![
            "addresses[type eq \"work\"].country",
            "phoneNumbers[type eq \"work\"].value",
            "title",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        ];
        want.sort();
        assert_eq!(
            got, want,
            "userName is never cleared, absent properties neither"
        );
        assert!(cleared_paths(&user("e2", None, json!({"businessPhones": ["+1"]}))).is_empty());
    }

    #[test]
    fn countries_are_iso_alpha2() {
        for ok in ["US", "DE", "GB", "NO"] {
            assert!(valid_country(ok), "{ok}");
        }
        for bad in ["XX", "us", "USA", "", "Germany", "U"] {
            assert!(!valid_country(bad), "{bad}");
        }
    }
}
