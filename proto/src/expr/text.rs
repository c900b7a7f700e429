//! Character-level helpers of the string functions: case mapping, proper case, words.
//!
//! Case mapping is per character, as .NET's invariant culture does: a character whose
//! mapping is more than one character (`ß` → `SS`) is kept as it is, so a string never grows
//! by much and `ToUpper("Straße")` is `STRAßE`, what Entra would send.

/// Whether `culture` (RFC 4646, `tr-TR`) is Turkish or Azerbaijani, the cultures with a dotted
/// and a dotless i.
fn turkic(culture: Option<&str>) -> bool {
    culture.is_some_and(|c| {
        let language = c.trim().split(['-', '_']).next().unwrap_or("");
        language.eq_ignore_ascii_case("tr") || language.eq_ignore_ascii_case("az")
    })
}

fn upper_char(c: char, turkic: bool) -> char {
    if turkic && c == 'i' {
        return 'İ';
    }
    let mut mapped = c.to_uppercase();
    match (mapped.next(), mapped.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn lower_char(c: char, turkic: bool) -> char {
    match c {
        'I' if turkic => 'ı',
        'İ' if turkic => 'i',
        _ => {
            let mut mapped = c.to_lowercase();
            match (mapped.next(), mapped.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        }
    }
}

pub(super) fn to_upper(s: &str, culture: Option<&str>) -> String {
    let turkic = turkic(culture);
    s.chars().map(|c| upper_char(c, turkic)).collect()
}

pub(super) fn to_lower(s: &str, culture: Option<&str>) -> String {
    let turkic = turkic(culture);
    s.chars().map(|c| lower_char(c, turkic)).collect()
}

fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}')
}

/// The default word separators of `PCase`, after .NET's `ToTitleCase`: anything that is not
/// a letter, digit or combining mark, except an apostrophe (so "O'NEIL" becomes "O'neil").
fn default_separator(c: char) -> bool {
    !(c.is_alphanumeric() || is_combining(c) || c == '\'' || c == '\u{2019}')
}

/// First character of each word upper case, the rest lower case. With `separators`, only
/// those characters separate words.
pub(super) fn pcase(s: &str, separators: Option<&str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word_start = true;
    for c in s.chars() {
        let separates = match separators {
            Some(set) => set.contains(c),
            None => default_separator(c),
        };
        if separates {
            out.push(c);
            word_start = true;
        } else {
            out.push(if word_start {
                upper_char(c, false)
            } else {
                lower_char(c, false)
            });
            word_start = false;
        }
    }
    out
}

/// Word `number` (1-based) of `s`, words being the non-empty runs between any of the
/// `delimiters` characters; "" when there are fewer words.
pub(super) fn word<'a>(s: &'a str, number: usize, delimiters: &str) -> &'a str {
    s.split(|c| delimiters.contains(c))
        .filter(|w| !w.is_empty())
        .nth(number - 1)
        .unwrap_or("")
}
