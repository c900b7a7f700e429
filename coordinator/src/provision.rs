//! Provision on demand: one user pushed to Webex now, outside the cycle, with its result.
//!
//! The user is read from Graph (by object id or user principal name, [`crate::graph::user`])
//! and judged against the tenant's scope as a run would ([`precheck`]): out of the scope, or
//! disabled and never in Webex, it is skipped without a batch. Otherwise it becomes a
//! one-user [`BatchMessage`] of a run of its own (kind `on_demand`, so that `batch_results`,
//! `failed_objects` and `escrow` have their `runs` row) on the **priority lane**
//! ([`dirsync_proto::Topology::priority_queue`]), which workers consume beside the batch
//! queue: it never waits behind a running cycle's batches. The worker takes it through the
//! very pipeline of a run's batch (map, diff against the mirror, push, record, count,
//! result event, ack), so the mirror stays right and the next cycle finds nothing to redo.
//! The result event is subscribed to before publishing; the outcome is then read from
//! PostgreSQL (the batch's counts, the failure's reason, the mirror row before and after)
//! and judged by [`outcome_of`] (pure).
//!
//! An on-demand run never counts as the tenant's cycle: `open_run`, job status, summaries
//! and progress leave `kind = 'on_demand'` out, it never moves the deltaLink, and a full
//! enumeration's reconciliation counts a user provisioned on demand since it started as
//! seen. It may push a user that a running cycle's batch also carries: both carry the user
//! as Entra had it when read, a create racing a create adopts (409), and the next cycle
//! settles any difference.
//!
//! Not done on demand: the avatar (the next run's avatar pass sets it, never-checked users
//! first) and group objects. A manager not yet in Webex is deferred as in a run.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use dirsync_proto::{Counts, SourceUser};

use crate::scope::Scope;

mod provisioner;

pub use provisioner::Provisioner;

/// `runs.kind` of a provision on demand.
pub const ON_DEMAND: &str = "on_demand";
/// How long a provision waits for the workers by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// What became of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionResult {
    /// Webex now has the user as Entra has it (created or changed).
    Success,
    /// Nothing was pushed; `reason` says why.
    Skipped,
    /// Webex refused the user; `reason` is its error.
    Failed,
}

impl ProvisionResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionResult::Success => "success",
            ProvisionResult::Skipped => "skipped",
            ProvisionResult::Failed => "failed",
        }
    }
}

/// What was done in Webex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Reactivated,
    Deactivated,
    None,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Reactivated => "reactivated",
            Action::Deactivated => "deactivated",
            Action::None => "none",
        }
    }
}

/// The answer to a provision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProvisionOutcome {
    pub result: ProvisionResult,
    pub action: Action,
    /// Entra object id.
    pub entra_id: String,
    pub user_principal_name: Option<String>,
    /// The Webex user id, when Webex has the user from dirsync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webex_id: Option<String>,
    /// Why it was skipped, or the SCIM error it failed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The on-demand run that carried it (none when skipped before any batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<uuid::Uuid>,
    /// From the request to the answer.
    pub elapsed_ms: u64,
}

/// The mirror row of the user: what dirsync last wrote to Webex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRow {
    pub webex_id: String,
    pub active: bool,
}

pub const OUT_OF_SCOPE: &str = "not in the sync scope";
pub const DISABLED: &str = "disabled in Entra ID and not in Webex";
pub const UP_TO_DATE: &str = "already exists in Webex and is up to date";
pub const ALREADY_INACTIVE: &str = "disabled in Entra ID and already inactive in Webex";

/// Why the user is skipped without a batch, if it is (pure). A user outside the scope is
/// never pushed on demand (a run deactivates one who left it, behind the guard); a disabled
/// user Webex does not have active is not created (a run does not create one either). A
/// disabled user Webex has active goes through: the worker deactivates it.
pub fn precheck(user: &SourceUser, in_scope: bool, mirror: Option<&MirrorRow>) -> Option<String> {
    let active_in_webex = mirror.is_some_and(|m| m.active);
    if !in_scope {
        return Some(if active_in_webex {
            format!("{OUT_OF_SCOPE}; the next sync deactivates it in Webex")
        } else {
            OUT_OF_SCOPE.to_string()
        });
    }
    if user.bool_attr("accountEnabled") == Some(false) && !active_in_webex {
        return Some(DISABLED.to_string());
    }
    None
}

/// Whether the scope takes the user (pure): all users, a user chosen by id, a member of the
/// resolved scope (`scope_members`), or a room of a tenant that syncs rooms.
pub fn in_scope(scope: &Scope, user: &SourceUser, scope_member: bool) -> bool {
    let chosen: HashSet<String> = scope
        .users
        .iter()
        .map(|u| u.trim().to_ascii_lowercase())
        .collect();
    scope.all
        || scope_member
        || chosen.contains(&user.id.to_ascii_lowercase())
        || (scope.rooms && user.is_room())
}

/// The outcome of a recorded one-user batch (pure): its counts, the failure's reason, and
/// the mirror row before and after.
pub fn outcome_of(
    counts: Counts,
    failure: Option<String>,
    before: Option<&MirrorRow>,
    after: Option<&MirrorRow>,
) -> (ProvisionResult, Action, Option<String>) {
    if counts.failed > 0 {
        let reason = failure.unwrap_or_else(|| "webex refused the user".into());
        return (ProvisionResult::Failed, Action::None, Some(reason));
    }
    if counts.synced > 0 {
        let action = match (before, after) {
            (_, Some(a)) if !a.active => Action::Deactivated,
            (None, Some(_)) => Action::Created,
            (Some(b), Some(_)) if !b.active => Action::Reactivated,
            _ => Action::Updated,
        };
        return (ProvisionResult::Success, action, None);
    }
    let reason = match after {
        Some(a) if a.active => UP_TO_DATE,
        Some(_) => ALREADY_INACTIVE,
        None => DISABLED,
    };
    (
        ProvisionResult::Skipped,
        Action::None,
        Some(reason.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(enabled: Option<bool>) -> SourceUser {
        let mut attributes = serde_json::Map::new();
        attributes.insert("displayName".into(), json!("Ada"));
        if let Some(enabled) = enabled {
            attributes.insert("accountEnabled".into(), json!(enabled));
        }
        SourceUser {
            id: "u1".into(),
            removed: None,
            attributes,
        }
    }

    fn row(active: bool) -> MirrorRow {
        MirrorRow {
            webex_id: "w1".into(),
            active,
        }
    }

    fn counts(synced: u64, skipped: u64, failed: u64) -> Counts {
        Counts {
            synced,
            skipped,
            failed,
        }
    }

    #[test]
    fn prechecks_follow_the_runs_rules() {
        let (on, off) = (user(Some(true)), user(Some(false)));
        assert_eq!(precheck(&on, true, None), None);
        assert_eq!(precheck(&user(None), true, None), None);
        assert_eq!(precheck(&on, false, None).as_deref(), Some(OUT_OF_SCOPE));
        let left = precheck(&on, false, Some(&row(true))).unwrap();
        assert!(
            left.starts_with(OUT_OF_SCOPE) && left.contains("deactivates"),
            "{left}"
        );
        assert_eq!(precheck(&off, true, None).as_deref(), Some(DISABLED));
        assert_eq!(
            precheck(&off, true, Some(&row(false))).as_deref(),
            Some(DISABLED)
        );
        // Active in Webex and disabled in Entra: the worker deactivates it.
        assert_eq!(precheck(&off, true, Some(&row(true))), None);
        // Out of scope wins over disabled.
        assert_eq!(precheck(&off, false, None).as_deref(), Some(OUT_OF_SCOPE));
    }

    #[test]
    fn scope_is_judged_as_a_run_does() {
        let mut room = user(Some(true));
        room.attributes
            .insert(dirsync_proto::ROOM_ATTRIBUTE.into(), json!(true));
        let chosen = Scope {
            all: false,
            users: vec![" U1 ".into()],
            groups: vec!["g".into()],
            ..Scope::default()
        };
        let groups_only = Scope {
            users: Vec::new(),
            ..chosen.clone()
        };
        let rooms = Scope {
            rooms: true,
            ..groups_only.clone()
        };
        let u = user(Some(true));
        assert!(in_scope(&Scope::default(), &u, false));
        assert!(in_scope(&chosen, &u, false));
        assert!(!in_scope(&groups_only, &u, false));
        assert!(in_scope(&groups_only, &u, true));
        assert!(!in_scope(&groups_only, &room, false));
        assert!(in_scope(&rooms, &room, false));
        assert!(!in_scope(&rooms, &u, false));
    }

    #[test]
    fn outcomes_say_what_happened() {
        use Action as A;
        use ProvisionResult as R;
        let (active, inactive) = (row(true), row(false));
        // (counts, mirror row before, after, result, action, reason)
        type Case<'a> = (
            Counts,
            Option<&'a MirrorRow>,
            Option<&'a MirrorRow>,
            R,
            A,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                counts(1, 0, 0),
                None,
                Some(&active),
                R::Success,
                A::Created,
                None,
            ),
            (
                counts(1, 0, 0),
                Some(&active),
                Some(&active),
                R::Success,
                A::Updated,
                None,
            ),
            (
                counts(1, 0, 0),
                Some(&inactive),
                Some(&active),
                R::Success,
                A::Reactivated,
                None,
            ),
            (
                counts(1, 0, 0),
                Some(&active),
                Some(&inactive),
                R::Success,
                A::Deactivated,
                None,
            ),
            (
                counts(0, 1, 0),
                Some(&active),
                Some(&active),
                R::Skipped,
                A::None,
                Some(UP_TO_DATE),
            ),
            (
                counts(0, 1, 0),
                Some(&inactive),
                Some(&inactive),
                R::Skipped,
                A::None,
                Some(ALREADY_INACTIVE),
            ),
            (
                counts(0, 1, 0),
                None,
                None,
                R::Skipped,
                A::None,
                Some(DISABLED),
            ),
        ];
        for (c, before, after, result, action, reason) in cases {
            assert_eq!(
                outcome_of(c, None, before, after),
                (result, action, reason.map(str::to_string)),
                "{c:?} {before:?} {after:?}"
            );
        }
        let scim = "scim 409: userName already taken in another org".to_string();
        assert_eq!(
            outcome_of(counts(0, 0, 1), Some(scim.clone()), None, None),
            (R::Failed, A::None, Some(scim))
        );
        let (r, _, reason) = outcome_of(counts(0, 0, 1), None, Some(&active), Some(&active));
        assert_eq!(r, R::Failed);
        assert!(reason.is_some());
    }

    #[test]
    fn outcomes_serialize_in_the_apis_words() {
        let o = ProvisionOutcome {
            result: ProvisionResult::Skipped,
            action: Action::None,
            entra_id: "u1".into(),
            user_principal_name: Some("ada@c.example".into()),
            webex_id: None,
            reason: Some(UP_TO_DATE.into()),
            run_id: None,
            elapsed_ms: 12,
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["result"], "skipped");
        assert_eq!(v["action"], "none");
        assert_eq!(v["result"], o.result.as_str());
        for a in [
            Action::Created,
            Action::Updated,
            Action::Reactivated,
            Action::Deactivated,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert!(v.get("webex_id").is_none());
        assert_eq!(serde_json::from_value::<ProvisionOutcome>(v).unwrap(), o);
    }
}
