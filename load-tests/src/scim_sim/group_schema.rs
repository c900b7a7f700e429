//! The Webex SCIM Group resource as the simulator enforces it (webex-scim.md §7): schema URNs,
//! limits, member references, and stored groups built from POST/PUT bodies or finished after
//! a PATCH. Pure: ids, time and "is this a user of the org" come in as arguments.
//!
//! A stored group keeps its attributes (a small JSON object) apart from its members (a set of
//! user ids, see `group_store.rs`), so `members` never appears in the object this module builds.
//! Only user members are simulated: a member `type` other than `user` is refused.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::{ScimError, ScimType};
use super::json::{get_ci, str_ci};
use super::resource::Stamp;
use super::schema::rename_keys;

pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const CISCO_GROUP: &str = "urn:scim:schemas:extension:cisco:webexidentity:2.0:Group";
/// Schema of the `GET /Groups/{id}/Members` response (§3).
pub const GROUP_MEMBERS: &str = "urn:scim:schemas:extension:cisco:webexidentity:2.0:GroupMembers";

pub const DISPLAY_NAME_MAX: usize = 512;
pub const EXTERNAL_ID_MAX: usize = 256;
/// Member values one POST, PUT or PATCH operation may carry: the schema's `size: 500` for
/// `members` (§7.2).
pub const MEMBERS_PER_OPERATION_MAX: usize = 500;
/// Members one group may hold: Control Hub's limit (§7.2).
pub const GROUP_SIZE_MAX: usize = 250_000;
/// Members a group response carries at most (`GET /Groups/{id}`, §3).
pub const MEMBERS_SHOWN_MAX: usize = 500;
/// Largest, and default, `count` of `GET /Groups/{id}/Members` (§3).
pub const MEMBERS_PAGE_MAX: usize = 500;

const TOP_LEVEL: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "meta",
    "displayName",
    "members",
    CISCO_GROUP,
];
const CISCO_SUBS: &[&str] = &[
    "usage",
    "provisionSource",
    "owners",
    "managedBy",
    "inheritances",
    "memberFilter",
    "groupType",
    "meta",
];
const USAGES: [&str; 3] = ["location", "distribution", "policy"];
const GROUP_TYPES: [&str; 4] = [
    "unique_flat_static",
    "dynamic",
    "flat_static",
    "nested_static",
];
/// Multi-valued Cisco extension attributes and their maximum number of values (§7.1).
const CISCO_SIZES: [(&str, usize); 3] = [("owners", 30), ("managedBy", 30), ("inheritances", 10)];

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

/// A group from a POST or PUT body: its stored object and the members the body lists.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    pub resource: Map<String, Value>,
    pub members: Vec<Uuid>,
}

/// A user id as the simulator issues them (hyphenated UUID, any case); anything else names no
/// user.
pub fn parse_user_id(s: &str) -> Option<Uuid> {
    if s.len() == 36 {
        Uuid::try_parse(s).ok()
    } else {
        None
    }
}

/// The member objects of `value` (one object or a list; `null` is none), at most
/// [`MEMBERS_PER_OPERATION_MAX`] of them.
fn member_objects(value: &Value) -> Result<Vec<&Map<String, Value>>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if items.len() > MEMBERS_PER_OPERATION_MAX {
        return Err(invalid(format!(
            "at most {MEMBERS_PER_OPERATION_MAX} members per operation, got {}",
            items.len()
        )));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(o) => Ok(o),
            other => Err(invalid(format!(
                "a member must be an object like {{\"value\": \"<user id>\", \"type\": \"user\"}}, got {other}"
            ))),
        })
        .collect()
}

fn member_value(member: &Map<String, Value>) -> Result<&str, ScimError> {
    str_ci(member, "value").ok_or_else(|| invalid("each member needs a string value"))
}

/// The user ids `value` adds (POST, PUT, PATCH add or replace): each member must be
/// `{"value": <id of a user of this org>}` with `type` absent or `user`; `display`, `$ref`
/// (Entra sends `"$ref": null`) and other sub-attributes are read-only and ignored.
pub fn member_ids(value: &Value, is_user: impl Fn(&Uuid) -> bool) -> Result<Vec<Uuid>, ScimError> {
    let mut ids = Vec::new();
    for member in member_objects(value)? {
        let v = member_value(member)?;
        match get_ci(member, "type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("user") => {}
            Some(t) => {
                return Err(invalid(format!(
                    "member {v} has type {t}; the simulator holds user members only"
                )));
            }
        }
        match parse_user_id(v).filter(|id| is_user(id)) {
            Some(id) => ids.push(id),
            None => return Err(invalid(format!("member {v:?} is not a user of this org"))),
        }
    }
    Ok(ids)
}

/// The user ids a PATCH remove with a value list names. Values that are no user id are
/// skipped: they cannot be members, and a remove of a non-member is a no-op.
pub fn removed_ids(value: &Value) -> Result<Vec<Uuid>, ScimError> {
    let mut ids = Vec::new();
    for member in member_objects(value)? {
        if let Some(id) = parse_user_id(member_value(member)?) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// A new group (POST) or the full replacement of one (PUT). Without `members` the group is
/// empty: PUT cleans every attribute not given (§7.1).
pub fn from_body(
    body: Value,
    stamp: &Stamp<'_>,
    is_user: impl Fn(&Uuid) -> bool,
) -> Result<GroupInput, ScimError> {
    let Value::Object(mut r) = body else {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "a group must be a JSON object",
        ));
    };
    let has_core = get_ci(&r, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(CORE_GROUP))
            })
        });
    if !has_core {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            format!("schemas must contain {CORE_GROUP}"),
        ));
    }
    rename_keys(&mut r, TOP_LEVEL);
    // Read-only inputs are ignored.
    r.remove("id");
    r.remove("meta");
    let members = match r.remove("members") {
        Some(v) => member_ids(&v, is_user)?,
        None => Vec::new(),
    };
    finish(&mut r, stamp)?;
    Ok(GroupInput {
        resource: r,
        members,
    })
}

/// After a PATCH of the group's attributes: canonical names, the rules, server attributes.
pub fn after_patch(r: &mut Map<String, Value>, stamp: &Stamp<'_>) -> Result<(), ScimError> {
    rename_keys(r, TOP_LEVEL);
    finish(r, stamp)
}

/// Checks a canonicalized group object (without members) against Webex's rules.
pub fn validate(r: &Map<String, Value>) -> Result<(), ScimError> {
    match r.get("displayName") {
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(invalid("displayName is required"));
        }
        Some(Value::String(s)) if s.chars().count() > DISPLAY_NAME_MAX => {
            return Err(invalid(format!(
                "displayName is longer than {DISPLAY_NAME_MAX} characters"
            )));
        }
        Some(Value::String(_)) => {}
        None | Some(Value::Null) => return Err(invalid("displayName is required")),
        Some(_) => return Err(invalid("displayName must be a string")),
    }
    match r.get("externalId") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.chars().count() > EXTERNAL_ID_MAX => {
            return Err(invalid(format!(
                "externalId is longer than {EXTERNAL_ID_MAX} characters"
            )));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(invalid("externalId must be a string")),
    }
    let cisco = match r.get(CISCO_GROUP) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(invalid(format!("{CISCO_GROUP} must be an object"))),
    };
    for (attr, allowed) in [("usage", &USAGES[..]), ("groupType", &GROUP_TYPES[..])] {
        match cisco.get(attr) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if allowed.iter().any(|a| a.eq_ignore_ascii_case(s)) => {}
            Some(v) => return Err(invalid(format!("{attr} {v} is not one of {allowed:?}"))),
        }
    }
    for (attr, max) in CISCO_SIZES {
        match cisco.get(attr) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.len() <= max => {}
            Some(Value::Array(_)) => {
                return Err(invalid(format!("{attr} holds at most {max} values")));
            }
            Some(_) => return Err(invalid(format!("{attr} must be an array"))),
        }
    }
    Ok(())
}

/// Canonical names inside the Cisco extension, then the rules, then the server attributes.
fn finish(r: &mut Map<String, Value>, stamp: &Stamp<'_>) -> Result<(), ScimError> {
    if let Some(Value::Object(cisco)) = r.get_mut(CISCO_GROUP) {
        rename_keys(cisco, CISCO_SUBS);
    }
    validate(r)?;
    r.insert("schemas".into(), json!([CORE_GROUP, CISCO_GROUP]));
    r.insert("id".into(), json!(stamp.id));
    let cisco = r.entry(CISCO_GROUP).or_insert_with(|| json!({}));
    if cisco.is_null() {
        *cisco = json!({});
    }
    if let Value::Object(cisco) = cisco {
        // Read-only: Webex decides where a group comes from.
        cisco.remove("provisionSource");
        // The reference spells it `organizationID` for groups (`organizationId` for users).
        cisco.insert("meta".into(), json!({"organizationID": stamp.org_id}));
    }
    r.insert(
        "meta".into(),
        json!({
            // webex-scim.md §7.1 gives the group's resourceType in lower case.
            "resourceType": "group",
            "location": stamp.location,
            "version": format!("W/\"{}\"", stamp.version),
            "created": stamp.created,
            "lastModified": stamp.now,
        }),
    );
    Ok(())
}

/// Marks a group as changed without a request body: a member left because its user was
/// deleted.
pub fn touch(r: &mut Map<String, Value>, version: u64, now: &str) {
    if let Some(Value::Object(meta)) = r.get_mut("meta") {
        meta.insert("version".into(), json!(format!("W/\"{version}\"")));
        meta.insert("lastModified".into(), json!(now));
    }
}

#[cfg(test)]
#[path = "group_schema_tests.rs"]
mod tests;
