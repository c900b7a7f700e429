//! The pure part of a batch: fold repeated entries, map each user, diff it against the
//! mirror.
//!
//! Graph may return the same user twice in one page (a later slice of changes); the mirror
//! can hold one row per user, so the entries are folded into the last one and the earlier
//! ones count as skipped. That keeps synced + skipped + failed equal to the entries seen.
//!
//! The tenant's policy adds what the bare mapping cannot know: the paths to clear ("clear
//! attributes") and the manager reference. The mirror records the manager by its Entra id;
//! Webex must get its Webex id, so the reference is resolved after the diff, and a manager
//! not in Webex yet is deferred (the user waits for it in `deferred_refs`), never a failure.
//! A user created before its manager is thus recorded right the first time; once the
//! manager is in Webex the reference alone is sent, and the mirror row is not written again.

use std::borrow::Cow;
use std::collections::HashMap;

use dirsync_proto::SourceUser;

use serde_json::Value;

use crate::diff::{Action, MirrorUser, Plan, SkipReason, diff};
use crate::map::{MANAGER, ScimAttributes, UserMapping, map_user_with};
use dirsync_proto::mapping::Mapping;

/// One entry of the batch with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// An earlier entry of a user that appears again later in the batch.
    Superseded {
        entra_id: String,
    },
    Plan {
        entra_id: String,
        plan: Plan,
    },
}

/// A tenant's mapping policy and what the batch knows about the users it refers to.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow_hard_delete: bool,
    /// "Clear attributes": a property that becomes null removes the Webex value.
    pub clear_attributes: bool,
    /// Webex ids of the users in Webex from dirsync, by Entra id, for the managers the
    /// batch names.
    pub managers: HashMap<String, String>,
    /// The tenant's own attribute mapping; `None`: the default mapping.
    pub mapping: Option<std::sync::Arc<Mapping>>,
}

/// A manager reference that cannot be applied yet: the manager is not in Webex. The user
/// is provisioned without it; a later pass applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub entra_id: String,
    pub manager_id: String,
}

/// Plans every entry of a batch with only the hard-delete policy (no clearing, no
/// managers known).
pub fn plan_batch(
    users: &[SourceUser],
    mirror: &HashMap<String, MirrorUser>,
    allow_hard_delete: bool,
) -> Vec<Planned> {
    let policy = Policy {
        allow_hard_delete,
        ..Policy::default()
    };
    plan_batch_with(users, mirror, &policy).0
}

/// Plans every entry of a batch (one item per input entry), and lists the manager
/// references it had to defer.
pub fn plan_batch_with(
    users: &[SourceUser],
    mirror: &HashMap<String, MirrorUser>,
    policy: &Policy,
) -> (Vec<Planned>, Vec<Deferred>) {
    let mut deferred = Vec::new();
    let mut last_index: HashMap<&str, usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        last_index.insert(user.id.as_str(), i);
    }
    let mut folded: HashMap<&str, SourceUser> = HashMap::new();
    let mut out = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        // Borrowed unless folded: no copy of every user's attributes (benches/pipeline.rs).
        let merged: Cow<'_, SourceUser> = match folded.remove(user.id.as_str()) {
            Some(earlier) => Cow::Owned(fold(earlier, user)),
            None => Cow::Borrowed(user),
        };
        if last_index.get(user.id.as_str()) != Some(&i) {
            folded.insert(user.id.as_str(), merged.into_owned());
            out.push(Planned::Superseded {
                entra_id: user.id.clone(),
            });
            continue;
        }
        let UserMapping {
            always: mut mapped,
            on_create,
            cleared,
            error,
        } = map_user_with(&merged, policy.mapping.as_deref(), policy.clear_attributes);
        if let Some(reason) = error {
            out.push(Planned::Plan {
                entra_id: user.id.clone(),
                plan: Plan::failed(reason, mapped),
            });
            continue;
        }
        if policy.clear_attributes && merged.removed.is_none() {
            for path in cleared {
                mapped.insert(path, Value::Null);
            }
        }
        let row = mirror.get(&user.id);
        if row.is_none() && merged.is_partial() {
            // A follow-up entry (a reference, a photo) for a user no longer mirrored:
            // nothing to create a user from, as for a tombstone of a user Webex lacks.
            out.push(Planned::Plan {
                entra_id: user.id.clone(),
                plan: Plan::skip(SkipReason::UnknownTombstone, mapped),
            });
            continue;
        }
        if row.is_none() {
            for (path, value) in on_create {
                mapped.entry(path).or_insert(value);
            }
        }
        if merged.removed.is_none() {
            let waits_for = row.and_then(|m| m.deferred_manager.as_deref());
            // The manager as the mirror records it, its Entra id: the entry's, or, when
            // the entry says nothing of it, the one the user still waits for. A follow-up
            // entry names the manager the user waited for when the pass read it: if the
            // user waits for another one now, a later batch has decided since.
            let manager = match merged.str_attr("manager") {
                Some(manager) if merged.is_partial() && waits_for != Some(manager) => None,
                Some(manager) => Some(manager),
                None if !merged.attributes.contains_key("manager") => waits_for,
                None => {
                    // Removed in Entra while Webex never got it: the mirror forgets it too
                    // (a PATCH `remove`), even without "clear attributes", so that mirror
                    // and Webex agree once the user stops waiting.
                    if waits_for.is_some() {
                        mapped.insert(MANAGER.to_string(), Value::Null);
                    }
                    None
                }
            };
            if let Some(manager) = manager {
                mapped.insert(MANAGER.to_string(), Value::String(manager.to_string()));
            }
        }
        let mut plan = diff(merged.removed, mapped, row, policy.allow_hard_delete);
        if let Some(manager_id) = resolve_manager(&mut plan, row, &policy.managers) {
            deferred.push(Deferred {
                entra_id: user.id.clone(),
                manager_id,
            });
        }
        out.push(Planned::Plan {
            entra_id: user.id.clone(),
            plan,
        });
    }
    (out, deferred)
}

/// Makes the plan's manager, an Entra id as the mirror records it, the Webex id Webex gets,
/// and decides whether this push sends it: with a create, with a change of manager, and
/// whenever the user waits for its manager (`deferred_refs`: Webex does not have it), even
/// if nothing else changed. A manager not in Webex yet is left out of what is sent (a patch
/// that had nothing else to send becomes a skip) and returned: the user waits for it.
/// `plan.json` is untouched: the mirror records the manager the user should have.
fn resolve_manager(
    plan: &mut Plan,
    row: Option<&MirrorUser>,
    webex_ids: &HashMap<String, String>,
) -> Option<String> {
    let waits_for = row.and_then(|m| m.deferred_manager.clone());
    let Some(Value::String(manager)) = plan.effective.get(MANAGER) else {
        // No manager now (removed, cleared): nothing to wait for.
        return None;
    };
    let manager = manager.clone();
    let webex_id = webex_ids.get(&manager).cloned();
    match &webex_id {
        Some(id) => plan
            .effective
            .insert(MANAGER.to_string(), Value::String(id.clone())),
        None => plan.effective.remove(MANAGER),
    };
    let send = match &plan.action {
        Action::Create => true,
        Action::Patch { changes, .. } => waits_for.is_some() || changes.contains_key(MANAGER),
        Action::Skip(SkipReason::Unchanged) => waits_for.is_some() && plan.active(),
        _ => false,
    };
    if !send {
        if matches!(plan.action, Action::Delete { .. }) {
            return None;
        }
        // A deactivated user keeps waiting (a restore sends the reference); a user patched
        // while its manager is not in Webex waits for it too, should the patch find the
        // user gone and create it again without one.
        let patched = matches!(plan.action, Action::Patch { .. }) && webex_id.is_none();
        return waits_for.or_else(|| patched.then_some(manager));
    }
    match (webex_id, &mut plan.action) {
        (Some(id), Action::Patch { changes, .. }) => {
            changes.insert(MANAGER.to_string(), Value::String(id));
        }
        (Some(id), Action::Skip(_)) => {
            let webex_id = row.map(|m| m.webex_id.clone()).unwrap_or_default();
            plan.action = Action::Patch {
                webex_id,
                changes: ScimAttributes::from([(MANAGER.to_string(), Value::String(id))]),
            };
        }
        (Some(_), _) => {}
        (None, Action::Patch { changes, .. }) => {
            changes.remove(MANAGER);
            if changes.is_empty() {
                plan.action = Action::Skip(SkipReason::Unchanged);
            }
            return Some(manager);
        }
        (None, _) => return Some(manager),
    }
    None
}

/// The managers (Entra ids) a batch refers to, to look up in the mirror: those its entries
/// name, and for a user whose entry names none, the one it waits for or has (a patch of a
/// user deleted in Webex re-creates it with its manager).
pub fn managers_named(users: &[SourceUser], mirror: &HashMap<String, MirrorUser>) -> Vec<String> {
    let mut ids: Vec<String> = users
        .iter()
        .filter_map(|u| {
            u.str_attr("manager").map(str::to_string).or_else(|| {
                let row = mirror.get(&u.id)?;
                row.deferred_manager.clone().or_else(|| {
                    row.attributes
                        .get(MANAGER)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
            })
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A later entry on top of an earlier one: a tombstone wins outright; otherwise the later
/// properties overlay the earlier ones (a later minimal entry lacks unchanged properties).
fn fold(earlier: SourceUser, later: &SourceUser) -> SourceUser {
    if later.removed.is_some() || earlier.removed.is_some() {
        return later.clone();
    }
    let mut attributes = earlier.attributes;
    for (k, v) in &later.attributes {
        attributes.insert(k.clone(), v.clone());
    }
    SourceUser {
        id: later.id.clone(),
        removed: None,
        attributes,
    }
}

impl Planned {
    pub fn entra_id(&self) -> &str {
        match self {
            Planned::Superseded { entra_id } | Planned::Plan { entra_id, .. } => entra_id,
        }
    }

    /// Why the entry needs no write, if it needs none.
    pub fn skip_reason(&self) -> Option<SkipReason> {
        match self {
            Planned::Superseded { .. } => Some(SkipReason::Superseded),
            Planned::Plan { plan, .. } => match plan.action {
                crate::diff::Action::Skip(reason) => Some(reason),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests;
