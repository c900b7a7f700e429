//! The values an expression works on, and where attribute values come from.

use std::borrow::Cow;

use serde_json::Value as Json;

use crate::SourceUser;

/// A value during evaluation, and the result of an expression.
///
/// Numbers are text (Graph numbers and number constants alike), as in Entra, where every
/// attribute flows as a string. A list is never empty: an empty Graph array is [`Value::Null`],
/// so that "absent" has one spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Absent, or explicitly null.
    Null,
    Str(String),
    /// Written as `True` / `False` where a string is needed, as .NET does.
    Bool(bool),
    /// A multi-valued attribute (`businessPhones`, `proxyAddresses`) or the result of `Split`.
    List(Vec<String>),
}

impl Value {
    /// The value of a Graph property as JSON.
    ///
    /// Objects (`employeeOrgData`, `onPremisesExtensionAttributes`) become their compact JSON
    /// text: they are not addressable by this language, but `IsPresent` still tells whether they
    /// are set. Null items of an array are dropped.
    pub fn from_json(json: &Json) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::String(s) => Value::Str(s.clone()),
            Json::Number(n) => Value::Str(n.to_string()),
            Json::Object(_) => Value::Str(json.to_string()),
            Json::Array(items) => {
                let items: Vec<String> = items
                    .iter()
                    .filter_map(|item| match Value::from_json(item) {
                        Value::Null => None,
                        Value::Str(s) => Some(s),
                        Value::Bool(b) => Some(bool_text(b).to_owned()),
                        // Nested arrays: keep their JSON text rather than flattening them.
                        Value::List(_) => Some(item.to_string()),
                    })
                    .collect();
                if items.is_empty() {
                    Value::Null
                } else {
                    Value::List(items)
                }
            }
        }
    }

    /// The value as JSON: a string, a boolean, an array of strings, or null.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Str(s) => Json::String(s.clone()),
            Value::Bool(b) => Json::Bool(*b),
            Value::List(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Null or the empty string (lists are never empty).
    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::Bool(_) | Value::List(_) => false,
        }
    }

    /// The value where one string is needed: `None` for null; an error naming what it is
    /// otherwise.
    pub(super) fn into_text(self) -> Result<Option<String>, String> {
        match self {
            Value::Null => Ok(None),
            Value::Str(s) => Ok(Some(s)),
            Value::Bool(b) => Ok(Some(bool_text(b).to_owned())),
            Value::List(items) => Err(format!("expected one value, got a list of {}", items.len())),
        }
    }

    /// The value where a condition is needed: null is false, `True`/`False` in any case, and
    /// whole numbers (non-zero is true), as `CBool` does.
    pub(super) fn to_condition(&self) -> Result<bool, String> {
        match self {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(*b),
            Value::Str(s) => text_condition(s)
                .ok_or_else(|| format!("cannot convert \"{}\" to a boolean", s.escape_debug())),
            Value::List(items) => Err(format!("expected one value, got a list of {}", items.len())),
        }
    }

    /// Bytes the value holds, plus one per list item, to bound what evaluation builds.
    pub(super) fn size(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) => 0,
            Value::Str(s) => s.len(),
            Value::List(items) => items.iter().map(|s| s.len() + 1).sum(),
        }
    }
}

pub(super) fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// `True`/`False` in any case, or a whole number.
pub(super) fn text_condition(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        s.parse::<i64>().ok().map(|n| n != 0)
    }
}

/// Where an expression reads attributes: one directory object.
pub trait Source {
    /// The attribute's JSON value by its Graph property name (exact case), or `None` when the
    /// object does not have it.
    fn attribute(&self, name: &str) -> Option<Cow<'_, Json>>;
}

/// A Graph user: its properties, and `[id]` for its Entra object id.
impl Source for SourceUser {
    fn attribute(&self, name: &str) -> Option<Cow<'_, Json>> {
        match self.attributes.get(name) {
            Some(value) => Some(Cow::Borrowed(value)),
            None if name == "id" => Some(Cow::Owned(Json::String(self.id.clone()))),
            None => None,
        }
    }
}

/// A plain JSON object, as in tests and previews of a mapping.
impl Source for serde_json::Map<String, Json> {
    fn attribute(&self, name: &str) -> Option<Cow<'_, Json>> {
        self.get(name).map(Cow::Borrowed)
    }
}
