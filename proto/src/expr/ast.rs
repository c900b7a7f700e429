//! The parsed form of an expression: a tree of nodes, each remembering where it started.

use std::fmt;

use super::functions::Func;
use super::lexer::CmpOp;
use super::pattern::Pattern;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    /// 0-based character position of the node's first token, for evaluation errors.
    pub pos: usize,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum NodeKind {
    Str(String),
    Int(i64),
    Bool(bool),
    Attr(String),
    /// A string constant compiled as `Replace`'s `regexPattern` when the call was checked, so
    /// that evaluation never compiles; it still reads as the constant it was written as.
    Pattern(Box<Pattern>),
    Compare {
        op: CmpOp,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `None` is an omitted optional argument (`Replace([mail], "x", , , "", , )`).
    Call {
        func: Func,
        args: Vec<Option<Node>>,
    },
}

/// What a node yields, as far as the parser can tell, to reject misplaced arguments early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Str,
    Int,
    Bool,
    List,
    /// Decided by the data: attributes and functions returning one of their arguments.
    Any,
}

impl Node {
    pub(super) fn ty(&self) -> Ty {
        match &self.kind {
            NodeKind::Str(_) | NodeKind::Pattern(_) => Ty::Str,
            NodeKind::Int(_) => Ty::Int,
            NodeKind::Bool(_) | NodeKind::Compare { .. } => Ty::Bool,
            NodeKind::Attr(_) => Ty::Any,
            NodeKind::Call { func, .. } => func.spec().returns,
        }
    }

    /// Calls `visit` on every attribute name, in text order.
    pub(super) fn attributes<'a>(&'a self, visit: &mut impl FnMut(&'a str)) {
        match &self.kind {
            NodeKind::Attr(name) => visit(name),
            NodeKind::Compare { left, right, .. } => {
                left.attributes(visit);
                right.attributes(visit);
            }
            NodeKind::Call { args, .. } => {
                for arg in args.iter().flatten() {
                    arg.attributes(visit);
                }
            }
            NodeKind::Str(_) | NodeKind::Pattern(_) | NodeKind::Int(_) | NodeKind::Bool(_) => {}
        }
    }
}

/// The canonical text of a node: parsing it gives the same tree (but for positions).
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NodeKind::Str(s) => write_constant(f, s),
            NodeKind::Pattern(pattern) => write_constant(f, pattern.text()),
            NodeKind::Int(n) => write!(f, "{n}"),
            NodeKind::Bool(b) => f.write_str(super::value::bool_text(*b)),
            NodeKind::Attr(name) => write!(f, "[{name}]"),
            NodeKind::Compare { op, left, right } => write!(f, "{left} {} {right}", op.symbol()),
            NodeKind::Call { func, args } => {
                write!(f, "{}(", func.spec().name)?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(arg) = arg {
                        write!(f, "{arg}")?;
                    }
                }
                f.write_str(")")
            }
        }
    }
}

/// A string constant as written in an expression: quoted, `"` and `\\` escaped.
fn write_constant(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}
