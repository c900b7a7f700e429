//! Which users of a tenant are synced: the seed's Users and Groups tabs.
//!
//! A tenant syncs all its users, or the users it chose plus the user members of the groups
//! it chose (direct members; with "sync children groups" also members of nested groups at
//! any depth). This module holds the pure rules; [`crate::scope_store`] keeps the resolved
//! set in PostgreSQL and computes who enters and who leaves it.

use std::collections::HashSet;

use dirsync_proto::SourceUser;

use crate::CoordinatorError;
use crate::guard;

/// Most users a tenant may choose one by one; larger scopes are what groups are for.
pub const MAX_CHOSEN: usize = 10_000;

/// A tenant's scope settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    /// "Select all users": everyone; `users`, `groups` and `nested` are then ignored.
    pub all: bool,
    /// Chosen users, by Entra object id.
    pub users: Vec<String>,
    /// Chosen groups, by Entra object id: their user members are in scope.
    pub groups: Vec<String>,
    /// "Sync children groups": members of groups nested in the chosen ones, transitively.
    pub nested: bool,
    /// "Sync group objects": the chosen groups themselves are synced to Webex.
    pub group_objects: bool,
    /// "Identify and sync room objects".
    pub rooms: bool,
    /// "Sync user avatars": the users' Entra photos become their Webex avatars.
    #[serde(default)]
    pub avatars: bool,
}

impl Default for Scope {
    /// All users, nothing else: the seed's "sync default settings".
    fn default() -> Self {
        Scope {
            all: true,
            users: Vec::new(),
            groups: Vec::new(),
            nested: false,
            group_objects: false,
            rooms: false,
            avatars: false,
        }
    }
}

impl Scope {
    /// Checks the settings before they are stored; ids are trimmed and deduplicated.
    pub fn validated(mut self) -> Result<Self, CoordinatorError> {
        for list in [&mut self.users, &mut self.groups] {
            let mut seen = HashSet::new();
            let mut clean = Vec::with_capacity(list.len());
            for id in list.iter() {
                let id = id.trim();
                if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
                    return Err(CoordinatorError::Invalid(format!(
                        "{id:?} is not an entra object id"
                    )));
                }
                if seen.insert(id.to_string()) {
                    clean.push(id.to_string());
                }
            }
            *list = clean;
        }
        if self.users.len() > MAX_CHOSEN {
            return Err(CoordinatorError::Invalid(format!(
                "{} users chosen one by one, at most {MAX_CHOSEN}: choose groups instead",
                self.users.len()
            )));
        }
        if !self.all && self.users.is_empty() && self.groups.is_empty() {
            return Err(CoordinatorError::Invalid(
                "the scope is empty: choose users or groups, or select all users".into(),
            ));
        }
        if self.group_objects && self.groups.is_empty() {
            return Err(CoordinatorError::Invalid(
                "sync group objects needs at least one chosen group".into(),
            ));
        }
        Ok(self)
    }

    /// Whether the run filters users by a resolved scope (not "all users").
    pub fn is_filtered(&self) -> bool {
        !self.all
    }

    /// Whether a run must walk `groups/delta`: groups define the scope, or are synced.
    pub fn needs_groups(&self) -> bool {
        (self.is_filtered() && !self.groups.is_empty()) || self.group_objects
    }
}

/// What a page keeps once out-of-scope users are dropped.
#[derive(Debug, Default, PartialEq)]
pub struct Filtered {
    pub users: Vec<SourceUser>,
    /// Entries dropped as out of scope.
    pub dropped: u64,
}

/// Keeps the entries of users in scope, of rooms (a tenant that syncs rooms syncs them
/// all: rooms are not members of the groups that choose people), and the deactivating entries (tombstones, disables)
/// of users Webex has active from dirsync: a user who left the scope and was then deleted in
/// Entra is deleted (or deactivated) as the tombstone says, not merely taken out of scope.
pub fn filter_page(
    users: Vec<SourceUser>,
    in_scope: &HashSet<String>,
    mirrored_active: &HashSet<String>,
) -> Filtered {
    let before = users.len() as u64;
    let users: Vec<SourceUser> = users
        .into_iter()
        .filter(|u| {
            in_scope.contains(&u.id)
                || u.is_room()
                || (guard::deactivates(u) && mirrored_active.contains(&u.id))
        })
        .collect();
    Filtered {
        dropped: before - users.len() as u64,
        users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dirsync_proto::RemovedReason;
    use serde_json::json;

    fn user(id: &str) -> SourceUser {
        entry(id, None, json!({ "displayName": id }))
    }

    fn entry(id: &str, removed: Option<RemovedReason>, attrs: serde_json::Value) -> SourceUser {
        SourceUser {
            id: id.to_string(),
            removed,
            attributes: attrs.as_object().cloned().unwrap_or_default(),
        }
    }

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filter_keeps_scope_and_deactivations_of_mirrored_users() {
        let disabled = |id: &str| entry(id, None, json!({ "accountEnabled": false }));
        let removed = |id: &str, r| entry(id, Some(r), json!({}));
        let page = vec![
            user("in"),
            user("out"),
            removed("gone-mirrored", RemovedReason::Deleted),
            removed("gone-never-synced", RemovedReason::Changed),
            disabled("off-mirrored"),
            user("out-mirrored"),
            disabled("in"),
        ];
        let got = filter_page(
            page,
            &set(&["in"]),
            &set(&["gone-mirrored", "off-mirrored", "out-mirrored"]),
        );
        let ids: Vec<&str> = got.users.iter().map(|u| u.id.as_str()).collect();
        // An out-of-scope update of a mirrored user is dropped: leaving the scope
        // deactivates it at the end of the run instead.
        assert_eq!(ids, ["in", "gone-mirrored", "off-mirrored", "in"]);
        assert_eq!(got.dropped, 3);
    }

    #[test]
    fn validation() {
        let chosen = |users: &[&str], groups: &[&str]| Scope {
            all: false,
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            ..Scope::default()
        };
        assert!(Scope::default().validated().is_ok());
        let ok = chosen(&[" u1 ", "u1", "u2"], &["g1"]).validated().unwrap();
        assert_eq!(ok.users, ["u1", "u2"]);
        assert!(ok.needs_groups() && ok.is_filtered());
        assert!(!chosen(&["u1"], &[]).validated().unwrap().needs_groups());
        for (what, bad) in [
            ("empty scope", chosen(&[], &[])),
            ("blank id", chosen(&[""], &["g"])),
            ("control character", chosen(&["a\nb"], &[])),
            (
                "group objects without groups",
                Scope {
                    group_objects: true,
                    ..Scope::default()
                },
            ),
        ] {
            assert!(
                matches!(bad.validated(), Err(CoordinatorError::Invalid(_))),
                "{what} should be refused"
            );
        }
        let many = chosen(&[], &["g"]);
        let too_many = Scope {
            users: (0..=MAX_CHOSEN).map(|i| i.to_string()).collect(),
            ..many
        };
        assert!(too_many.validated().is_err());
    }
}
