//! The pure part of a batch: fold repeated entries, map each user, diff it against the
//! mirror.
//!
//! Graph may return the same user twice in one page (a later slice of changes); the mirror
//! can hold one row per user, so the entries are folded into the last one and the earlier
//! ones count as skipped. That keeps synced + skipped + failed equal to the entries seen.

use std::collections::HashMap;

use dirsync_proto::SourceUser;

use crate::diff::{MirrorUser, Plan, SkipReason, diff};
use crate::map::map_user;

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

/// Plans every entry of a batch. The output has one item per input entry.
pub fn plan_batch(
    users: &[SourceUser],
    mirror: &HashMap<String, MirrorUser>,
    allow_hard_delete: bool,
) -> Vec<Planned> {
    let mut last_index: HashMap<&str, usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        last_index.insert(user.id.as_str(), i);
    }
    let mut folded: HashMap<&str, SourceUser> = HashMap::new();
    let mut out = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        let merged = match folded.remove(user.id.as_str()) {
            Some(earlier) => fold(earlier, user),
            None => user.clone(),
        };
        if last_index.get(user.id.as_str()) != Some(&i) {
            folded.insert(user.id.as_str(), merged);
            out.push(Planned::Superseded {
                entra_id: user.id.clone(),
            });
            continue;
        }
        let plan = diff(
            merged.removed,
            map_user(&merged),
            mirror.get(&user.id),
            allow_hard_delete,
        );
        out.push(Planned::Plan {
            entra_id: user.id.clone(),
            plan,
        });
    }
    out
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
mod tests {
    use super::*;
    use crate::diff::Action;
    use dirsync_proto::RemovedReason;
    use serde_json::{Value, json};

    fn user(id: &str, removed: Option<RemovedReason>, v: Value) -> SourceUser {
        SourceUser {
            id: id.into(),
            removed,
            attributes: v.as_object().cloned().unwrap_or_default(),
        }
    }

    fn action(p: &Planned) -> Option<&Action> {
        match p {
            Planned::Plan { plan, .. } => Some(&plan.action),
            Planned::Superseded { .. } => None,
        }
    }

    #[test]
    fn one_output_per_entry_and_repeats_are_folded() {
        let users = vec![
            user(
                "a",
                None,
                json!({"userPrincipalName": "a@x.com", "displayName": "A", "accountEnabled": true}),
            ),
            user(
                "b",
                None,
                json!({"userPrincipalName": "b@x.com", "accountEnabled": true}),
            ),
            user("a", None, json!({"displayName": "A2"})),
            user(
                "c",
                None,
                json!({"userPrincipalName": "c@x.com", "accountEnabled": true}),
            ),
            user("c", Some(RemovedReason::Changed), json!({})),
        ];
        let planned = plan_batch(&users, &HashMap::new(), true);
        assert_eq!(planned.len(), users.len());
        let ids: Vec<&str> = planned.iter().map(Planned::entra_id).collect();
        assert_eq!(ids, ["a", "b", "a", "c", "c"]);
        assert_eq!(
            planned[0],
            Planned::Superseded {
                entra_id: "a".into()
            }
        );
        assert_eq!(planned[3].skip_reason(), Some(SkipReason::Superseded));
        // the folded "a" keeps the earlier userName and takes the later displayName
        let Planned::Plan { plan, .. } = &planned[2] else {
            panic!()
        };
        assert_eq!(plan.action, Action::Create);
        assert_eq!(plan.effective.get("userName"), Some(&json!("a@x.com")));
        assert_eq!(plan.effective.get("displayName"), Some(&json!("A2")));
        assert_eq!(action(&planned[1]), Some(&Action::Create));
        // created then soft-deleted within the page: an unknown tombstone
        assert_eq!(planned[4].skip_reason(), Some(SkipReason::UnknownTombstone));
    }

    #[test]
    fn fold_cases() {
        let full = user("a", None, json!({"displayName": "A", "surname": "S"}));
        let cases = vec![
            (
                "minimal overlays full",
                full.clone(),
                user("a", None, json!({"surname": null})),
                user("a", None, json!({"displayName": "A", "surname": null})),
            ),
            (
                "tombstone wins",
                full.clone(),
                user("a", Some(RemovedReason::Deleted), json!({})),
                user("a", Some(RemovedReason::Deleted), json!({})),
            ),
            (
                "restore after tombstone starts over",
                user("a", Some(RemovedReason::Changed), json!({})),
                user("a", None, json!({"accountEnabled": true})),
                user("a", None, json!({"accountEnabled": true})),
            ),
        ];
        for (name, earlier, later, expected) in cases {
            assert_eq!(fold(earlier, &later), expected, "case {name}");
        }
    }
}
