//! The evaluators of the functions, one per function, as the table in `functions.rs` names
//! them. Where Entra's reference says what null gives, they do that; elsewhere a null source
//! gives null, so that a missing attribute stays missing (and is skipped) instead of flowing
//! as an empty string.

use super::eval::{Args, Stop};
use super::pattern::Pattern;
use super::text;
use super::value::Value;

type Result = std::result::Result<Value, Stop>;

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn text_or_null(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::Str)
}

pub(super) fn append(a: &Args<'_>) -> Result {
    let Some(source) = a.text(0)? else {
        return Ok(Value::Null);
    };
    let suffix = a.text(1)?.unwrap_or_default();
    a.fits(source.len().saturating_add(suffix.len()))?;
    Ok(Value::Str(source + &suffix))
}

pub(super) fn cbool(a: &Args<'_>) -> Result {
    Ok(Value::Bool(a.condition(0)?))
}

pub(super) fn coalesce(a: &Args<'_>) -> Result {
    for i in 0..a.len() {
        let value = a.value(i)?;
        if !value.is_null() {
            return Ok(value);
        }
    }
    Ok(Value::Null)
}

pub(super) fn cstr(a: &Args<'_>) -> Result {
    Ok(text_or_null(a.text(0)?))
}

pub(super) fn iif(a: &Args<'_>) -> Result {
    if a.condition(0)? {
        a.value(1)
    } else {
        a.value(2)
    }
}

pub(super) fn ignore_flow(a: &Args<'_>) -> Result {
    let value = a.value(0)?;
    if value.is_null_or_empty() {
        Err(Stop::Ignore)
    } else {
        Ok(value)
    }
}

pub(super) fn is_null(a: &Args<'_>) -> Result {
    Ok(Value::Bool(a.value(0)?.is_null()))
}

pub(super) fn is_null_or_empty(a: &Args<'_>) -> Result {
    Ok(Value::Bool(a.value(0)?.is_null_or_empty()))
}

pub(super) fn is_present(a: &Args<'_>) -> Result {
    Ok(Value::Bool(!a.value(0)?.is_null_or_empty()))
}

/// 1-based; out of range gives null. A single value is a list of one.
pub(super) fn item(a: &Args<'_>) -> Result {
    let value = a.value(0)?;
    let index = a.number(1)?;
    if index < 1 {
        return Ok(Value::Null);
    }
    let nth = to_usize(index - 1);
    Ok(match value {
        Value::List(items) => items.into_iter().nth(nth).map_or(Value::Null, Value::Str),
        Value::Null => Value::Null,
        single if nth == 0 => single,
        _ => Value::Null,
    })
}

/// Skips null and empty sources (Entra's `Join(", ", "", [surname], [givenName])` gives
/// "Doe, John"); lists contribute every item. Null when every source is null.
pub(super) fn join(a: &Args<'_>) -> Result {
    let separator = a.text(0)?.unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    let mut any = false;
    let mut bytes = 0usize;
    for i in 1..a.len() {
        let items = match a.value(i)? {
            Value::Null => continue,
            Value::List(items) => items,
            single => vec![single.into_text().ok().flatten().unwrap_or_default()],
        };
        any = true;
        for item in items.into_iter().filter(|s| !s.is_empty()) {
            bytes = bytes
                .saturating_add(item.len())
                .saturating_add(separator.len());
            a.fits(bytes)?;
            parts.push(item);
        }
    }
    Ok(if any {
        Value::Str(parts.join(&separator))
    } else {
        Value::Null
    })
}

/// Entra: 0 gives "", a negative count the whole string, null the empty string.
pub(super) fn left(a: &Args<'_>) -> Result {
    let source = a.text(0)?;
    let count = a.number(1)?;
    let Some(source) = source else {
        return Ok(Value::Str(String::new()));
    };
    Ok(Value::Str(if count < 0 {
        source
    } else {
        source.chars().take(to_usize(count)).collect()
    }))
}

/// 1-based start; a length past the end stops at the end; null gives "" like `Left`.
pub(super) fn mid(a: &Args<'_>) -> Result {
    let source = a.text(0)?;
    let start = a.number(1)?;
    let length = a.number(2)?;
    if start < 1 {
        return Err(a.fail(format!("start of Mid must be 1 or more, got {start}"), 1));
    }
    if length < 0 {
        return Err(a.fail(
            format!("length of Mid must not be negative, got {length}"),
            2,
        ));
    }
    let source = source.unwrap_or_default();
    Ok(Value::Str(
        source
            .chars()
            .skip(to_usize(start - 1))
            .take(to_usize(length))
            .collect(),
    ))
}

pub(super) fn normalize_diacritics(a: &Args<'_>) -> Result {
    Ok(text_or_null(
        a.text(0)?.map(|s| super::diacritics::normalize(&s)),
    ))
}

/// Entra: true gives false; anything else (false, null, other text) gives true.
pub(super) fn not(a: &Args<'_>) -> Result {
    let value = a.value(0)?;
    let is_true = match &value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Str(s) => s.trim().eq_ignore_ascii_case("true"),
        Value::List(items) => {
            return Err(a.fail(
                format!("expected one value, got a list of {}", items.len()),
                0,
            ));
        }
    };
    Ok(Value::Bool(!is_true))
}

pub(super) fn pcase(a: &Args<'_>) -> Result {
    let source = a.text(0)?;
    let separators = a.text(1)?;
    Ok(text_or_null(
        source.map(|s| text::pcase(&s, separators.as_deref())),
    ))
}

/// Entra's five forms (the parser let through only these): `oldValue` + `replacementValue`
/// replaces in the source; `oldValue` + `template` replaces in the template with the source;
/// the others use the pattern compiled at parse time (see [`replace_regex`]). Case-sensitive.
pub(super) fn replace(a: &Args<'_>) -> Result {
    if let Some(pattern) = a.pattern(2) {
        return replace_regex(a, pattern);
    }
    let Some(source) = a.text(0)? else {
        return Ok(Value::Null);
    };
    let old = a.text(1)?.unwrap_or_default();
    let (haystack, new) = if a.present(6) {
        let Some(template) = a.text(6)? else {
            return Ok(Value::Null);
        };
        (template, source)
    } else {
        (source, a.text(4)?.unwrap_or_default())
    };
    // An empty oldValue would insert between every character: leave the text alone.
    if old.is_empty() {
        return Ok(Value::Str(haystack));
    }
    let count = haystack.matches(old.as_str()).count();
    let bytes =
        (haystack.len() - count * old.len()).saturating_add(count.saturating_mul(new.len()));
    a.fits(bytes)?;
    Ok(Value::Str(haystack.replace(old.as_str(), &new)))
}

/// `regexPattern` + `replacementValue`: every match replaced, .NET substitutions (`${name}`,
/// `$1`, `$&`, ...) expanded. With `regexGroupName`: only that group's text in every match,
/// `replacementValue` taken as it is. With `regexGroupName` + `replacementAttributeName`: a
/// source with a value (not null, not "") as it is, else the group's text in the first match
/// in the replacementAttributeName value; null when that is null or nothing matches.
fn replace_regex(a: &Args<'_>, pattern: &Pattern) -> Result {
    let source = a.text(0)?;
    if a.present(5) {
        if let Some(source) = source.filter(|s| !s.is_empty()) {
            return Ok(Value::Str(source));
        }
        let Some(other) = a.text(5)? else {
            return Ok(Value::Null);
        };
        return Ok(text_or_null(pattern.extract(&other).map(str::to_owned)));
    }
    let Some(source) = source else {
        return Ok(Value::Null);
    };
    let replacement = a.text(4)?.unwrap_or_default();
    let replaced = if pattern.has_group() {
        pattern.replace_group(&source, &replacement)
    } else {
        pattern.replace_all(&source, &replacement)
    };
    replaced.map(Value::Str).ok_or_else(|| a.too_large())
}

/// Items are not trimmed. Null or "" gives null.
pub(super) fn split(a: &Args<'_>) -> Result {
    let source = a.text(0)?;
    let delimiter = a.text(1)?.unwrap_or_default();
    let Some(source) = source.filter(|s| !s.is_empty()) else {
        return Ok(Value::Null);
    };
    if delimiter.is_empty() {
        return Ok(Value::List(vec![source]));
    }
    Ok(Value::List(
        source
            .split(delimiter.as_str())
            .map(str::to_owned)
            .collect(),
    ))
}

pub(super) fn strip_spaces(a: &Args<'_>) -> Result {
    Ok(text_or_null(a.text(0)?.map(|s| s.replace(' ', ""))))
}

/// Case-sensitive; a null source matches the key "" (Entra's `Switch([x], [x], "", "Other")`).
pub(super) fn switch(a: &Args<'_>) -> Result {
    let source = a.text(0)?.unwrap_or_default();
    let mut i = 2;
    while i + 1 < a.len() {
        if a.text(i)?.unwrap_or_default() == source {
            return a.value(i + 1);
        }
        i += 2;
    }
    a.value(1)
}

pub(super) fn to_lower(a: &Args<'_>) -> Result {
    let source = a.text(0)?;
    let culture = a.text(1)?;
    Ok(text_or_null(
        source.map(|s| text::to_lower(&s, culture.as_deref())),
    ))
}

pub(super) fn to_upper(a: &Args<'_>) -> Result {
    let source = a.text(0)?;
    let culture = a.text(1)?;
    Ok(text_or_null(
        source.map(|s| text::to_upper(&s, culture.as_deref())),
    ))
}

/// Entra: a number under 1, a null string, or too few words give "".
pub(super) fn word(a: &Args<'_>) -> Result {
    let source = a.text(0)?;
    let number = a.number(1)?;
    let delimiters = a.text(2)?.unwrap_or_default();
    let word = match source {
        Some(s) if number >= 1 => text::word(&s, to_usize(number), &delimiters).to_owned(),
        _ => String::new(),
    };
    Ok(Value::Str(word))
}
