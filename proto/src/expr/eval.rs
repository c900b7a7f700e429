//! Evaluation of a parsed expression against one object's attributes.
//!
//! Arguments are evaluated only when a function asks for them, so `IIF`, `Switch` and
//! `Coalesce` skip the branches they do not take (and an `IgnoreFlowIfNullOrEmpty` there).
//! Recursion follows the tree, whose depth the parser bounds.

use std::cmp::Ordering;

use super::MAX_VALUE_BYTES;
use super::ast::{Node, NodeKind, Ty};
use super::error::ExprError;
use super::lexer::CmpOp;
use super::pattern::Pattern;
use super::value::{Source, Value, bool_text};

/// Why evaluation stopped before producing a value.
#[derive(Debug)]
pub(super) enum Stop {
    /// `IgnoreFlowIfNullOrEmpty` met null or empty: the attribute leaves the flow, wherever
    /// in the expression that happened.
    Ignore,
    Fail(ExprError),
}

impl From<ExprError> for Stop {
    fn from(error: ExprError) -> Self {
        Stop::Fail(error)
    }
}

pub(super) type Evaluator = fn(&Args<'_>) -> Result<Value, Stop>;

pub(super) fn eval(node: &Node, source: &dyn Source) -> Result<Value, Stop> {
    match &node.kind {
        NodeKind::Str(s) => Ok(Value::Str(s.clone())),
        NodeKind::Pattern(pattern) => Ok(Value::Str(pattern.text().to_owned())),
        NodeKind::Int(n) => Ok(Value::Str(n.to_string())),
        NodeKind::Bool(b) => Ok(Value::Bool(*b)),
        NodeKind::Attr(name) => Ok(source
            .attribute(name)
            .map_or(Value::Null, |v| Value::from_json(&v))),
        NodeKind::Compare { op, left, right } => {
            let left = eval(left, source)?;
            let right = eval(right, source)?;
            Ok(Value::Bool(compare(*op, left, right, node.pos)?))
        }
        NodeKind::Call { func, args } => {
            let args = Args {
                source,
                nodes: args,
                pos: node.pos,
            };
            let spec = func.spec();
            let value = (spec.eval)(&args)?;
            // Builders check sizes before allocating; this catches the rest (case mapping can
            // lengthen a string a little). Functions that hand back one of their arguments
            // (`Coalesce`, `IIF`, ...) build nothing, and a large attribute may pass through.
            if matches!(spec.returns, Ty::Str | Ty::List) {
                args.fits(value.size())?;
            }
            Ok(value)
        }
    }
}

/// Compares two values as text, null as the empty string and booleans as `True`/`False`;
/// two whole numbers compare as numbers. Unlike Entra, where a null operand makes the
/// condition fail, `[country] = ""` is true for an absent country.
fn compare(op: CmpOp, left: Value, right: Value, pos: usize) -> Result<bool, Stop> {
    let either_bool = matches!(left, Value::Bool(_)) || matches!(right, Value::Bool(_));
    let operand = |v: Value| -> Result<String, Stop> {
        let text = v
            .into_text()
            .map_err(|e| ExprError::evaluate(format!("cannot compare: {e}"), pos))?
            .unwrap_or_default();
        // Against a boolean, "true" in any case (as a Graph string may hold it) equals True.
        let word = text.trim();
        if either_bool && (word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false"))
        {
            Ok(bool_text(word.eq_ignore_ascii_case("true")).to_owned())
        } else {
            Ok(text)
        }
    };
    let (a, b) = (operand(left)?, operand(right)?);
    let ordering = match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(&b),
    };
    Ok(match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    })
}

/// The arguments of one call, evaluated on demand.
pub(super) struct Args<'a> {
    source: &'a dyn Source,
    nodes: &'a [Option<Node>],
    /// Where the call starts.
    pub pos: usize,
}

impl Args<'_> {
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether argument `i` was given (not omitted, not beyond the end).
    pub(super) fn present(&self, i: usize) -> bool {
        matches!(self.nodes.get(i), Some(Some(_)))
    }

    fn pos_of(&self, i: usize) -> usize {
        match self.nodes.get(i) {
            Some(Some(node)) => node.pos,
            _ => self.pos,
        }
    }

    /// Argument `i`; null when omitted.
    pub(super) fn value(&self, i: usize) -> Result<Value, Stop> {
        match self.nodes.get(i) {
            Some(Some(node)) => eval(node, self.source),
            _ => Ok(Value::Null),
        }
    }

    /// Argument `i` as compiled when the call was checked, if it is a pattern.
    pub(super) fn pattern(&self, i: usize) -> Option<&Pattern> {
        match self.nodes.get(i) {
            Some(Some(Node {
                kind: NodeKind::Pattern(pattern),
                ..
            })) => Some(pattern),
            _ => None,
        }
    }

    /// Argument `i` as one string; `None` when null or omitted.
    pub(super) fn text(&self, i: usize) -> Result<Option<String>, Stop> {
        self.value(i)?.into_text().map_err(|e| self.fail(e, i))
    }

    /// Argument `i` as a whole number.
    pub(super) fn number(&self, i: usize) -> Result<i64, Stop> {
        match self.value(i)? {
            Value::Str(s) => s.trim().parse().map_err(|_| {
                self.fail(
                    format!("expected a whole number, got \"{}\"", s.escape_debug()),
                    i,
                )
            }),
            Value::Null => Err(self.fail("expected a whole number, got null".into(), i)),
            Value::Bool(_) => Err(self.fail("expected a whole number, got a boolean".into(), i)),
            Value::List(items) => Err(self.fail(
                format!("expected a whole number, got a list of {}", items.len()),
                i,
            )),
        }
    }

    /// Argument `i` as a condition.
    pub(super) fn condition(&self, i: usize) -> Result<bool, Stop> {
        self.value(i)?.to_condition().map_err(|e| self.fail(e, i))
    }

    pub(super) fn fail(&self, message: String, i: usize) -> Stop {
        Stop::Fail(ExprError::evaluate(message, self.pos_of(i)))
    }

    /// Refuses to build a value of `bytes` bytes when that is over the limit.
    pub(super) fn fits(&self, bytes: usize) -> Result<(), Stop> {
        if bytes > MAX_VALUE_BYTES {
            Err(self.too_large())
        } else {
            Ok(())
        }
    }

    /// The error of a result over the limit.
    pub(super) fn too_large(&self) -> Stop {
        Stop::Fail(ExprError::evaluate(
            format!("result longer than {MAX_VALUE_BYTES} bytes"),
            self.pos,
        ))
    }
}
