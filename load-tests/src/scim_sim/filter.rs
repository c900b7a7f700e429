//! SCIM filter expressions and attribute paths (RFC 7644 §3.4.2.2, §3.5.2): the AST and a pure
//! parser for the subset Webex documents (`eq`, `sw`, `ew`, plus `pr`, `and`, `or`, parentheses
//! and `attr[filter]` value paths). Other RFC operators are rejected, as Webex may reject them.
//!
//! The same attribute-path grammar serves PATCH paths (`emails[type eq "work"].value`,
//! `urn:…:enterprise:2.0:User:department`), so both live here.

use std::fmt;

use super::group_schema::CORE_GROUP;
use super::schema::{CORE_USER, KNOWN_EXTENSIONS};

/// Deepest parenthesis nesting accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    /// `attr pr`; also `attr[filter]` alone ("some element matches").
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Literal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Sw,
    Ew,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Bool(bool),
    Number(f64),
    Null,
}

/// `[urn:…:]attr[.sub][\[filter\]][.sub]`, resolved to JSON keys.
///
/// `segments` walks from the resource root: `["name", "givenName"]`, or
/// `["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department"]` for an
/// extension attribute. `filter` selects elements of the multi-valued attribute the segments
/// end at, and `sub` then names a sub-attribute of each selected element.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    pub segments: Vec<String>,
    pub filter: Option<Box<Filter>>,
    pub sub: Option<String>,
}

impl AttrPath {
    /// A plain path without a value filter, e.g. `AttrPath::simple(&["name", "givenName"])`.
    pub fn simple(segments: &[&str]) -> Self {
        AttrPath {
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            filter: None,
            sub: None,
        }
    }

    /// True when this is exactly the top-level attribute `name` (any case).
    pub fn is_attr(&self, name: &str) -> bool {
        self.filter.is_none()
            && self.sub.is_none()
            && self.segments.len() == 1
            && self.segments[0].eq_ignore_ascii_case(name)
    }
}

/// Why a filter or path did not parse; callers turn it into `invalidFilter` or `invalidPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError(msg.into()))
}

/// Parses a `filter` query parameter.
pub fn parse_filter(input: &str) -> Result<Filter, SyntaxError> {
    let mut p = Parser::new(input)?;
    if p.toks.is_empty() {
        return err("empty filter");
    }
    let f = p.or(0)?;
    p.end()?;
    Ok(f)
}

/// Parses a PATCH `path` (or a key of a path-keyed `replace` value).
pub fn parse_path(input: &str) -> Result<AttrPath, SyntaxError> {
    let mut p = Parser::new(input)?;
    let path = match p.next() {
        Some(Tok::Word(w)) => p.path_tail(&w, 0)?,
        _ => return err(format!("invalid path {input:?}")),
    };
    p.end()?;
    Ok(path)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

fn lex(input: &str) -> Result<Vec<Tok>, SyntaxError> {
    let mut toks = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                toks.push(match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '[' => Tok::LBracket,
                    _ => Tok::RBracket,
                });
            }
            '"' => {
                chars.next();
                let mut end = None;
                let mut escaped = false;
                for (i, c) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = Some(i);
                        break;
                    }
                }
                let Some(end) = end else {
                    return err("unterminated string");
                };
                // Filter strings are JSON strings (RFC 7644 §3.4.2.2), escapes included.
                match serde_json::from_str::<String>(&input[start..=end]) {
                    Ok(s) => toks.push(Tok::Str(s)),
                    Err(_) => return err(format!("invalid string {}", &input[start..=end])),
                }
            }
            _ => {
                let mut end = input.len();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"') {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                toks.push(Tok::Word(input[start..end].to_owned()));
            }
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

const UNSUPPORTED_OPS: [&str; 7] = ["ne", "co", "gt", "ge", "lt", "le", "not"];

impl Parser {
    fn new(input: &str) -> Result<Self, SyntaxError> {
        Ok(Parser {
            toks: lex(input)?,
            pos: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn end(&self) -> Result<(), SyntaxError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => err(format!("unexpected {t:?}")),
        }
    }

    fn or(&mut self, depth: usize) -> Result<Filter, SyntaxError> {
        let mut left = self.and(depth)?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter, SyntaxError> {
        let mut left = self.factor(depth)?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.factor(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn factor(&mut self, depth: usize) -> Result<Filter, SyntaxError> {
        match self.next() {
            Some(Tok::LParen) => {
                if depth >= MAX_DEPTH {
                    return err("filter nested too deeply");
                }
                let f = self.or(depth + 1)?;
                match self.next() {
                    Some(Tok::RParen) => Ok(f),
                    _ => err("missing ')'"),
                }
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                err("unsupported operator \"not\"")
            }
            Some(Tok::Word(w)) => {
                let path = self.path_tail(&w, depth)?;
                if path.filter.is_some() && path.sub.is_none() {
                    return Ok(Filter::Present(path));
                }
                let op = match self.next() {
                    Some(Tok::Word(op)) => op.to_ascii_lowercase(),
                    _ => return err(format!("missing operator after {w}")),
                };
                match op.as_str() {
                    "pr" => Ok(Filter::Present(path)),
                    "eq" | "sw" | "ew" => {
                        let op = match op.as_str() {
                            "eq" => CompareOp::Eq,
                            "sw" => CompareOp::Sw,
                            _ => CompareOp::Ew,
                        };
                        Ok(Filter::Compare(path, op, self.literal()?))
                    }
                    o if UNSUPPORTED_OPS.contains(&o) => err(format!("unsupported operator {o:?}")),
                    o => err(format!("unknown operator {o:?}")),
                }
            }
            Some(t) => err(format!("unexpected {t:?}")),
            None => err("unexpected end of filter"),
        }
    }

    fn literal(&mut self) -> Result<Literal, SyntaxError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::String(s)),
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                "null" => Ok(Literal::Null),
                _ => match w.parse::<f64>() {
                    Ok(n) if n.is_finite() => Ok(Literal::Number(n)),
                    _ => err(format!("invalid value {w:?} (strings need double quotes)")),
                },
            },
            _ => err("missing comparison value"),
        }
    }

    /// The rest of an attribute path whose first word is `word`: an optional `[filter]` and
    /// an optional `.sub` after it.
    fn path_tail(&mut self, word: &str, depth: usize) -> Result<AttrPath, SyntaxError> {
        let segments = split_attr(word)?;
        let mut path = AttrPath {
            segments,
            filter: None,
            sub: None,
        };
        if self.peek() != Some(&Tok::LBracket) {
            return Ok(path);
        }
        self.pos += 1;
        if depth >= MAX_DEPTH {
            return err("filter nested too deeply");
        }
        let inner = self.or(depth + 1)?;
        if contains_value_filter(&inner) {
            return err("nested value filters are not supported");
        }
        if self.next() != Some(Tok::RBracket) {
            return err("missing ']'");
        }
        path.filter = Some(Box::new(inner));
        if let Some(Tok::Word(w)) = self.peek()
            && let Some(sub) = w.strip_prefix('.')
        {
            let sub = sub.to_owned();
            self.pos += 1;
            if !valid_name(&sub) {
                return err(format!("invalid sub-attribute {sub:?}"));
            }
            path.sub = Some(sub);
        }
        Ok(path)
    }
}

fn contains_value_filter(f: &Filter) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            contains_value_filter(a) || contains_value_filter(b)
        }
        Filter::Present(p) | Filter::Compare(p, _, _) => p.filter.is_some(),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'))
}

/// Core schemas, whose attributes sit at the top level of a resource.
const CORE_SCHEMAS: [&str; 2] = [CORE_USER, CORE_GROUP];

/// Splits `name.givenName` or `urn:…:User:manager.value` into JSON keys. A core schema URN
/// (User or Group) is dropped; an extension URN becomes the first key.
fn split_attr(word: &str) -> Result<Vec<String>, SyntaxError> {
    let (urn, rest) = split_urn(word)?;
    let mut segments: Vec<String> = urn.into_iter().collect();
    if let Some(rest) = rest {
        for part in rest.split('.') {
            if !valid_name(part) {
                return err(format!("invalid attribute path {word:?}"));
            }
            segments.push(part.to_owned());
        }
    }
    if segments.is_empty() || segments.len() > 3 {
        return err(format!("invalid attribute path {word:?}"));
    }
    Ok(segments)
}

/// `(extension URN key, attribute part)`; either may be absent, not both.
fn split_urn(word: &str) -> Result<(Option<String>, Option<&str>), SyntaxError> {
    let is_urn = word
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    if !is_urn {
        return Ok((None, Some(word)));
    }
    for known in CORE_SCHEMAS.iter().chain(KNOWN_EXTENSIONS.iter()) {
        let Some(head) = word.get(..known.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(known) {
            continue;
        }
        let tail = &word[known.len()..];
        let urn = (!CORE_SCHEMAS.contains(known)).then(|| (*known).to_owned());
        if tail.is_empty() {
            return match urn {
                Some(u) => Ok((Some(u), None)),
                None => err("a path needs an attribute after the core schema URN"),
            };
        }
        if let Some(attr) = tail.strip_prefix(':') {
            return Ok((urn, Some(attr)));
        }
    }
    // An unknown schema: the attribute is whatever follows the last colon.
    match word.rfind(':') {
        Some(i) if i + 1 < word.len() => Ok((Some(word[..i].to_owned()), Some(&word[i + 1..]))),
        _ => err(format!("invalid attribute path {word:?}")),
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
