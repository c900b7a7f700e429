//! SCIM PATCH on a group (webex-scim.md §7.3, RFC 7644 §3.5.2): operations on `members` act
//! on the member set; every other operation goes to the user PATCH engine (`patch.rs`) on the
//! group's JSON object, so `displayName`, `externalId` and the Cisco extension behave as user
//! attributes do.
//!
//! - `op` in any case (Entra sends `Add`, `Replace`, `Remove`); operations apply in order and
//!   the first error fails the request with nothing changed: member changes are collected in a
//!   [`MemberChanges`] the caller commits only on success, so a 250,000-member set is never
//!   copied to make a PATCH atomic.
//! - Add: `{"op":"add","path":"members","value":[{"value":"<user id>","type":"user"}]}`. Every
//!   value must be a user of the org (else 400); ids already members are ignored.
//! - Remove, Entra's form: `{"op":"remove","path":"members","value":[{"value":"<id>"}]}`;
//!   values that are not members are ignored, as for a user's multi-valued attributes.
//! - Remove, RFC form: `{"op":"remove","path":"members[value eq \"<id>\"]"}`, several
//!   `value eq` joined by `or` allowed; when none is a member → 400 `noTarget` (RFC 7644
//!   §3.5.2: a filter that yields no match).
//! - `remove` of `members` without a value empties the group; `replace` of `members` sets it.
//! - At most 500 member values per operation and 250,000 members per group (400 otherwise).
//! - Without `path`, `add`/`replace` take an object whose keys are paths:
//!   `{"op":"replace","value":{"displayName":"…","members":[…]}}`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::{ScimError, ScimType};
use super::filter::{AttrPath, parse_path};
use super::group_filter::{is_members, value_terms};
use super::group_schema::{
    GROUP_SIZE_MAX, MEMBERS_PER_OPERATION_MAX, member_ids, parse_user_id, removed_ids,
};
use super::patch::{self, OpKind, PatchOperation};

fn bad_path(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidPath, detail)
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

/// Member changes of one PATCH, kept beside the untouched member set (`base`) until commit.
///
/// Invariants: `removed` holds only members of `base` (and is empty once `cleared`); `added`
/// holds no id that is still a member through `base`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemberChanges {
    cleared: bool,
    added: BTreeSet<Uuid>,
    removed: BTreeSet<Uuid>,
}

impl MemberChanges {
    /// Is `id` a member once these changes apply?
    pub fn contains(&self, base: &BTreeSet<Uuid>, id: &Uuid) -> bool {
        self.added.contains(id)
            || (!self.cleared && !self.removed.contains(id) && base.contains(id))
    }

    pub fn add(&mut self, base: &BTreeSet<Uuid>, id: Uuid) {
        if self.contains(base, &id) {
            return;
        }
        // A member of `base` removed earlier in the same PATCH comes back.
        if !self.removed.remove(&id) {
            self.added.insert(id);
        }
    }

    /// Removes `id`; false when it was no member.
    pub fn remove(&mut self, base: &BTreeSet<Uuid>, id: &Uuid) -> bool {
        if self.added.remove(id) {
            return true;
        }
        !self.cleared && base.contains(id) && self.removed.insert(*id)
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        self.cleared = true;
        self.added.clear();
        self.removed.clear();
    }

    /// The number of members once these changes apply.
    pub fn len(&self, base: &BTreeSet<Uuid>) -> usize {
        let kept = if self.cleared {
            0
        } else {
            base.len() - self.removed.len()
        };
        kept + self.added.len()
    }

    pub fn commit(self, base: &mut BTreeSet<Uuid>) {
        if self.cleared {
            base.clear();
        }
        for id in &self.removed {
            base.remove(id);
        }
        base.extend(self.added);
    }
}

/// Applies `ops` in order: attribute operations to `resource` (a copy the caller discards on
/// error), member operations to the returned changes of `members`. `is_user` says whether an
/// id is a user of the org.
pub fn apply(
    resource: &mut Map<String, Value>,
    members: &BTreeSet<Uuid>,
    ops: &[PatchOperation],
    is_user: &dyn Fn(&Uuid) -> bool,
) -> Result<MemberChanges, ScimError> {
    let mut changes = MemberChanges::default();
    for op in ops {
        match (&op.path, op.op, &op.value) {
            (Some(path), kind, value) if is_members(path) => {
                member_op(&mut changes, members, kind, path, value.as_ref(), is_user)?
            }
            (None, OpKind::Add | OpKind::Replace, Some(Value::Object(value))) => {
                for (key, v) in value {
                    let path =
                        parse_path(key).map_err(|e| bad_path(format!("value key {key:?}: {e}")))?;
                    if is_members(&path) {
                        member_op(&mut changes, members, op.op, &path, Some(v), is_user)?;
                    } else {
                        let one = PatchOperation {
                            op: op.op,
                            path: Some(std::sync::Arc::new(path)),
                            value: Some(v.clone()),
                        };
                        patch::apply(resource, std::slice::from_ref(&one))?;
                    }
                }
            }
            // Everything else, errors of path-less operations included, is the user engine's.
            _ => patch::apply(resource, std::slice::from_ref(op))?,
        }
    }
    let size = changes.len(members);
    if size > GROUP_SIZE_MAX {
        return Err(invalid(format!(
            "a group holds at most {GROUP_SIZE_MAX} members; this would make it {size}"
        )));
    }
    Ok(changes)
}

fn member_op(
    changes: &mut MemberChanges,
    base: &BTreeSet<Uuid>,
    kind: OpKind,
    path: &AttrPath,
    value: Option<&Value>,
    is_user: &dyn Fn(&Uuid) -> bool,
) -> Result<(), ScimError> {
    if path.segments.len() != 1 || path.sub.is_some() {
        return Err(bad_path(
            "members can be targeted only as members or members[value eq \"…\"]",
        ));
    }
    match (path.filter.as_deref(), kind) {
        (None, OpKind::Add | OpKind::Replace) => {
            let value = value.ok_or_else(|| invalid("add and replace need a value"))?;
            let ids = member_ids(value, is_user)?;
            if kind == OpKind::Replace {
                changes.clear();
            }
            for id in ids {
                changes.add(base, id);
            }
        }
        (None, OpKind::Remove) => match value {
            None | Some(Value::Null) => changes.clear(),
            Some(v) => {
                for id in removed_ids(v)? {
                    changes.remove(base, &id);
                }
            }
        },
        (Some(filter), OpKind::Remove) => {
            let values = value_terms(filter).ok_or_else(|| {
                bad_path("a members filter must be value eq \"…\" terms joined by or")
            })?;
            if values.len() > MEMBERS_PER_OPERATION_MAX {
                return Err(invalid(format!(
                    "at most {MEMBERS_PER_OPERATION_MAX} members per operation, got {}",
                    values.len()
                )));
            }
            let mut any = false;
            for v in values {
                if let Some(id) = parse_user_id(v) {
                    any |= changes.remove(base, &id);
                }
            }
            if !any {
                return Err(ScimError::bad(
                    ScimType::NoTarget,
                    "no member matches members[…]",
                ));
            }
        }
        (Some(_), OpKind::Add | OpKind::Replace) => {
            return Err(bad_path(
                "add and replace take the path members, without a filter",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "group_patch_tests.rs"]
mod tests;
