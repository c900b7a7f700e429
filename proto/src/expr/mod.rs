//! Attribute-mapping expressions in the style of Microsoft Entra provisioning.
//!
//! An expression computes one target attribute from a source object's attributes:
//! `Join(" ", [givenName], [surname])`, `ToLower(NormalizeDiacritics([mailNickname]))`,
//! `IgnoreFlowIfNullOrEmpty([department])`. It is parsed once, when a mapping configuration is
//! saved ([`Expr::parse`]: syntax, function names, arity and argument kinds are all checked
//! then), and evaluated per object without re-parsing ([`Expr::evaluate`]).
//!
//! The syntax and the functions follow Entra's "Reference for writing expressions for
//! attribute mappings"; `docs/expressions.md` describes both, with an example per function,
//! and where this implementation departs from Entra. Attributes are Graph property names
//! (`[givenName]`, `[businessPhones]`). Pure: no I/O, no clock, no randomness.
//!
//! Hostile text is safe: expressions are at most [`MAX_EXPRESSION_CHARS`] characters, calls
//! nest at most [`MAX_DEPTH`] deep (so recursion is bounded), and no function builds a value
//! over [`MAX_VALUE_BYTES`] (checked before allocating where a function could multiply sizes).
//! `Replace`'s regular expressions are compiled once, at parse time, under a size limit, and
//! match in time linear in the text (the `regex` crate; see `pattern.rs`).

mod ast;
mod builtins;
mod diacritics;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod pattern;
mod text;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use error::ExprError;
pub use value::{Source, Value};

/// The longest expression accepted, in characters (Entra's limit).
pub const MAX_EXPRESSION_CHARS: usize = 10_000;
/// How deep function calls may nest.
pub const MAX_DEPTH: usize = 64;
/// The largest value (string bytes, or list bytes plus items) a function may build.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: ast::Node,
    /// Attribute names in order of first use, without repeats.
    references: Vec<String>,
}

/// What an expression gives for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The attribute's value; [`Value::Null`] when there is none (Entra does not send nulls:
    /// the caller decides what null means for its target).
    Value(Value),
    /// `IgnoreFlowIfNullOrEmpty` met null or empty: leave the attribute out of this object's
    /// update altogether.
    Ignore,
}

impl Expr {
    /// Parses and checks `text`; errors carry the 0-based character position.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let root = parser::parse(text)?;
        let mut references: Vec<String> = Vec::new();
        root.attributes(&mut |name| {
            if !references.iter().any(|r| r == name) {
                references.push(name.to_owned());
            }
        });
        Ok(Expr { root, references })
    }

    /// Evaluates the expression on one object. Errors are about the data (a number that is
    /// not one, a result over [`MAX_VALUE_BYTES`]) and carry the position of the call.
    pub fn evaluate(&self, source: &dyn Source) -> Result<Outcome, ExprError> {
        match eval::eval(&self.root, source) {
            Ok(value) => Ok(Outcome::Value(value)),
            Err(eval::Stop::Ignore) => Ok(Outcome::Ignore),
            Err(eval::Stop::Fail(error)) => Err(error),
        }
    }

    /// The attribute names the expression reads, in order of first use, each once: the Graph
    /// properties to `$select` for it.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.references.iter().map(String::as_str)
    }
}

impl FromStr for Expr {
    type Err = ExprError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Expr::parse(text)
    }
}

/// The canonical text: canonical function names, one space after commas, and constants
/// re-escaped. Parsing it gives the same expression.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}
