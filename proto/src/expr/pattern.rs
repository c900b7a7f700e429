//! The regular expressions of `Replace`: compiled once, when the expression is parsed, and
//! applied with .NET's group numbering and substitution syntax, since Entra's patterns and
//! replacement strings are written for .NET (`(?<name>...)`, `${name}`, `$1`).
//!
//! The `regex` crate matches in time linear in the text, and the compiled program is capped
//! at [`SIZE_LIMIT`] bytes, so neither a hostile pattern nor a hostile value can make
//! evaluation slow or large; what a replacement builds is capped at [`MAX_VALUE_BYTES`]
//! before it is allocated.

use regex::{Captures, Regex, RegexBuilder};

use super::MAX_VALUE_BYTES;

/// The most memory a compiled pattern may take (its NFA), in bytes. Patterns that need more
/// (`\w{1000}{1000}`) are refused when the expression is parsed.
pub(super) const SIZE_LIMIT: usize = 1 << 20;

/// A compiled `regexPattern`, with the group `regexGroupName` names, if any.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    /// The pattern as written, for the canonical text and for equality.
    text: String,
    regex: Regex,
    /// The `regex` group index of each .NET group number: .NET numbers the unnamed groups
    /// first, left to right, then the named ones, where `regex` numbers all of them left to
    /// right. Index 0 is the whole match in both.
    numbers: Vec<usize>,
    /// The group `regexGroupName` names, as a `regex` group index.
    group: Option<usize>,
}

/// Equal when written the same and naming the same group: the compiled form follows.
impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.group == other.group
    }
}

/// Why a pattern or group name was refused; the caller adds which argument it is about.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PatternError {
    /// Not a pattern the `regex` crate accepts (syntax, look-around, back-references, too big).
    Invalid(String),
    /// `regexGroupName` names no group of the pattern.
    NoSuchGroup,
}

/// The one-line reason of a `regex` error, whose text spans several lines with a caret
/// under the pattern; the position in the expression is the argument's.
fn reason(error: &regex::Error) -> String {
    match error {
        // The crate is built without the Unicode property tables: every `\p{...}` fails so,
        // and "not found" would wrongly suggest a misspelt name.
        regex::Error::Syntax(text) if text.contains("Unicode property not found") => {
            "\\p{...} classes are not supported".to_owned()
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("pattern too large (compiled over {limit} bytes)")
        }
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|line| line.trim().strip_prefix("error: "))
            .map_or_else(
                || text.split_whitespace().collect::<Vec<_>>().join(" "),
                str::to_owned,
            ),
        other => other.to_string(),
    }
}

impl Pattern {
    /// Compiles `text`; `group` is `regexGroupName`: a group name, or a .NET group number.
    pub(super) fn compile(text: &str, group: Option<&str>) -> Result<Pattern, PatternError> {
        let regex = RegexBuilder::new(text)
            .size_limit(SIZE_LIMIT)
            .nest_limit(super::MAX_DEPTH as u32)
            .build()
            .map_err(|e| PatternError::Invalid(reason(&e)))?;
        let mut unnamed = Vec::new();
        let mut named = Vec::new();
        for (index, name) in regex.capture_names().enumerate().skip(1) {
            match name {
                Some(_) => named.push(index),
                None => unnamed.push(index),
            }
        }
        let numbers: Vec<usize> = std::iter::once(0).chain(unnamed).chain(named).collect();
        let mut pattern = Pattern {
            text: text.to_owned(),
            regex,
            numbers,
            group: None,
        };
        if let Some(name) = group {
            pattern.group = Some(pattern.group_index(name).ok_or(PatternError::NoSuchGroup)?);
        }
        Ok(pattern)
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// Whether `regexGroupName` was given.
    pub(super) fn has_group(&self) -> bool {
        self.group.is_some()
    }

    /// The `regex` index of the group called `name`, or numbered `name` in .NET's order.
    fn group_index(&self, name: &str) -> Option<usize> {
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            return name
                .parse::<usize>()
                .ok()
                .and_then(|n| self.numbers.get(n).copied());
        }
        self.regex
            .capture_names()
            .position(|candidate| candidate == Some(name))
    }

    /// Every match in `source` replaced by `replacement` with .NET substitutions expanded.
    /// `None` when the result would be over [`MAX_VALUE_BYTES`].
    pub(super) fn replace_all(&self, source: &str, replacement: &str) -> Option<String> {
        let pieces = self.substitution(replacement);
        let mut out = Bounded::default();
        let mut last = 0;
        for caps in self.regex.captures_iter(source) {
            let whole = caps.get(0).expect("group 0 is the match");
            out.push(&source[last..whole.start()])?;
            for piece in &pieces {
                out.push(piece.expand(&caps, source))?;
            }
            last = whole.end();
        }
        out.push(&source[last..])?;
        Some(out.0)
    }

    /// In every match of `source`, the text of the named group replaced by `replacement`
    /// (taken as it is); matches where the group took no part are left alone. `None` when
    /// the result would be over [`MAX_VALUE_BYTES`].
    pub(super) fn replace_group(&self, source: &str, replacement: &str) -> Option<String> {
        let group = self.group.unwrap_or(0);
        let mut out = Bounded::default();
        let mut last = 0;
        for caps in self.regex.captures_iter(source) {
            let Some(span) = caps.get(group) else {
                continue;
            };
            out.push(&source[last..span.start()])?;
            out.push(replacement)?;
            last = span.end();
        }
        out.push(&source[last..])?;
        Some(out.0)
    }

    /// The text of the named group in the first match of `text` that it takes part in.
    pub(super) fn extract<'t>(&self, text: &'t str) -> Option<&'t str> {
        let group = self.group.unwrap_or(0);
        self.regex
            .captures_iter(text)
            .find_map(|caps| caps.get(group))
            .map(|m| m.as_str())
    }

    /// .NET's `$+`: the group with the highest .NET number (the whole match when none).
    fn last_group(&self) -> usize {
        *self.numbers.last().expect("group 0 is always there")
    }

    /// `replacement` split into literal text and substitutions, as .NET's
    /// `Regex.Replace` reads it: `$number`, `${name}`, `${number}`, `$$`, `$&`, `` $` ``,
    /// `$'`, `$+`, `$_`. A `$` that starts none of these, or names no group, is literal.
    fn substitution(&self, replacement: &str) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = replacement;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            match self.dollar(after) {
                Some((piece, used)) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                    rest = &after[used..];
                }
                None => {
                    literal.push('$');
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        pieces
    }

    /// What follows a `$`: the substitution and how many bytes of `after` it used.
    fn dollar(&self, after: &str) -> Option<(Piece, usize)> {
        let first = after.chars().next()?;
        if first.is_ascii_digit() {
            // .NET takes every digit, then refuses a number that is no group.
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let index = self.group_index(&after[..digits])?;
            return Some((Piece::Group(index), digits));
        }
        if first == '{' {
            let close = after.find('}')?;
            let name = &after[1..close];
            let is_word = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !is_word {
                return None;
            }
            let index = self.group_index(name)?;
            return Some((Piece::Group(index), close + 1));
        }
        let piece = match first {
            '$' => Piece::Text("$".to_owned()),
            '&' => Piece::Group(0),
            '`' => Piece::Before,
            '\'' => Piece::After,
            '+' => Piece::Group(self.last_group()),
            '_' => Piece::Input,
            _ => return None,
        };
        Some((piece, 1))
    }
}

/// One part of a parsed replacement string.
#[derive(Debug)]
enum Piece {
    Text(String),
    /// A group by `regex` index; empty when it took no part in the match.
    Group(usize),
    /// The text before the match.
    Before,
    /// The text after the match.
    After,
    /// The whole input.
    Input,
}

impl Piece {
    fn expand<'a>(&'a self, caps: &Captures<'a>, source: &'a str) -> &'a str {
        let whole = caps.get(0).expect("group 0 is the match");
        match self {
            Piece::Text(text) => text,
            Piece::Group(index) => caps.get(*index).map_or("", |m| m.as_str()),
            Piece::Before => &source[..whole.start()],
            Piece::After => &source[whole.end()..],
            Piece::Input => source,
        }
    }
}

/// A string that refuses to grow past [`MAX_VALUE_BYTES`], checked before each append.
#[derive(Default)]
struct Bounded(String);

impl Bounded {
    fn push(&mut self, text: &str) -> Option<()> {
        if self.0.len().saturating_add(text.len()) > MAX_VALUE_BYTES {
            return None;
        }
        self.0.push_str(text);
        Some(())
    }
}
