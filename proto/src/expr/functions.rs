//! The function table: each function's name, parameters (arity and kind), result kind and
//! evaluator, and the checks the parser makes on a call before accepting it.

use super::ast::{Node, NodeKind, Ty};
use super::builtins as b;
use super::error::ExprError;
use super::eval::Evaluator;
use super::pattern::{Pattern, PatternError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Append,
    CBool,
    Coalesce,
    CStr,
    Iif,
    IgnoreFlowIfNullOrEmpty,
    IsNull,
    IsNullOrEmpty,
    IsPresent,
    Item,
    Join,
    Left,
    Mid,
    NormalizeDiacritics,
    Not,
    PCase,
    Replace,
    Split,
    StripSpaces,
    Switch,
    ToLower,
    ToUpper,
    Word,
}

/// What an argument must be, checked on the parsed tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// One value (string, number, boolean), not a list.
    Text,
    /// A whole number; a string constant or a condition is refused.
    Number,
    /// True or false: a condition, `True`/`False`, a number, or a value known only at run time.
    Condition,
    /// Anything, lists included.
    Any,
}

#[derive(Debug)]
pub(super) struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

#[derive(Debug)]
pub(super) struct Spec {
    /// The canonical spelling; calls match it case-insensitively.
    pub name: &'static str,
    pub params: &'static [Param],
    /// For variadic functions: the group of parameters repeated after `params`, at least once.
    pub repeat: &'static [Param],
    pub returns: Ty,
    pub eval: Evaluator,
}

const fn req(name: &'static str, kind: Kind) -> Param {
    Param {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Param {
    Param {
        name,
        kind,
        required: false,
    }
}

use Kind::{Any, Condition, Number, Text};

macro_rules! spec {
    ($name:literal, [$($p:expr),*], [$($r:expr),*], $ret:ident, $eval:path) => {
        {
            const SPEC: Spec =
                Spec { name: $name, params: &[$($p),*], repeat: &[$($r),*], returns: Ty::$ret, eval: $eval };
            &SPEC
        }
    };
}

impl Func {
    pub(super) const ALL: [Func; 23] = [
        Func::Append,
        Func::CBool,
        Func::Coalesce,
        Func::CStr,
        Func::Iif,
        Func::IgnoreFlowIfNullOrEmpty,
        Func::IsNull,
        Func::IsNullOrEmpty,
        Func::IsPresent,
        Func::Item,
        Func::Join,
        Func::Left,
        Func::Mid,
        Func::NormalizeDiacritics,
        Func::Not,
        Func::PCase,
        Func::Replace,
        Func::Split,
        Func::StripSpaces,
        Func::Switch,
        Func::ToLower,
        Func::ToUpper,
        Func::Word,
    ];

    /// The function called `name`, in any case.
    pub(super) fn lookup(name: &str) -> Option<Func> {
        Self::ALL
            .into_iter()
            .find(|f| f.spec().name.eq_ignore_ascii_case(name))
    }

    pub(super) fn spec(self) -> &'static Spec {
        match self {
            Func::Append => spec!(
                "Append",
                [req("source", Text), req("suffix", Text)],
                [],
                Str,
                b::append
            ),
            Func::CBool => spec!("CBool", [req("expression", Condition)], [], Bool, b::cbool),
            Func::Coalesce => spec!("Coalesce", [], [req("source", Any)], Any, b::coalesce),
            Func::CStr => spec!("CStr", [req("value", Text)], [], Str, b::cstr),
            Func::Iif => spec!(
                "IIF",
                [
                    req("condition", Condition),
                    req("valueIfTrue", Any),
                    req("valueIfFalse", Any)
                ],
                [],
                Any,
                b::iif
            ),
            Func::IgnoreFlowIfNullOrEmpty => {
                spec!(
                    "IgnoreFlowIfNullOrEmpty",
                    [req("expression", Any)],
                    [],
                    Any,
                    b::ignore_flow
                )
            }
            Func::IsNull => spec!("IsNull", [req("expression", Any)], [], Bool, b::is_null),
            Func::IsNullOrEmpty => {
                spec!(
                    "IsNullOrEmpty",
                    [req("expression", Any)],
                    [],
                    Bool,
                    b::is_null_or_empty
                )
            }
            Func::IsPresent => spec!(
                "IsPresent",
                [req("expression", Any)],
                [],
                Bool,
                b::is_present
            ),
            Func::Item => spec!(
                "Item",
                [req("attribute", Any), req("index", Number)],
                [],
                Any,
                b::item
            ),
            Func::Join => spec!(
                "Join",
                [req("separator", Text)],
                [req("source", Any)],
                Str,
                b::join
            ),
            Func::Left => spec!(
                "Left",
                [req("string", Text), req("numChars", Number)],
                [],
                Str,
                b::left
            ),
            Func::Mid => spec!(
                "Mid",
                [
                    req("source", Text),
                    req("start", Number),
                    req("length", Number)
                ],
                [],
                Str,
                b::mid
            ),
            Func::NormalizeDiacritics => {
                spec!(
                    "NormalizeDiacritics",
                    [req("source", Text)],
                    [],
                    Str,
                    b::normalize_diacritics
                )
            }
            Func::Not => spec!("Not", [req("source", Condition)], [], Bool, b::not),
            Func::PCase => {
                spec!(
                    "PCase",
                    [req("source", Text), opt("wordSeparators", Text)],
                    [],
                    Str,
                    b::pcase
                )
            }
            Func::Replace => spec!(
                "Replace",
                [
                    req("source", Text),
                    opt("oldValue", Text),
                    opt("regexPattern", Text),
                    opt("regexGroupName", Text),
                    opt("replacementValue", Text),
                    opt("replacementAttributeName", Text),
                    opt("template", Text)
                ],
                [],
                Str,
                b::replace
            ),
            Func::Split => {
                spec!(
                    "Split",
                    [req("source", Text), req("delimiter", Text)],
                    [],
                    List,
                    b::split
                )
            }
            Func::StripSpaces => spec!(
                "StripSpaces",
                [req("source", Text)],
                [],
                Str,
                b::strip_spaces
            ),
            Func::Switch => spec!(
                "Switch",
                [req("source", Text), opt("defaultValue", Any)],
                [req("key", Text), req("value", Any)],
                Any,
                b::switch
            ),
            Func::ToLower => {
                spec!(
                    "ToLower",
                    [req("source", Text), opt("culture", Text)],
                    [],
                    Str,
                    b::to_lower
                )
            }
            Func::ToUpper => {
                spec!(
                    "ToUpper",
                    [req("source", Text), opt("culture", Text)],
                    [],
                    Str,
                    b::to_upper
                )
            }
            Func::Word => spec!(
                "Word",
                [
                    req("string", Text),
                    req("wordNumber", Number),
                    req("delimiters", Text)
                ],
                [],
                Str,
                b::word
            ),
        }
    }
}

/// A parsed call's arguments, each with the position it starts at (for an omitted one, the
/// position of the `,` or `)` that follows the gap).
pub(super) struct CallArgs<'a> {
    pub name_pos: usize,
    pub args: &'a [Option<Node>],
    pub positions: &'a [usize],
}

/// Refuses a call with the wrong number of arguments, a required one omitted, or an argument
/// of the wrong kind, so that a saved mapping cannot fail for these reasons later.
pub(super) fn check_call(func: Func, call: &CallArgs<'_>) -> Result<(), ExprError> {
    let spec = func.spec();
    check_arity(spec, call)?;
    for (i, arg) in call.args.iter().enumerate() {
        let param = param(spec, i);
        let pos = call.positions[i];
        match arg {
            None if param.required => {
                return Err(ExprError::parse(
                    format!("missing {} of {}", param.name, spec.name),
                    pos,
                ));
            }
            None => {}
            Some(node) => {
                if let Some(problem) = kind_problem(param.kind, node) {
                    return Err(ExprError::parse(
                        format!("{} of {} {problem}", param.name, spec.name),
                        pos,
                    ));
                }
            }
        }
    }
    check_constants(func, call)
}

fn param(spec: &Spec, i: usize) -> &'static Param {
    match spec.params.get(i) {
        Some(p) => p,
        None => &spec.repeat[(i - spec.params.len()) % spec.repeat.len()],
    }
}

fn check_arity(spec: &Spec, call: &CallArgs<'_>) -> Result<(), ExprError> {
    let n = call.args.len();
    let fixed = spec.params.len();
    let (ok, expected) = if spec.repeat.is_empty() {
        let min = spec
            .params
            .iter()
            .rposition(|p| p.required)
            .map_or(0, |i| i + 1);
        let expected = if min == fixed {
            format!("{min} argument{}", if min == 1 { "" } else { "s" })
        } else {
            format!("{min} to {fixed} arguments")
        };
        ((min..=fixed).contains(&n), expected)
    } else if spec.repeat.len() == 1 {
        let min = fixed + 1;
        (
            n >= min,
            format!("at least {min} argument{}", if min == 1 { "" } else { "s" }),
        )
    } else {
        let group = spec.repeat.len();
        let min = fixed + group;
        let ok = n >= min && (n - fixed).is_multiple_of(group);
        let fixed_names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
        let group_names: Vec<&str> = spec.repeat.iter().map(|p| p.name).collect();
        let expected = format!(
            "{}, then {} pairs ({min}, {}, ... arguments)",
            fixed_names.join(", "),
            group_names.join("/"),
            min + group
        );
        (ok, expected)
    };
    if ok {
        Ok(())
    } else {
        Err(ExprError::parse(
            format!("{} takes {expected}, got {n}", spec.name),
            call.name_pos,
        ))
    }
}

/// Why `node` cannot stand where `kind` is expected, if it cannot.
fn kind_problem(kind: Kind, node: &Node) -> Option<&'static str> {
    let ty = node.ty();
    match kind {
        Kind::Any => None,
        _ if ty == Ty::List => Some("must be one value, not a list"),
        Kind::Text => None,
        Kind::Number => match (&node.kind, ty) {
            (NodeKind::Str(_), _) | (_, Ty::Bool) => Some("must be a whole number"),
            _ => None,
        },
        Kind::Condition => match &node.kind {
            NodeKind::Str(s) if super::value::text_condition(s).is_none() => {
                Some("must be a condition (a comparison, True or False)")
            }
            _ => None,
        },
    }
}

/// Constant arguments whose value can be judged now.
fn check_constants(func: Func, call: &CallArgs<'_>) -> Result<(), ExprError> {
    let name = func.spec().name;
    let int = |i: usize| match call.args.get(i) {
        Some(Some(Node {
            kind: NodeKind::Int(n),
            ..
        })) => Some(*n),
        _ => None,
    };
    let empty_str = |i: usize| matches!(call.args.get(i), Some(Some(Node { kind: NodeKind::Str(s), .. })) if s.is_empty());
    let fail = |message: String, i: usize| Err(ExprError::parse(message, call.positions[i]));
    match func {
        Func::Item if int(1).is_some_and(|n| n < 1) => {
            fail(format!("index of {name} must be 1 or more"), 1)
        }
        Func::Mid if int(1).is_some_and(|n| n < 1) => {
            fail(format!("start of {name} must be 1 or more"), 1)
        }
        Func::Mid if int(2).is_some_and(|n| n < 0) => {
            fail(format!("length of {name} must not be negative"), 2)
        }
        Func::Split if empty_str(1) => fail(format!("delimiter of {name} must not be empty"), 1),
        Func::Replace => check_replace(call),
        _ => Ok(()),
    }
}

/// `Replace` has five forms, told apart by which arguments are given (Entra's reference):
/// oldValue + replacementValue, oldValue + template, regexPattern + replacementValue,
/// regexPattern + regexGroupName + replacementValue, and regexPattern + regexGroupName +
/// replacementAttributeName. Any other combination would be silently ignored by one of them,
/// so it is refused.
fn check_replace(call: &CallArgs<'_>) -> Result<(), ExprError> {
    let name = Func::Replace.spec().name;
    let arg = |i: usize| call.args.get(i).and_then(Option::as_ref);
    let present = |i: usize| arg(i).is_some();
    let constant = |i: usize| {
        matches!(
            arg(i),
            Some(Node {
                kind: NodeKind::Str(_),
                ..
            })
        )
    };
    let param = |i: usize| param(Func::Replace.spec(), i).name;
    let fail = |message: String, i: usize| Err(ExprError::parse(message, call.positions[i]));
    let needs = |message: String| Err(ExprError::parse(message, call.name_pos));
    match (present(1), present(2)) {
        (true, true) => fail(
            format!("{name} takes oldValue or regexPattern, not both"),
            2,
        ),
        (false, false) => needs(format!(
            "{name} needs oldValue (argument 2) or regexPattern (argument 3)"
        )),
        (true, false) => {
            for i in [3, 5] {
                if present(i) {
                    return fail(format!("{} of {name} needs regexPattern", param(i)), i);
                }
            }
            if matches!(arg(1), Some(Node { kind: NodeKind::Str(s), .. }) if s.is_empty()) {
                return fail(format!("oldValue of {name} must not be empty"), 1);
            }
            match (present(4), present(6)) {
                (true, true) => fail(
                    format!("{name} takes replacementValue or template, not both"),
                    6,
                ),
                (false, false) => needs(format!(
                    "{name} needs replacementValue (argument 5) or template (argument 7)"
                )),
                _ => Ok(()),
            }
        }
        (false, true) => {
            // Compiled once, when the mapping is saved: only a constant can be.
            for i in [2, 3] {
                if present(i) && !constant(i) {
                    return fail(
                        format!("{} of {name} must be a string constant", param(i)),
                        i,
                    );
                }
            }
            if present(6) {
                return fail(format!("template of {name} needs oldValue"), 6);
            }
            match (present(4), present(5)) {
                (true, true) => fail(
                    format!("{name} takes replacementValue or replacementAttributeName, not both"),
                    5,
                ),
                (false, false) => needs(format!(
                    "{name} with regexPattern needs replacementValue (argument 5) or \
                     replacementAttributeName (argument 6)"
                )),
                (false, true) if !present(3) => fail(
                    format!("replacementAttributeName of {name} needs regexGroupName"),
                    5,
                ),
                // A constant here is almost surely an attribute name written as a string
                // ("mobile" for [mobile]); it would be matched as text and silently give null.
                (false, true) if constant(5) => fail(
                    format!(
                        "replacementAttributeName of {name} must be an attribute or an \
                         expression, not a string constant"
                    ),
                    5,
                ),
                _ => Ok(()),
            }
        }
    }
}

/// Compiles `Replace`'s `regexPattern` (with the group `regexGroupName` names) in place of its
/// string constant, once, after [`check_call`] accepted the call. A pattern the `regex` crate
/// refuses, or a group name the pattern lacks, is a parse error at that argument.
pub(super) fn compile_patterns(
    func: Func,
    args: &mut [Option<Node>],
    positions: &[usize],
) -> Result<(), ExprError> {
    if func != Func::Replace {
        return Ok(());
    }
    let text = |node: Option<&Option<Node>>| match node {
        Some(Some(Node {
            kind: NodeKind::Str(s),
            ..
        })) => Some(s.clone()),
        _ => None,
    };
    let Some(pattern_text) = text(args.get(2)) else {
        return Ok(());
    };
    let group = text(args.get(3));
    let pattern = Pattern::compile(&pattern_text, group.as_deref()).map_err(|e| match e {
        PatternError::Invalid(reason) => ExprError::parse(
            format!("regexPattern of Replace is not a valid regular expression: {reason}"),
            positions[2],
        ),
        PatternError::NoSuchGroup => ExprError::parse(
            format!(
                "regexGroupName of Replace names no group of regexPattern: \"{}\"",
                group.as_deref().unwrap_or_default().escape_debug()
            ),
            positions[3],
        ),
    })?;
    if let Some(Some(node)) = args.get_mut(2) {
        node.kind = NodeKind::Pattern(Box::new(pattern));
    }
    Ok(())
}
