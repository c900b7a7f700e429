//! SCIM PATCH (RFC 7644 §3.5.2) on a user's JSON object, as webex-scim.md §5.5 describes it:
//! `op` in any case, ops applied in order, stop at the first error. The caller applies the ops
//! to a copy and commits only on success, which makes a PATCH atomic.
//!
//! Choices where the RFC and Webex leave room:
//! - `replace`/`remove` through a value filter that selects nothing → 400 `noTarget` (also for
//!   `emails[type eq "work"].value`); `add` through such a filter creates the element from the
//!   filter's `eq` terms (`{"type":"work","value":…}`), which is how Entra adds a new phone.
//! - `replace` of an absent attribute adds it; `remove` of an absent plain attribute is a no-op.
//! - `replace`/`add` of a complex single-valued attribute merges sub-attributes (RFC);
//!   `replace` of a multi-valued attribute without a filter replaces the whole list.
//! - A `null` value on `add`/`replace` removes the target.
//! - Targets `id`, `meta`, `groups` → 400 `mutability`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::{ScimError, ScimType};
use super::eval::matches;
use super::filter::{AttrPath, CompareOp, Filter, Literal, SyntaxError, parse_path};
use super::json::{get_ci, get_mut_ci, key_ci, remove_ci, set_ci};
use super::schema::{PATCH_OP, READ_ONLY, is_multi_valued};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Replace,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: OpKind,
    /// Shared with [`cached_path`]'s cache: a client sends the same few paths in every PATCH.
    pub path: Option<Arc<AttrPath>>,
    pub value: Option<Value>,
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidSyntax, detail)
}

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::NoTarget, detail)
}

fn bad_path(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidPath, detail)
}

/// Parses a PatchOp request body into its operations.
pub fn parse_request(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    operations(body)?
        .iter()
        .map(|op| parse_operation(op, |op| get_ci(op, "value").cloned()))
        .collect()
}

/// [`parse_request`] on a body the caller gives up: the values move into the operations
/// instead of being copied (a user PATCH's values can be whole lists).
pub fn parse_owned(mut body: Value) -> Result<Vec<PatchOperation>, ScimError> {
    operations(&body)?;
    let Some(Value::Array(ops)) = body
        .as_object_mut()
        .and_then(|b| get_mut_ci(b, "Operations"))
    else {
        unreachable!("operations() found the Operations array");
    };
    std::mem::take(ops)
        .into_iter()
        .map(|mut op| {
            let value = op.as_object_mut().and_then(|o| remove_ci(o, "value"));
            parse_operation(&op, |_| value)
        })
        .collect()
}

/// The operations of a PatchOp body, once its `schemas` are checked.
fn operations(body: &Value) -> Result<&Vec<Value>, ScimError> {
    let Value::Object(body) = body else {
        return Err(syntax("a PatchOp body must be a JSON object"));
    };
    let has_schema = get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP)))
        });
    if !has_schema {
        return Err(syntax(format!("schemas must contain {PATCH_OP}")));
    }
    let Some(Value::Array(ops)) = get_ci(body, "Operations") else {
        return Err(syntax("Operations must be an array"));
    };
    Ok(ops)
}

/// One operation; `value` gives its `value` once `op` and `path` are known to be good.
fn parse_operation(
    op: &Value,
    value: impl FnOnce(&Map<String, Value>) -> Option<Value>,
) -> Result<PatchOperation, ScimError> {
    let Value::Object(op) = op else {
        return Err(syntax("each operation must be an object"));
    };
    let kind = match get_ci(op, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => OpKind::Add,
        Some("replace") => OpKind::Replace,
        Some("remove") => OpKind::Remove,
        other => {
            return Err(syntax(format!(
                "op must be add, replace or remove, got {other:?}"
            )));
        }
    };
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            Some(cached_path(p).map_err(|e| bad_path(format!("path {p:?}: {e}")))?)
        }
        Some(_) => return Err(bad_path("path must be a string")),
    };
    Ok(PatchOperation {
        op: kind,
        path,
        value: value(op),
    })
}

/// Most paths [`cached_path`] keeps per thread; past that it starts over, so a client sending
/// ever new paths costs bounded memory.
const PATH_CACHE_MAX: usize = 1024;

thread_local! {
    static PATHS: RefCell<HashMap<Box<str>, Arc<AttrPath>>> = RefCell::new(HashMap::new());
}

/// [`parse_path`], remembered: parsing a path (lexing, filter) cost more than applying it.
/// Only good paths are kept; a bad one is parsed again, so its error is the same every time.
pub fn cached_path(input: &str) -> Result<Arc<AttrPath>, SyntaxError> {
    if let Some(path) = PATHS.with_borrow(|paths| paths.get(input).cloned()) {
        return Ok(path);
    }
    let path = Arc::new(parse_path(input)?);
    PATHS.with_borrow_mut(|paths| {
        if paths.len() >= PATH_CACHE_MAX {
            paths.clear();
        }
        paths.insert(input.into(), path.clone());
    });
    Ok(path)
}

/// Applies `ops` in order to `resource`; stops at the first error (the caller discards the copy).
pub fn apply(resource: &mut Map<String, Value>, ops: &[PatchOperation]) -> Result<(), ScimError> {
    apply_owned(resource, ops.to_vec())
}

/// [`apply`] with operations the caller gives up: their values move into the resource.
pub fn apply_owned(
    resource: &mut Map<String, Value>,
    ops: Vec<PatchOperation>,
) -> Result<(), ScimError> {
    for op in ops {
        apply_one(resource, op)?;
    }
    Ok(())
}

fn apply_one(resource: &mut Map<String, Value>, op: PatchOperation) -> Result<(), ScimError> {
    let PatchOperation { op, path, value } = op;
    match (path, op) {
        (Some(path), kind) => apply_path(resource, kind, &path, value),
        (None, OpKind::Remove) => Err(no_target("remove needs a path")),
        (None, kind) => {
            let Some(Value::Object(value)) = value else {
                return Err(ScimError::bad(
                    ScimType::InvalidValue,
                    "an operation without path needs an object value",
                ));
            };
            // Keys are attribute paths: `{"name": {…}}` (RFC) or `{"name.givenName": "…"}` (Entra).
            for (key, v) in value {
                let path =
                    cached_path(&key).map_err(|e| bad_path(format!("value key {key:?}: {e}")))?;
                apply_path(resource, kind, &path, Some(v))?;
            }
            Ok(())
        }
    }
}

fn apply_path(
    resource: &mut Map<String, Value>,
    kind: OpKind,
    path: &AttrPath,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if let Some(first) = path.segments.first()
        && READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(first))
    {
        return Err(ScimError::bad(
            ScimType::Mutability,
            format!("{first} is read-only"),
        ));
    }
    let kind = match (kind, &value) {
        (OpKind::Remove, _) => OpKind::Remove,
        (_, None) => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "add and replace need a value",
            ));
        }
        (_, Some(Value::Null)) => OpKind::Remove,
        (k, Some(_)) => k,
    };
    let value = if kind == OpKind::Remove {
        value.filter(|v| !v.is_null())
    } else {
        value
    };
    walk(resource, &path.segments, path, kind, value)
}

/// Descends `segments` (creating objects for add/replace) and acts on the last one. A
/// multi-valued attribute met on the way applies the rest to each of its elements.
fn walk(
    obj: &mut Map<String, Value>,
    segs: &[String],
    path: &AttrPath,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let Some((key, rest)) = segs.split_first() else {
        return Err(bad_path("empty path"));
    };
    if rest.is_empty() {
        return act(obj, key, path, kind, value);
    }
    if get_ci(obj, key).is_none_or(Value::is_null) {
        if kind == OpKind::Remove && path.filter.is_none() {
            return Ok(());
        }
        if kind == OpKind::Remove || is_multi_valued(key) {
            return Err(no_target(format!("{key} is not set")));
        }
        set_ci(obj, key, Value::Object(Map::new()));
    }
    match get_mut_ci(obj, key) {
        Some(Value::Object(inner)) => {
            walk(inner, rest, path, kind, value)?;
            if kind == OpKind::Remove && inner.is_empty() {
                remove_ci(obj, key);
            }
            Ok(())
        }
        Some(Value::Array(items)) => {
            let mut any = false;
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                any = true;
                walk(item, rest, path, kind, value.clone())?;
            }
            if any {
                Ok(())
            } else {
                Err(no_target(format!("{key} has no values")))
            }
        }
        _ => Err(bad_path(format!("{key} has no sub-attributes"))),
    }
}

fn act(
    obj: &mut Map<String, Value>,
    key: &str,
    path: &AttrPath,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if let Some(filter) = &path.filter {
        return act_filtered(obj, key, filter, path.sub.as_deref(), kind, value);
    }
    let multi = is_multi_valued(key);
    match kind {
        OpKind::Remove => {
            match (get_mut_ci(obj, key), value) {
                // Entra's form: remove the listed values from a multi-valued attribute.
                (Some(Value::Array(items)), Some(v)) => {
                    let gone = as_list(v);
                    items.retain(|item| !gone.iter().any(|g| same_value(item, g)));
                    if items.is_empty() {
                        remove_ci(obj, key);
                    }
                }
                _ => {
                    remove_ci(obj, key);
                }
            }
            Ok(())
        }
        OpKind::Add | OpKind::Replace => {
            let value = value.unwrap_or(Value::Null);
            match (get_mut_ci(obj, key), value) {
                (Some(Value::Array(items)), v) if kind == OpKind::Add => {
                    for new in as_list(v) {
                        if !items.contains(&new) {
                            items.push(new);
                        }
                    }
                }
                (Some(Value::Object(existing)), Value::Object(new)) => {
                    for (k, v) in new {
                        set_ci(existing, &k, v);
                    }
                }
                (_, v) => {
                    let v = if multi { Value::Array(as_list(v)) } else { v };
                    set_ci(obj, key, v);
                }
            }
            Ok(())
        }
    }
}

fn act_filtered(
    obj: &mut Map<String, Value>,
    key: &str,
    filter: &Filter,
    sub: Option<&str>,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let target = match sub {
        Some(s) => format!("{key}[…].{s}"),
        None => format!("{key}[…]"),
    };
    if key_ci(obj, key).is_none() || get_ci(obj, key) == Some(&Value::Null) {
        set_ci(obj, key, Value::Array(Vec::new()));
    }
    let Some(Value::Array(items)) = get_mut_ci(obj, key) else {
        return Err(bad_path(format!("{key} is not multi-valued")));
    };
    let hits: Vec<usize> = (0..items.len())
        .filter(|&i| matches(filter, &items[i]))
        .collect();
    let result = if hits.is_empty() {
        match kind {
            OpKind::Add => create_element(filter, sub, value).map(|e| items.push(e)),
            OpKind::Replace | OpKind::Remove => {
                Err(no_target(format!("no value matches {target}")))
            }
        }
    } else {
        for &i in hits.iter().rev() {
            let Some(item) = items.get_mut(i) else {
                continue;
            };
            match (kind, sub) {
                (OpKind::Remove, None) => {
                    items.remove(i);
                }
                (OpKind::Remove, Some(s)) => {
                    if let Some(o) = item.as_object_mut() {
                        remove_ci(o, s);
                    }
                }
                (OpKind::Replace, None) => *item = value.clone().unwrap_or(Value::Null),
                (OpKind::Add, None) => match (item.as_object_mut(), &value) {
                    (Some(o), Some(Value::Object(new))) => {
                        for (k, v) in new {
                            set_ci(o, k, v.clone());
                        }
                    }
                    _ => {
                        return Err(ScimError::bad(
                            ScimType::InvalidValue,
                            format!("{target} needs an object value"),
                        ));
                    }
                },
                (OpKind::Add | OpKind::Replace, Some(s)) => match item.as_object_mut() {
                    Some(o) => set_ci(o, s, value.clone().unwrap_or(Value::Null)),
                    None => return Err(bad_path(format!("{key} values have no sub-attributes"))),
                },
            }
        }
        Ok(())
    };
    if items.is_empty() {
        remove_ci(obj, key);
    }
    result
}

/// The element an `add` through an unmatched filter creates: the filter's `eq` terms plus the
/// value (at `sub`, or merged when it is an object).
fn create_element(
    filter: &Filter,
    sub: Option<&str>,
    value: Option<Value>,
) -> Result<Value, ScimError> {
    let mut element = Map::new();
    if !collect_eqs(filter, &mut element) {
        return Err(no_target(
            "no value matches the filter, and it is not a conjunction of eq terms",
        ));
    }
    match (sub, value) {
        (Some(s), Some(v)) => set_ci(&mut element, s, v),
        (None, Some(Value::Object(v))) => {
            for (k, v) in v {
                set_ci(&mut element, &k, v);
            }
        }
        _ => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "cannot build a value from this operation",
            ));
        }
    }
    Ok(Value::Object(element))
}

fn collect_eqs(filter: &Filter, out: &mut Map<String, Value>) -> bool {
    match filter {
        Filter::And(a, b) => collect_eqs(a, out) && collect_eqs(b, out),
        Filter::Compare(p, CompareOp::Eq, lit) if p.segments.len() == 1 && p.filter.is_none() => {
            let v = match lit {
                Literal::String(s) => Value::String(s.clone()),
                Literal::Bool(b) => Value::Bool(*b),
                Literal::Number(n) => {
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                }
                Literal::Null => return false,
            };
            set_ci(out, &p.segments[0], v);
            true
        }
        _ => false,
    }
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Two values of a multi-valued attribute are the same when their `value` sub-attributes are.
fn same_value(a: &Value, b: &Value) -> bool {
    let key = |v: &Value| match v {
        Value::Object(o) => get_ci(o, "value").cloned(),
        other => Some(other.clone()),
    };
    match (key(a), key(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
