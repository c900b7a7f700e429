//! Cuts expression text into tokens, each with its 0-based character position.

use super::error::ExprError;

/// A comparison operator, allowed between two operands (`[country] = "USA"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind {
    /// A bare name: a function name, or `True` / `False`.
    Ident(String),
    /// `[name]`, holding the name.
    Attr(String),
    /// `"text"`, unescaped.
    Str(String),
    Int(i64),
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: TokenKind,
    pub pos: usize,
}

/// The tokens of `text`, ending with one `End` token.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => single(&mut i, TokenKind::LParen),
            ')' => single(&mut i, TokenKind::RParen),
            ',' => single(&mut i, TokenKind::Comma),
            '=' => single(&mut i, TokenKind::Op(CmpOp::Eq)),
            '<' | '>' => operator(&chars, &mut i),
            '"' => TokenKind::Str(string(&chars, &mut i)?),
            '[' => TokenKind::Attr(attribute(&chars, &mut i)?),
            '-' if chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                TokenKind::Int(number(&chars, &mut i)?)
            }
            c if c.is_ascii_digit() => TokenKind::Int(number(&chars, &mut i)?),
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                TokenKind::Ident(chars[start..i].iter().collect())
            }
            c => {
                return Err(ExprError::parse(
                    format!("unexpected character \"{}\"", c.escape_debug()),
                    start,
                ));
            }
        };
        tokens.push(Token { kind, pos: start });
    }
    tokens.push(Token {
        kind: TokenKind::End,
        pos: chars.len(),
    });
    Ok(tokens)
}

fn single(i: &mut usize, kind: TokenKind) -> TokenKind {
    *i += 1;
    kind
}

fn operator(chars: &[char], i: &mut usize) -> TokenKind {
    let op = match (chars[*i], chars.get(*i + 1)) {
        ('<', Some('>')) => CmpOp::Ne,
        ('<', Some('=')) => CmpOp::Le,
        ('>', Some('=')) => CmpOp::Ge,
        ('<', _) => CmpOp::Lt,
        _ => CmpOp::Gt,
    };
    *i += op.symbol().chars().count();
    TokenKind::Op(op)
}

/// A string constant: only `\"` and `\\` are escapes, as in Entra; any other backslash is an
/// error rather than a silent guess, so a pasted regex fails visibly.
fn string(chars: &[char], i: &mut usize) -> Result<String, ExprError> {
    let start = *i;
    *i += 1;
    let mut out = String::new();
    loop {
        match chars.get(*i) {
            None => return Err(ExprError::parse("unterminated string", start)),
            Some('"') => {
                *i += 1;
                return Ok(out);
            }
            Some('\\') => match chars.get(*i + 1) {
                Some(&c @ ('"' | '\\')) => {
                    out.push(c);
                    *i += 2;
                }
                Some(c) => {
                    return Err(ExprError::parse(
                        format!(
                            "invalid escape \"\\{}\" (only \\\" and \\\\ are escapes)",
                            c.escape_debug()
                        ),
                        *i,
                    ));
                }
                None => return Err(ExprError::parse("unterminated string", start)),
            },
            Some(&c) => {
                out.push(c);
                *i += 1;
            }
        }
    }
}

/// An attribute reference. Names are Graph property names (letters, digits, `_`, and the
/// `.`/`-`/`@` of extension and coordinator-added names); anything else is a typo.
fn attribute(chars: &[char], i: &mut usize) -> Result<String, ExprError> {
    let start = *i;
    *i += 1;
    let name_start = *i;
    loop {
        match chars.get(*i) {
            None => return Err(ExprError::parse("unterminated attribute name", start)),
            Some(']') => break,
            Some(&c) if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@') => *i += 1,
            Some(c) => {
                return Err(ExprError::parse(
                    format!(
                        "invalid character \"{}\" in attribute name",
                        c.escape_debug()
                    ),
                    *i,
                ));
            }
        }
    }
    if *i == name_start {
        return Err(ExprError::parse("empty attribute name", start));
    }
    let name = chars[name_start..*i].iter().collect();
    *i += 1;
    Ok(name)
}

fn number(chars: &[char], i: &mut usize) -> Result<i64, ExprError> {
    let start = *i;
    if chars[*i] == '-' {
        *i += 1;
    }
    while *i < chars.len() && chars[*i].is_ascii_digit() {
        *i += 1;
    }
    let text: String = chars[start..*i].iter().collect();
    if chars
        .get(*i)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
    {
        return Err(ExprError::parse(
            "invalid number (only whole numbers are allowed)",
            start,
        ));
    }
    text.parse()
        .map_err(|_| ExprError::parse("number out of range", start))
}
