//! What to do with one group object (pure: no I/O): the coordinator sends the complete list
//! of a group's Entra user members; the Webex group gets the members that are in Webex, and
//! the others make the group "to be synced" until a later run finds them there.

use std::collections::{BTreeSet, HashMap};

use dirsync_proto::SourceGroup;

/// What dirsync last wrote to Webex for a group (`mirror_groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorGroup {
    pub webex_id: String,
    pub display_name: String,
    /// Webex ids of the members dirsync put in the group.
    pub members: BTreeSet<String>,
}

/// The SCIM work for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAction {
    /// Nothing to write.
    Unchanged,
    Create {
        display_name: String,
    },
    Update {
        webex_id: String,
        rename: Option<String>,
        add: Vec<String>,
        remove: Vec<String>,
    },
    Delete {
        webex_id: String,
    },
    /// Cannot be pushed: the reason.
    Invalid(&'static str),
}

/// A group's action and the state it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    pub action: GroupAction,
    pub display_name: String,
    /// The Webex members wanted (Webex ids), sorted.
    pub members: BTreeSet<String>,
    /// Entra members not in Webex yet.
    pub pending: u32,
}

/// Plans one group. `webex_of` maps the Entra ids of users active in Webex from dirsync to
/// their Webex ids; members outside it are pending.
pub fn plan_group(
    source: &SourceGroup,
    mirror: Option<&MirrorGroup>,
    webex_of: &HashMap<String, String>,
) -> GroupPlan {
    let members: BTreeSet<String> = source
        .members
        .iter()
        .filter_map(|m| webex_of.get(m).cloned())
        .collect();
    let distinct: BTreeSet<&String> = source.members.iter().collect();
    let resolved = distinct
        .iter()
        .filter(|m| webex_of.contains_key(**m))
        .count();
    let pending = (distinct.len() - resolved) as u32;
    let display_name = source
        .display_name
        .clone()
        .or_else(|| mirror.map(|m| m.display_name.clone()))
        .unwrap_or_default();
    let plan = |action| GroupPlan {
        action,
        display_name: display_name.clone(),
        members: members.clone(),
        pending,
    };
    if source.removed.is_some() {
        return match mirror {
            Some(m) => plan(GroupAction::Delete {
                webex_id: m.webex_id.clone(),
            }),
            None => plan(GroupAction::Unchanged),
        };
    }
    let Some(mirror) = mirror else {
        if display_name.trim().is_empty() {
            return plan(GroupAction::Invalid("group without a display name"));
        }
        return plan(GroupAction::Create {
            display_name: display_name.clone(),
        });
    };
    let rename = (display_name != mirror.display_name && !display_name.trim().is_empty())
        .then(|| display_name.clone());
    let add: Vec<String> = members.difference(&mirror.members).cloned().collect();
    let remove: Vec<String> = mirror.members.difference(&members).cloned().collect();
    if rename.is_none() && add.is_empty() && remove.is_empty() {
        return plan(GroupAction::Unchanged);
    }
    plan(GroupAction::Update {
        webex_id: mirror.webex_id.clone(),
        rename,
        add,
        remove,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dirsync_proto::RemovedReason;

    fn source(name: Option<&str>, members: &[&str], removed: Option<RemovedReason>) -> SourceGroup {
        SourceGroup {
            id: "g".into(),
            removed,
            display_name: name.map(str::to_string),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn mirror(name: &str, members: &[&str]) -> MirrorGroup {
        MirrorGroup {
            webex_id: "w-g".into(),
            display_name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    /// (name, source, mirror row, action, wanted Webex members, pending members)
    type Case = (
        &'static str,
        SourceGroup,
        Option<MirrorGroup>,
        GroupAction,
        &'static [&'static str],
        u32,
    );

    #[test]
    fn cases() {
        // Entra users u1..u3 are in Webex as w1..w3; u9 is not (disabled, or not synced yet).
        let webex_of: HashMap<String, String> = (1..=3)
            .map(|i| (format!("u{i}"), format!("w{i}")))
            .collect();
        let cases: Vec<Case> = vec![
            (
                "new group: created with the members in webex, the rest pending",
                source(Some("Team"), &["u1", "u2", "u9", "u1"], None),
                None,
                GroupAction::Create {
                    display_name: "Team".into(),
                },
                &["w1", "w2"],
                1,
            ),
            (
                "unchanged",
                source(Some("Team"), &["u1", "u2"], None),
                Some(mirror("Team", &["w1", "w2"])),
                GroupAction::Unchanged,
                &["w1", "w2"],
                0,
            ),
            (
                "members added and removed, renamed",
                source(Some("Team B"), &["u2", "u3"], None),
                Some(mirror("Team", &["w1", "w2"])),
                GroupAction::Update {
                    webex_id: "w-g".into(),
                    rename: Some("Team B".into()),
                    add: vec!["w3".into()],
                    remove: vec!["w1".into()],
                },
                &["w2", "w3"],
                0,
            ),
            (
                "name not returned: kept",
                source(None, &["u1"], None),
                Some(mirror("Team", &["w1"])),
                GroupAction::Unchanged,
                &["w1"],
                0,
            ),
            (
                "deleted in entra",
                source(None, &[], Some(RemovedReason::Deleted)),
                Some(mirror("Team", &["w1"])),
                GroupAction::Delete {
                    webex_id: "w-g".into(),
                },
                &[],
                0,
            ),
            (
                "deleted before it was ever synced",
                source(None, &[], Some(RemovedReason::Changed)),
                None,
                GroupAction::Unchanged,
                &[],
                0,
            ),
            (
                "no name to create it with",
                source(None, &["u1"], None),
                None,
                GroupAction::Invalid("group without a display name"),
                &["w1"],
                0,
            ),
        ];
        for (name, source, mirror, action, members, pending) in cases {
            let plan = plan_group(&source, mirror.as_ref(), &webex_of);
            assert_eq!(plan.action, action, "{name}");
            assert_eq!(plan.members, set(members), "{name}");
            assert_eq!(plan.pending, pending, "{name}");
        }
    }
}
