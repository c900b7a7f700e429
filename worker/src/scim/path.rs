//! Parsing of the SCIM attribute paths the mappings produce (RFC 7644 §3.5.2 `path`).
//!
//! Supported forms: `attr`, `attr.sub`, `attr[f eq "v"]`, `attr[f eq "v"].sub`, each
//! optionally prefixed by a schema URN (`urn:...:User:department`). Only `eq` filters on
//! a string value are accepted: that is all a mapping needs to address one entry of a
//! multi-valued attribute, and anything else is a mapping bug, reported as an error.
//!
//! A parsed path borrows from the path's text: every attribute of every created user is
//! parsed, and copying the parts was a tenth of building a resource.

use std::borrow::Cow;

use crate::error::WorkerError;

/// A parsed SCIM attribute path, borrowing from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimPath<'a> {
    /// Extension schema URN, for attributes outside the core schema.
    pub schema: Option<&'a str>,
    pub attr: &'a str,
    /// `(attribute, value)` of an `attr[attribute eq "value"]` filter; the value is owned
    /// only when its literal has escapes.
    pub filter: Option<(&'a str, Cow<'a, str>)>,
    pub sub: Option<&'a str>,
}

fn invalid(path: &str, reason: &'static str) -> WorkerError {
    WorkerError::ScimPath {
        path: path.to_string(),
        reason,
    }
}

fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

/// Parses one path.
pub fn parse_path(path: &str) -> Result<ScimPath<'_>, WorkerError> {
    let (schema, rest) = if path.starts_with("urn:") {
        // The attribute starts after the last ':' outside the filter brackets.
        let head_end = path.find('[').unwrap_or(path.len());
        let colon = path[..head_end]
            .rfind(':')
            .ok_or_else(|| invalid(path, "urn without attribute"))?;
        // urn:<namespace>:<specific>, at the least
        if path[..colon].split(':').count() < 3 {
            return Err(invalid(path, "schema urn too short"));
        }
        (Some(&path[..colon]), &path[colon + 1..])
    } else {
        (None, path)
    };

    let (head, filter, tail) = match rest.find('[') {
        Some(open) => {
            let close = rest
                .rfind(']')
                .ok_or_else(|| invalid(path, "unclosed filter"))?;
            if close < open {
                return Err(invalid(path, "unclosed filter"));
            }
            let filter = parse_filter(path, &rest[open + 1..close])?;
            let tail = &rest[close + 1..];
            let tail = match tail {
                "" => None,
                t => Some(
                    t.strip_prefix('.')
                        .ok_or_else(|| invalid(path, "text after filter"))?,
                ),
            };
            (&rest[..open], Some(filter), tail)
        }
        None => match rest.split_once('.') {
            Some((head, sub)) => (head, None, Some(sub)),
            None => (rest, None, None),
        },
    };
    if !is_attr_name(head) {
        return Err(invalid(path, "bad attribute name"));
    }
    if let Some(sub) = tail
        && !is_attr_name(sub)
    {
        return Err(invalid(path, "bad sub-attribute name"));
    }
    Ok(ScimPath {
        schema,
        attr: head,
        filter,
        sub: tail,
    })
}

fn parse_filter<'a>(path: &str, filter: &'a str) -> Result<(&'a str, Cow<'a, str>), WorkerError> {
    let filter = filter.trim();
    let (attr, rest) = filter
        .split_once(char::is_whitespace)
        .ok_or_else(|| invalid(path, "bad filter"))?;
    let (op, value) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(|| invalid(path, "bad filter"))?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(invalid(path, "only eq filters are supported"));
    }
    if !is_attr_name(attr) {
        return Err(invalid(path, "bad filter attribute"));
    }
    Ok((attr, string_literal(path, value.trim())?))
}

/// A SCIM filter string literal, which is a JSON string literal: borrowed from the path
/// when it has nothing to unescape (every path of the default mapping).
fn string_literal<'a>(path: &str, literal: &'a str) -> Result<Cow<'a, str>, WorkerError> {
    let plain = literal
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|inner| !inner.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
    match plain {
        Some(inner) => Ok(Cow::Borrowed(inner)),
        None => serde_json::from_str::<String>(literal)
            .map(Cow::Owned)
            .map_err(|_| invalid(path, "filter value must be a quoted string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(
        schema: Option<&'a str>,
        attr: &'a str,
        filter: Option<(&'a str, &'a str)>,
        sub: Option<&'a str>,
    ) -> ScimPath<'a> {
        ScimPath {
            schema,
            attr,
            filter: filter.map(|(a, v)| (a, Cow::Borrowed(v))),
            sub,
        }
    }

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn parses_supported_forms() {
        let cases = vec![
            ("userName", p(None, "userName", None, None)),
            ("name.givenName", p(None, "name", None, Some("givenName"))),
            (
                "emails[type eq \"work\"].value",
                p(None, "emails", Some(("type", "work")), Some("value")),
            ),
            (
                "phoneNumbers[type EQ \"mobile\"]",
                p(None, "phoneNumbers", Some(("type", "mobile")), None),
            ),
            (
                "addresses[type eq \"wo\\\"rk\"].locality",
                p(
                    None,
                    "addresses",
                    Some(("type", "wo\"rk")),
                    Some("locality"),
                ),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                p(Some(ENT), "department", None, None),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                p(Some(ENT), "manager", None, Some("value")),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_path(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn rejects_bad_paths() {
        let cases = [
            "",
            "emails[type eq \"work\"",
            "emails[type co \"w\"].value",
            "emails[type eq work].value",
            "emails[type eq \"wo\"rk\"].value",
            "emails[type eq \"work].value",
            "emails[type eq \"work\"]value",
            "emails[type]",
            "na me",
            "name.",
            "urn:nothing",
            "1abc",
        ];
        for input in cases {
            assert!(parse_path(input).is_err(), "{input:?} should be rejected");
        }
    }
}
