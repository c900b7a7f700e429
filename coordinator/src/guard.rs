//! The accidental-deletion guard and the pure rules around a run's deactivations.
//!
//! Entries that deactivate or delete (an `@removed` tombstone, `accountEnabled: false`) are
//! diverted from the pages while a run enumerates, together with every later entry of the
//! same user, so that the user's history is still applied in order. They are pushed after
//! every other batch, and only when [`judge`] allows it or an operator approved the run.
//! A full enumeration adds the users it did not see (reconciliation). An empty read of a
//! tenant that has active users is never taken as deletions ([`empty_read`]).

use std::collections::HashSet;

use dirsync_proto::SourceUser;

/// Default for `tenants.guard_max_count`: the default of Entra's own accidental-deletion
/// threshold (graph.md §5.12).
pub const DEFAULT_MAX_COUNT: u32 = 500;
/// Default for `tenants.guard_max_percent`, of the tenant's active mirrored users.
pub const DEFAULT_MAX_PERCENT: u32 = 10;
/// The percentage rule ignores runs that deactivate this many users or fewer: in a small
/// tenant a handful of leavers is ordinary churn, not an accident.
pub const PERCENT_FLOOR: u64 = 10;
/// Users per deactivation batch, as many as a Graph page holds.
pub const USERS_PER_BATCH: usize = 200;

/// A tenant's guard thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A run may deactivate or delete at most this many users.
    pub max_count: u32,
    /// ... and at most this percentage of the tenant's active mirrored users (above
    /// [`PERCENT_FLOOR`] users).
    pub max_percent: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_count: DEFAULT_MAX_COUNT,
            max_percent: DEFAULT_MAX_PERCENT,
        }
    }
}

/// What the guard says about a run's deactivations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// More users than `max_count`.
    HoldCount,
    /// A larger share of the active users than `max_percent`.
    HoldPercent,
}

impl Verdict {
    pub fn holds(self) -> bool {
        self != Verdict::Allow
    }

    /// Why the run is held, for operators.
    pub fn reason(self, t: Thresholds) -> String {
        match self {
            Verdict::Allow => "within the thresholds".into(),
            Verdict::HoldCount => format!("more than {} users", t.max_count),
            Verdict::HoldPercent => format!("more than {}% of the active users", t.max_percent),
        }
    }
}

/// Judges a run that would deactivate or delete `deactivations` of the tenant's `active`
/// mirrored users.
pub fn judge(t: Thresholds, deactivations: u64, active: u64) -> Verdict {
    if deactivations > u64::from(t.max_count) {
        return Verdict::HoldCount;
    }
    if deactivations > PERCENT_FLOOR
        && deactivations.saturating_mul(100) > u64::from(t.max_percent).saturating_mul(active)
    {
        return Verdict::HoldPercent;
    }
    Verdict::Allow
}

/// A full enumeration that returned no user at all while the mirror holds active users is a
/// failed read, not a tenant whose users all left.
pub fn empty_read(seen: u64, active: u64) -> bool {
    seen == 0 && active > 0
}

/// Whether the entry deactivates or deletes the user in Webex (if Webex has it).
pub fn deactivates(user: &SourceUser) -> bool {
    // A room's account is disabled in Entra by design; that does not make the room inactive.
    user.removed.is_some() || (user.bool_attr("accountEnabled") == Some(false) && !user.is_room())
}

/// What is left of an entry once its deactivation is rejected: nothing of a tombstone, and
/// a disabled user's other properties without `accountEnabled` (so `active` is not touched).
pub fn without_deactivation(mut user: SourceUser) -> Option<SourceUser> {
    if user.removed.is_some() {
        return None;
    }
    if user.bool_attr("accountEnabled") == Some(false) {
        user.attributes.remove("accountEnabled");
    }
    Some(user)
}

/// Splits a page into the entries published now and the diverted ones, with their position
/// in the page. `diverted` holds the users with an entry diverted earlier in the run and
/// gains the newly diverted ones: once a user is diverted, all its later entries are too.
pub fn divert(
    users: Vec<SourceUser>,
    diverted: &mut HashSet<String>,
) -> (Vec<SourceUser>, Vec<(usize, SourceUser)>) {
    let mut kept = Vec::with_capacity(users.len());
    let mut out = Vec::new();
    for (i, user) in users.into_iter().enumerate() {
        if diverted.contains(&user.id) || deactivates(&user) {
            diverted.insert(user.id.clone());
            out.push((i, user));
        } else {
            kept.push(user);
        }
    }
    (kept, out)
}

/// Cuts the diverted entries (in arrival order) into batches of at most `max_users` users,
/// each user's entries together and in order, so that one user is in one batch only.
pub fn chunk_by_user(entries: Vec<SourceUser>, max_users: usize) -> Vec<Vec<SourceUser>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_user: std::collections::HashMap<String, Vec<SourceUser>> = Default::default();
    for e in entries {
        by_user
            .entry(e.id.clone())
            .or_insert_with(|| {
                order.push(e.id.clone());
                Vec::new()
            })
            .push(e);
    }
    order
        .chunks(max_users.max(1))
        .map(|ids| {
            ids.iter()
                .flat_map(|id| by_user.remove(id).unwrap_or_default())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dirsync_proto::RemovedReason;
    use serde_json::json;

    fn user(id: &str, removed: Option<RemovedReason>, enabled: Option<bool>) -> SourceUser {
        let mut u = SourceUser {
            id: id.into(),
            removed,
            attributes: Default::default(),
        };
        if let Some(e) = enabled {
            u.attributes.insert("accountEnabled".into(), json!(e));
        }
        u
    }

    #[test]
    fn a_disabled_room_does_not_deactivate() {
        let mut room = user("r", None, Some(false));
        assert!(deactivates(&room));
        room.attributes
            .insert(dirsync_proto::ROOM_ATTRIBUTE.into(), json!(true));
        assert!(!deactivates(&room));
        room.removed = Some(RemovedReason::Changed);
        assert!(deactivates(&room), "a removed room is gone all the same");
    }

    #[test]
    fn judge_cases() {
        let t = Thresholds::default();
        // (thresholds, deactivations, active users, verdict)
        let cases = [
            (t, 0, 0, Verdict::Allow),
            (t, 0, 1_000, Verdict::Allow),
            (t, 100, 1_000, Verdict::Allow),
            (t, 101, 1_000, Verdict::HoldPercent),
            (t, 500, 100_000, Verdict::Allow),
            (t, 501, 100_000, Verdict::HoldCount),
            (t, 501, 1_000, Verdict::HoldCount),
            // at or under the floor the percentage does not count
            (t, 10, 20, Verdict::Allow),
            (t, 11, 20, Verdict::HoldPercent),
            // more deactivations than active users (e.g. disables of inactive ones)
            (t, 50, 0, Verdict::HoldPercent),
            (
                Thresholds {
                    max_count: 5,
                    max_percent: 100,
                },
                6,
                10,
                Verdict::HoldCount,
            ),
            (
                Thresholds {
                    max_count: 1_000,
                    max_percent: 100,
                },
                600,
                600,
                Verdict::Allow,
            ),
            (
                Thresholds {
                    max_count: 0,
                    max_percent: 0,
                },
                1,
                1_000,
                Verdict::HoldCount,
            ),
        ];
        for (i, (t, n, active, verdict)) in cases.into_iter().enumerate() {
            assert_eq!(judge(t, n, active), verdict, "case {i}: {n} of {active}");
            assert_eq!(judge(t, n, active).holds(), verdict != Verdict::Allow);
        }
    }

    #[test]
    fn a_rejected_deactivation_keeps_the_other_changes() {
        use dirsync_proto::RemovedReason;
        let user = |removed, attrs: serde_json::Value| SourceUser {
            id: "u".into(),
            removed,
            attributes: attrs.as_object().unwrap().clone(),
        };
        assert_eq!(
            without_deactivation(user(Some(RemovedReason::Changed), serde_json::json!({}))),
            None
        );
        assert_eq!(
            without_deactivation(user(Some(RemovedReason::Deleted), serde_json::json!({}))),
            None
        );
        let disabled = user(
            None,
            serde_json::json!({"accountEnabled": false, "displayName": "New"}),
        );
        assert_eq!(
            without_deactivation(disabled),
            Some(user(None, serde_json::json!({"displayName": "New"})))
        );
        let enabled = user(
            None,
            serde_json::json!({"accountEnabled": true, "displayName": "X"}),
        );
        assert_eq!(without_deactivation(enabled.clone()), Some(enabled));
    }

    #[test]
    fn empty_read_cases() {
        // (seen, active, empty read)
        for (seen, active, expected) in [(0, 0, false), (0, 3, true), (1, 3, false), (5, 0, false)]
        {
            assert_eq!(empty_read(seen, active), expected, "{seen} seen, {active}");
        }
    }

    #[test]
    fn deactivating_entries() {
        let cases = [
            (user("a", None, Some(true)), false),
            (user("a", None, None), false),
            (user("a", None, Some(false)), true),
            (user("a", Some(RemovedReason::Changed), None), true),
            (user("a", Some(RemovedReason::Deleted), None), true),
        ];
        for (u, expected) in cases {
            assert_eq!(deactivates(&u), expected, "{u:?}");
        }
    }

    #[test]
    fn a_diverted_user_takes_its_later_entries_along() {
        let mut diverted: HashSet<String> = ["old".to_string()].into();
        let page = vec![
            user("a", None, Some(true)),
            user("b", Some(RemovedReason::Changed), None),
            user("c", None, Some(false)),
            user("b", None, Some(true)),
            user("old", None, Some(true)),
            user("d", None, None),
        ];
        let (kept, out) = divert(page, &mut diverted);
        let kept: Vec<&str> = kept.iter().map(|u| u.id.as_str()).collect();
        let out: Vec<(usize, &str)> = out.iter().map(|(i, u)| (*i, u.id.as_str())).collect();
        assert_eq!(kept, ["a", "d"]);
        assert_eq!(out, [(1, "b"), (2, "c"), (3, "b"), (4, "old")]);
        let mut all: Vec<&String> = diverted.iter().collect();
        all.sort();
        assert_eq!(all, ["b", "c", "old"]);
        // a later page: "a" stays kept, "c" follows its diverted entry
        let (kept, out) = divert(
            vec![user("a", None, None), user("c", None, Some(true))],
            &mut diverted,
        );
        assert_eq!((kept.len(), out.len()), (1, 1));
        assert_eq!(out[0].1.id, "c");
    }

    #[test]
    fn chunks_keep_a_users_entries_together_and_in_order() {
        let e = |id: &str, enabled: bool| user(id, None, Some(enabled));
        let entries = vec![
            e("a", false),
            e("b", false),
            e("a", true),
            e("c", false),
            e("b", true),
            e("d", false),
            e("a", false),
        ];
        let chunks = chunk_by_user(entries, 2);
        let shape: Vec<Vec<(&str, Option<bool>)>> = chunks
            .iter()
            .map(|c| {
                c.iter()
                    .map(|u| (u.id.as_str(), u.bool_attr("accountEnabled")))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![
                    ("a", Some(false)),
                    ("a", Some(true)),
                    ("a", Some(false)),
                    ("b", Some(false)),
                    ("b", Some(true)),
                ],
                vec![("c", Some(false)), ("d", Some(false))],
            ]
        );
        assert!(chunk_by_user(vec![], 200).is_empty());
        assert_eq!(chunk_by_user(vec![e("x", false)], 0).len(), 1);
    }
}
