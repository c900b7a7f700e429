//! A dry run's report rows: what a sync would do with each user of a batch, in the seed's
//! terms (Matched, Add, Update, Deactivate) and with the reason. Pure.
//!
//! The rows come from the very plan a sync carries out ([`crate::pipeline`]), so the report
//! and the next sync cannot disagree about what changes. What the plan cannot know is
//! whether a user to create is in Webex already without dirsync knowing it (created by
//! hand, by another tool, or by an earlier enterprise app): [`ReportRow::found_in_webex`]
//! turns such an `Add` into `Matched`, once the caller has looked its userName up.

use std::collections::HashMap;

use dirsync_proto::{RemovedReason, SourceUser};
use serde_json::Value;

use crate::diff::{Action, MirrorUser, Plan, SkipReason};
use crate::map::{ACTIVE, ScimAttributes, USER_NAME};
use crate::pipeline::Planned;

/// Most changed attributes a reason names before "and N more".
const NAMED_CHANGES: usize = 6;

/// The seed's action types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportAction {
    /// In Entra ID and in Webex, equal.
    Matched,
    /// Will be created in Webex.
    Add,
    /// In Webex, with attributes that will change.
    Update,
    /// In Webex, and will be deactivated (or deleted, where the instance allows it).
    Deactivate,
}

impl ReportAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportAction::Matched => "Matched",
            ReportAction::Add => "Add",
            ReportAction::Update => "Update",
            ReportAction::Deactivate => "Deactivate",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub entra_id: String,
    pub action: ReportAction,
    pub azure_name: Option<String>,
    pub webex_name: Option<String>,
    pub reason: String,
    /// The sync would attempt the action and fail (the reason says why).
    pub fails: bool,
    /// For an `Add`: the userName to look up in Webex.
    pub user_name: Option<String>,
}

impl ReportRow {
    /// An `Add` whose userName Webex already has: a sync's create meets 409 and adopts
    /// that user (see `push.rs`), so the object matches rather than being added.
    pub fn found_in_webex(&mut self) {
        self.action = ReportAction::Matched;
        self.reason = "in Webex already with this userName, not from this instance: the \
                       sync links it (externalId) and updates it"
            .into();
    }
}

/// A batch's report: its rows, and the entries that need no row (a disabled user never
/// created, a tombstone of a user Webex does not have, an entry folded into a later one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub rows: Vec<ReportRow>,
    pub skipped: u64,
}

/// The report of a planned batch: `planned` holds one item per entry of `users`, in order.
pub fn report_batch(
    users: &[SourceUser],
    planned: &[Planned],
    mirror: &HashMap<String, MirrorUser>,
) -> BatchReport {
    let mut report = BatchReport::default();
    for (user, planned) in users.iter().zip(planned) {
        let Planned::Plan { plan, .. } = planned else {
            report.skipped += 1;
            continue;
        };
        match report_row(user, plan, mirror.get(&user.id)) {
            Some(row) => report.rows.push(row),
            None => report.skipped += 1,
        }
    }
    report
}

/// The row of one planned user; `None` when the sync would neither write nor find it.
pub fn report_row(
    user: &SourceUser,
    plan: &Plan,
    mirror: Option<&MirrorUser>,
) -> Option<ReportRow> {
    let azure_name = user
        .str_attr("displayName")
        .or_else(|| user.str_attr("userPrincipalName"))
        .map(str::to_string)
        .or_else(|| mirror.and_then(|m| webex_name(&m.attributes)));
    let mirror_name = mirror.and_then(|m| webex_name(&m.attributes));
    let row = |action, reason: String, webex_name: Option<String>| ReportRow {
        entra_id: user.id.clone(),
        action,
        azure_name: azure_name.clone(),
        webex_name,
        reason,
        fails: false,
        user_name: None,
    };
    let row = match &plan.action {
        Action::Create => ReportRow {
            user_name: plan
                .effective
                .get(USER_NAME)
                .and_then(Value::as_str)
                .map(str::to_string),
            ..row(
                ReportAction::Add,
                "not in Webex: the sync creates it".into(),
                webex_name(&plan.effective),
            )
        },
        Action::Patch { changes, .. } => row(
            ReportAction::Update,
            update_reason(changes, mirror),
            mirror_name,
        ),
        Action::Deactivate { .. } => row(
            ReportAction::Deactivate,
            gone_reason(user).into(),
            mirror_name,
        ),
        Action::Delete { .. } => row(
            ReportAction::Deactivate,
            "deleted permanently in Entra ID: the instance allows hard deletes, so the sync \
             deletes it from Webex"
                .into(),
            mirror_name,
        ),
        Action::Skip(SkipReason::Unchanged) => {
            let reason = if mirror.is_some_and(|m| !m.active) {
                "deactivated in Webex and still disabled or deleted in Entra ID"
            } else {
                "the same in Entra ID and Webex"
            };
            row(ReportAction::Matched, reason.into(), mirror_name)
        }
        Action::Skip(_) => return None,
        Action::Fail(reason) => {
            let action = if mirror.is_some() {
                ReportAction::Update
            } else {
                ReportAction::Add
            };
            ReportRow {
                fails: true,
                ..row(
                    action,
                    format!("fails: the attribute mapping fails on this user: {reason}"),
                    mirror_name,
                )
            }
        }
    };
    Some(row)
}

/// What a user is called in Webex: its display name, else its userName.
fn webex_name(attributes: &ScimAttributes) -> Option<String> {
    ["displayName", USER_NAME]
        .iter()
        .find_map(|k| attributes.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

fn gone_reason(user: &SourceUser) -> &'static str {
    match user.removed {
        Some(RemovedReason::Changed) => "deleted in Entra ID (soft delete)",
        Some(RemovedReason::Deleted) => "deleted permanently in Entra ID",
        None => "disabled in Entra ID (accountEnabled is false)",
    }
}

fn update_reason(changes: &ScimAttributes, mirror: Option<&MirrorUser>) -> String {
    let reactivated =
        changes.get(ACTIVE) == Some(&Value::Bool(true)) && mirror.is_some_and(|m| !m.active);
    let mut paths: Vec<&str> = changes
        .keys()
        .map(String::as_str)
        .filter(|p| *p != ACTIVE)
        .collect();
    paths.sort_unstable();
    let mut named = paths
        .iter()
        .take(NAMED_CHANGES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > NAMED_CHANGES {
        named.push_str(&format!(" and {} more", paths.len() - NAMED_CHANGES));
    }
    match (reactivated, paths.is_empty()) {
        (true, true) => "enabled or restored in Entra ID: the sync reactivates it".into(),
        (true, false) => {
            format!("enabled or restored in Entra ID: the sync reactivates it; differs in {named}")
        }
        (false, _) => format!("differs from Webex in {named}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan_batch;
    use serde_json::json;

    fn user(id: &str, attrs: Value) -> SourceUser {
        SourceUser {
            id: id.into(),
            removed: None,
            attributes: attrs.as_object().unwrap().clone(),
        }
    }

    fn ada(enabled: bool) -> SourceUser {
        user(
            "u1",
            json!({
                "userPrincipalName": "ada@contoso.example",
                "displayName": "Ada Lovelace",
                "givenName": "Ada",
                "surname": "Lovelace",
                "accountEnabled": enabled,
            }),
        )
    }

    /// The mirror row a sync of `user` would leave.
    fn synced(user: &SourceUser) -> MirrorUser {
        let planned = plan_batch(std::slice::from_ref(user), &HashMap::new(), false);
        let Planned::Plan { plan, .. } = &planned[0] else {
            panic!("planned")
        };
        MirrorUser {
            webex_id: "w1".into(),
            content_hash: plan.content_hash,
            active: plan.active(),
            attributes: plan.effective.clone(),
            deferred_manager: None,
        }
    }

    fn report(users: &[SourceUser], mirror: &[(&str, MirrorUser)], hard: bool) -> BatchReport {
        let mirror: HashMap<String, MirrorUser> = mirror
            .iter()
            .map(|(id, m)| (id.to_string(), m.clone()))
            .collect();
        report_batch(users, &plan_batch(users, &mirror, hard), &mirror)
    }

    fn only(report: &BatchReport) -> &ReportRow {
        assert_eq!(report.rows.len(), 1, "{report:?}");
        &report.rows[0]
    }

    #[test]
    fn a_new_user_is_added_under_its_mapped_name_and_user_name() {
        let r = report(&[ada(true)], &[], false);
        let row = only(&r);
        assert_eq!(row.action, ReportAction::Add);
        assert_eq!(row.azure_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(row.webex_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(row.user_name.as_deref(), Some("ada@contoso.example"));
        assert!(!row.fails);
        let mut found = row.clone();
        found.found_in_webex();
        assert_eq!(found.action, ReportAction::Matched);
        assert!(found.reason.contains("links it"), "{}", found.reason);
    }

    #[test]
    fn an_unchanged_user_matches_and_a_changed_one_names_what_differs() {
        let before = ada(true);
        let r = report(
            std::slice::from_ref(&before),
            &[("u1", synced(&before))],
            false,
        );
        assert_eq!(only(&r).action, ReportAction::Matched);
        assert_eq!(only(&r).reason, "the same in Entra ID and Webex");

        let mut after = before.clone();
        after.attributes.insert("jobTitle".into(), json!("Analyst"));
        after
            .attributes
            .insert("displayName".into(), json!("Ada King"));
        let r = report(&[after], &[("u1", synced(&before))], false);
        let row = only(&r);
        assert_eq!(row.action, ReportAction::Update);
        assert_eq!(row.azure_name.as_deref(), Some("Ada King"));
        assert_eq!(row.webex_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(row.reason, "differs from Webex in displayName, title");
    }

    #[test]
    fn deletes_and_disables_deactivate_and_say_why() {
        let before = ada(true);
        let mirror = [("u1", synced(&before))];
        let soft = SourceUser {
            id: "u1".into(),
            removed: Some(RemovedReason::Changed),
            attributes: Default::default(),
        };
        let row = only(&report(std::slice::from_ref(&soft), &mirror, false)).clone();
        assert_eq!(row.action, ReportAction::Deactivate);
        assert_eq!(row.reason, "deleted in Entra ID (soft delete)");
        // A tombstone has no name: the one Webex knows stands in.
        assert_eq!(row.azure_name.as_deref(), Some("Ada Lovelace"));

        let row = only(&report(&[ada(false)], &mirror, false)).clone();
        assert_eq!(row.action, ReportAction::Deactivate);
        assert!(
            row.reason.starts_with("disabled in Entra ID"),
            "{}",
            row.reason
        );

        let hard = SourceUser {
            removed: Some(RemovedReason::Deleted),
            ..soft
        };
        let row = only(&report(std::slice::from_ref(&hard), &mirror, false)).clone();
        assert_eq!(row.reason, "deleted permanently in Entra ID");
        let row = only(&report(&[hard], &mirror, true)).clone();
        assert_eq!(row.action, ReportAction::Deactivate);
        assert!(
            row.reason.contains("deletes it from Webex"),
            "{}",
            row.reason
        );
    }

    #[test]
    fn a_restored_user_is_an_update_that_reactivates() {
        let disabled = ada(false);
        let mut mirror = synced(&ada(true));
        let off = synced(&disabled);
        mirror.active = false;
        mirror.attributes = off.attributes;
        mirror.content_hash = off.content_hash;
        let r = report(&[ada(true)], &[("u1", mirror.clone())], false);
        assert_eq!(only(&r).action, ReportAction::Update);
        assert_eq!(
            only(&r).reason,
            "enabled or restored in Entra ID: the sync reactivates it"
        );
        // Still disabled: nothing to do, and the row says it is deactivated.
        let r = report(&[disabled], &[("u1", mirror)], false);
        assert_eq!(only(&r).action, ReportAction::Matched);
        assert!(only(&r).reason.starts_with("deactivated in Webex"));
    }

    #[test]
    fn nothing_to_write_and_nothing_in_webex_is_no_row_but_counted() {
        let tombstone = SourceUser {
            id: "u9".into(),
            removed: Some(RemovedReason::Deleted),
            attributes: Default::default(),
        };
        let r = report(&[ada(false), tombstone, ada(false)], &[], false);
        assert!(r.rows.is_empty(), "{r:?}");
        assert_eq!(r.skipped, 3);
    }

    #[test]
    fn many_changes_are_named_up_to_a_limit() {
        let mut changes = ScimAttributes::new();
        for i in 0..9 {
            changes.insert(format!("a{i}"), json!(i));
        }
        assert_eq!(
            update_reason(&changes, None),
            "differs from Webex in a0, a1, a2, a3, a4, a5 and 3 more"
        );
    }
}
