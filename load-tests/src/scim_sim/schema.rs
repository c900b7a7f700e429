//! The Webex SCIM User schema as the simulator enforces it (webex-scim.md §5): schema URNs,
//! canonical attribute names, value coercion (`"False"` → `false`) and validation of limits and
//! the `userName` = primary work email rule. Pure functions over a resource's JSON object.

use serde_json::{Map, Value};

use super::error::{ScimError, ScimType};
use super::json::{get_ci, str_ci};

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const CISCO_USER: &str = "urn:scim:schemas:extension:cisco:webexidentity:2.0:User";
pub const KNOWN_EXTENSIONS: [&str; 2] = [ENTERPRISE_USER, CISCO_USER];
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub const USER_NAME_MAX: usize = 254;
pub const USER_TYPES: [&str; 4] = ["user", "room", "external_calling", "calling_service"];

/// Attributes the server owns; ignored in POST/PUT bodies, refused as PATCH targets.
pub const READ_ONLY: [&str; 3] = ["id", "meta", "groups"];

const TOP_LEVEL: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "meta",
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    ENTERPRISE_USER,
    CISCO_USER,
];

const MULTI_VALUED: &[&str] = &[
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
];

const NAME_SUBS: &[&str] = &[
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
];
const VALUE_SUBS: &[&str] = &["value", "display", "type", "primary", "$ref"];
const ADDRESS_SUBS: &[&str] = &[
    "formatted",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "type",
    "primary",
];
const ENTERPRISE_SUBS: &[&str] = &[
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
];
const MANAGER_SUBS: &[&str] = &["value", "displayName", "$ref"];
const CISCO_SUBS: &[&str] = &[
    "accountStatus",
    "sipAddresses",
    "managedOrgs",
    "managedGroups",
    "provisionSource",
    "userNameType",
    "pronouns",
    "meta",
    "authProvider",
    "mfaEnabled",
    "licenseID",
    "userSettings",
    "userPreferences",
    "loginIds",
    "extLinkedAccts",
    "avatarSyncEnabled",
    "teamsClusterId",
];

/// Maximum lengths in characters (webex-scim.md §5.1, §5.2).
const LENGTHS: &[(&[&str], usize)] = &[
    (&["userName"], USER_NAME_MAX),
    (&["displayName"], 512),
    (&["nickName"], 256),
    (&["title"], 512),
    (&["profileUrl"], 1000),
    (&["externalId"], 256),
    (&["name", "givenName"], 256),
    (&["name", "familyName"], 256),
    (&["name", "middleName"], 256),
    (&["name", "honorificPrefix"], 256),
    (&["name", "honorificSuffix"], 256),
    (&["name", "formatted"], 512),
    (&[ENTERPRISE_USER, "employeeNumber"], 256),
    (&[ENTERPRISE_USER, "costCenter"], 256),
    (&[ENTERPRISE_USER, "organization"], 512),
    (&[ENTERPRISE_USER, "division"], 512),
    (&[ENTERPRISE_USER, "department"], 512),
];

/// `(attribute, max values, allowed types (empty: any), max lengths of sub-attributes)`.
type MultiRule = (
    &'static str,
    usize,
    &'static [&'static str],
    &'static [(&'static str, usize)],
);

const MULTI_RULES: &[MultiRule] = &[
    ("emails", 10, &["work", "home", "room", "other"], &[]),
    (
        "phoneNumbers",
        50,
        // OpenAPI enum plus the prose values (webex-scim.md §5.1).
        &[
            "work",
            "home",
            "mobile",
            "work_extension",
            "fax",
            "pager",
            "other",
            "alternate1",
            "alternate2",
        ],
        &[],
    ),
    (
        "addresses",
        10,
        &["work", "home", "other"],
        &[
            ("streetAddress", 512),
            ("locality", 128),
            ("region", 64),
            ("postalCode", 64),
        ],
    ),
    ("photos", 50, &["photo", "thumbnail", "resizable"], &[]),
    ("roles", 100, &[], &[]),
];

fn canonical(name: &str, table: &[&'static str]) -> Option<&'static str> {
    table.iter().copied().find(|c| c.eq_ignore_ascii_case(name))
}

pub fn is_multi_valued(attr: &str) -> bool {
    canonical(attr, MULTI_VALUED).is_some()
}

/// Renames known attributes to their canonical spelling, recursively, so `UserName` and
/// `userName` are one attribute. Unknown attributes keep the client's spelling.
pub fn canonicalize(resource: &mut Map<String, Value>) {
    rename_keys(resource, TOP_LEVEL);
    for (key, value) in resource.iter_mut() {
        let subs: &[&'static str] = match key.as_str() {
            "name" => NAME_SUBS,
            "addresses" => ADDRESS_SUBS,
            ENTERPRISE_USER => ENTERPRISE_SUBS,
            CISCO_USER => CISCO_SUBS,
            k if is_multi_valued(k) => VALUE_SUBS,
            _ => continue,
        };
        match value {
            Value::Object(obj) => {
                rename_keys(obj, subs);
                if key == ENTERPRISE_USER
                    && let Some(Value::Object(manager)) = obj.get_mut("manager")
                {
                    rename_keys(manager, MANAGER_SUBS);
                }
            }
            Value::Array(items) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    rename_keys(item, subs);
                }
            }
            _ => {}
        }
    }
}

/// Renames the keys of `obj` found in `table` (ignoring case) to the spelling in `table`.
pub fn rename_keys(obj: &mut Map<String, Value>, table: &[&'static str]) {
    let renames: Vec<(String, &'static str)> = obj
        .keys()
        .filter_map(|k| {
            canonical(k, table)
                .filter(|c| *c != k.as_str())
                .map(|c| (k.clone(), c))
        })
        .collect();
    for (from, to) in renames {
        if let Some(v) = obj.remove(&from) {
            obj.insert(to.to_owned(), v);
        }
    }
}

/// Parses SCIM booleans, accepting Entra's default-dialect strings `"True"` / `"False"`.
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Coerces `active` and every multi-valued `primary` to JSON booleans. Expects canonical keys.
pub fn coerce(resource: &mut Map<String, Value>) -> Result<(), ScimError> {
    if let Some(v) = resource.get_mut("active") {
        *v = Value::Bool(
            as_bool(v).ok_or_else(|| invalid(format!("active must be a boolean, got {v}")))?,
        );
    }
    for attr in MULTI_VALUED {
        if let Some(Value::Array(items)) = resource.get_mut(*attr) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(p) = item.get_mut("primary") {
                    *p = Value::Bool(as_bool(p).ok_or_else(|| {
                        invalid(format!("{attr}.primary must be a boolean, got {p}"))
                    })?);
                }
            }
        }
    }
    Ok(())
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

/// Checks a complete, canonicalized user against Webex's rules.
pub fn validate(resource: &Map<String, Value>) -> Result<(), ScimError> {
    let user_name = match resource.get("userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(invalid("userName is required"));
        }
        Some(_) => return Err(invalid("userName must be a string")),
    };
    for (path, max) in LENGTHS {
        let Some(v) = lookup(resource, path) else {
            continue;
        };
        match v {
            // A string of at most `max` bytes has at most `max` characters: no count needed.
            Value::String(s) if s.len() > *max && s.chars().count() > *max => {
                return Err(invalid(format!(
                    "{} is longer than {max} characters",
                    path.join(":")
                )));
            }
            Value::String(_) | Value::Null => {}
            _ => return Err(invalid(format!("{} must be a string", path.join(":")))),
        }
    }
    if let Some(t) = resource.get("userType") {
        match t.as_str() {
            Some(s) if USER_TYPES.iter().any(|u| u.eq_ignore_ascii_case(s)) => {}
            _ => return Err(invalid(format!("userType must be one of {USER_TYPES:?}"))),
        }
    }
    if let Some(n) = resource.get("name")
        && !n.is_object()
    {
        return Err(invalid("name must be an object"));
    }
    for attr in MULTI_VALUED {
        match resource.get(*attr) {
            None | Some(Value::Null | Value::Array(_)) => {}
            Some(_) => return Err(invalid(format!("{attr} must be an array"))),
        }
    }
    for (attr, max, types, lengths) in MULTI_RULES {
        validate_multi(resource, attr, *max, types, lengths)?;
    }
    if let Some(work) = primary_work_email(resource)
        && !work.eq_ignore_ascii_case(user_name)
    {
        return Err(invalid(format!(
            "the primary work email {work:?} must equal userName {user_name:?}"
        )));
    }
    Ok(())
}

fn validate_multi(
    resource: &Map<String, Value>,
    attr: &str,
    max: usize,
    types: &[&str],
    lengths: &[(&str, usize)],
) -> Result<(), ScimError> {
    let Some(Value::Array(items)) = resource.get(attr) else {
        return Ok(());
    };
    if items.len() > max {
        return Err(invalid(format!("{attr} holds at most {max} values")));
    }
    let mut primaries = 0;
    for item in items {
        let Value::Object(item) = item else {
            return Err(invalid(format!("{attr} values must be objects")));
        };
        if let Some(t) = get_ci(item, "type").filter(|t| !t.is_null()) {
            match t.as_str() {
                Some(s) if types.is_empty() || types.iter().any(|a| a.eq_ignore_ascii_case(s)) => {}
                _ => return Err(invalid(format!("{attr}.type {t} is not one of {types:?}"))),
            }
        }
        if item.get("primary") == Some(&Value::Bool(true)) {
            primaries += 1;
        }
        for (sub, max) in lengths {
            if let Some(s) = str_ci(item, sub)
                && s.len() > *max
                && s.chars().count() > *max
            {
                return Err(invalid(format!(
                    "{attr}.{sub} is longer than {max} characters"
                )));
            }
        }
    }
    if primaries > 1 {
        return Err(invalid(format!("at most one of {attr} may be primary")));
    }
    Ok(())
}

fn lookup<'a>(resource: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = resource.get(*first)?;
    for seg in rest {
        v = get_ci(v.as_object()?, seg)?;
    }
    Some(v)
}

/// The value of the email with `type` work and `primary` true, if any.
pub fn primary_work_email(resource: &Map<String, Value>) -> Option<&str> {
    let Some(Value::Array(emails)) = resource.get("emails") else {
        return None;
    };
    emails.iter().filter_map(Value::as_object).find_map(|e| {
        let work = str_ci(e, "type").is_some_and(|t| t.eq_ignore_ascii_case("work"));
        let primary = get_ci(e, "primary").and_then(as_bool) == Some(true);
        if work && primary {
            str_ci(e, "value")
        } else {
            None
        }
    })
}

/// True when some email has `type` work.
pub fn has_work_email(resource: &Map<String, Value>) -> bool {
    let Some(Value::Array(emails)) = resource.get("emails") else {
        return false;
    };
    emails
        .iter()
        .filter_map(Value::as_object)
        .any(|e| str_ci(e, "type").is_some_and(|t| t.eq_ignore_ascii_case("work")))
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
