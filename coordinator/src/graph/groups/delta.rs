//! Folding `groups/delta` pages into per-group state for one round. Pure: no I/O.
//!
//! Graph may split a group over several pages, repeat a slice, and return entries in any
//! order (reference §1.3, §1.5); what counts is the last word on each property and on each
//! member, in page order. Replaying a slice therefore changes nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use dirsync_proto::RemovedReason;

use super::{GroupsPage, MemberKind};
use crate::graph::PageLink;

/// The round's last word on one member of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberChange {
    pub kind: MemberKind,
    /// `true`: is a member now; `false`: was removed.
    pub present: bool,
}

/// What a round says about one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupState {
    /// The latest `@removed` of the group; `None` when its latest entry had none (present,
    /// or restored).
    pub removed: Option<RemovedReason>,
    /// Properties returned in this round, latest value wins; absent = not returned.
    pub properties: Map<String, Value>,
    /// Member changes by member id (sorted, so stores lock rows in one order).
    pub members: BTreeMap<String, MemberChange>,
    /// The group was hard-deleted during the round: every membership known from earlier
    /// rounds is gone, and only `members` (changes seen after the deletion) remains.
    pub members_reset: bool,
}

impl GroupState {
    /// `Some(name)` when the round returned `displayName` (`Some(None)` = cleared).
    pub fn display_name(&self) -> Option<Option<&str>> {
        self.properties.get("displayName").map(Value::as_str)
    }

    /// Whether the group is deleted (soft or hard) at the end of the round.
    pub fn deleted(&self) -> bool {
        self.removed.is_some()
    }
}

/// Per-group state folded from any number of pages of one round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupsDelta {
    groups: BTreeMap<String, GroupState>,
    ignored_members: u64,
}

impl GroupsDelta {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one page in, in page order, and hands back where the walk goes next.
    pub fn apply(&mut self, page: GroupsPage) -> PageLink {
        for entry in page.groups {
            self.ignored_members += u64::from(entry.ignored_members);
            let state = self.groups.entry(entry.id).or_default();
            state.removed = entry.removed;
            if entry.removed == Some(RemovedReason::Deleted) {
                // Gone for good: memberships seen so far no longer matter.
                state.members.clear();
                state.members_reset = true;
            }
            state.properties.extend(entry.properties);
            for m in entry.members {
                state.members.insert(
                    m.id,
                    MemberChange {
                        kind: m.kind,
                        present: !m.removed,
                    },
                );
            }
        }
        page.link
    }

    /// Every group the round mentioned, by id.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &GroupState)> {
        self.groups.iter().map(|(id, s)| (id.as_str(), s))
    }

    pub fn get(&self, group: &str) -> Option<&GroupState> {
        self.groups.get(group)
    }

    /// How many groups the round mentioned.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Member entries of other object types (devices, service principals, ...) skipped.
    pub fn ignored_members(&self) -> u64 {
        self.ignored_members
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::groups::parse_groups_page;
    use serde_json::json;

    /// A page from compact entries: `(group, removed, properties, members)` where a member
    /// is `"+u1"` / `"-u1"` (user added / removed) or `"+g:g2"` (a group member).
    type Entry<'a> = (&'a str, Option<&'a str>, Value, &'a [&'a str]);

    fn page(entries: &[Entry<'_>], last: bool) -> GroupsPage {
        let value: Vec<Value> = entries
            .iter()
            .map(|(id, removed, props, members)| {
                let mut obj = props.as_object().cloned().unwrap_or_default();
                obj.insert("id".into(), json!(id));
                if let Some(reason) = removed {
                    obj.insert("@removed".into(), json!({ "reason": reason }));
                }
                if !members.is_empty() {
                    let members: Vec<Value> = members
                        .iter()
                        .map(|m| {
                            let (sign, rest) = m.split_at(1);
                            let (ty, mid) = match rest.strip_prefix("g:") {
                                Some(g) => ("#microsoft.graph.group", g),
                                None => ("#microsoft.graph.user", rest),
                            };
                            let mut e = json!({"@odata.type": ty, "id": mid});
                            if sign == "-" {
                                e["@removed"] = json!({"reason": "deleted"});
                            }
                            e
                        })
                        .collect();
                    obj.insert("members@delta".into(), Value::Array(members));
                }
                Value::Object(obj)
            })
            .collect();
        let link = if last {
            "@odata.deltaLink"
        } else {
            "@odata.nextLink"
        };
        let body = json!({ link: "l", "value": value });
        parse_groups_page(body.to_string().as_bytes()).unwrap()
    }

    /// The state of one group as a compact string: `"+u1 -u2"` (sorted by member id),
    /// prefixed with `removed:<reason> ` and `reset ` when set.
    fn render(state: &GroupState) -> String {
        let mut parts = Vec::new();
        match state.removed {
            Some(RemovedReason::Changed) => parts.push("removed:changed".to_string()),
            Some(RemovedReason::Deleted) => parts.push("removed:deleted".to_string()),
            None => {}
        }
        if state.members_reset {
            parts.push("reset".into());
        }
        for (id, m) in &state.members {
            let sign = if m.present { "+" } else { "-" };
            let kind = if m.kind == MemberKind::Group {
                "g:"
            } else {
                ""
            };
            parts.push(format!("{sign}{kind}{id}"));
        }
        parts.join(" ")
    }

    #[test]
    fn pages_fold_into_per_group_state() {
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, &[&[Entry<'_>]], &[(&str, &str)])] = &[
            (
                "slices across pages merge",
                &[
                    &[("g1", None, json!({"displayName": "A"}), &["+u1", "+u2"])],
                    &[],
                    &[("g1", None, json!({}), &["+u3", "+g:g2"])],
                ],
                &[("g1", "+g:g2 +u1 +u2 +u3")],
            ),
            (
                "members in any order, interleaved with other groups",
                &[
                    &[
                        ("g2", None, json!({}), &["+u9"]),
                        ("g1", None, json!({}), &["+u3"]),
                    ],
                    &[
                        ("g1", None, json!({}), &["+u1"]),
                        ("g2", None, json!({}), &["+u8"]),
                    ],
                ],
                &[("g1", "+u1 +u3"), ("g2", "+u8 +u9")],
            ),
            (
                "add then remove in one round is removed",
                &[
                    &[("g1", None, json!({}), &["+u1"])],
                    &[("g1", None, json!({}), &["-u1"])],
                ],
                &[("g1", "-u1")],
            ),
            (
                "remove then add in one round is a member",
                &[&[("g1", None, json!({}), &["-u1", "+u1"])]],
                &[("g1", "+u1")],
            ),
            (
                "a replayed slice changes nothing",
                &[
                    &[("g1", None, json!({}), &["+u1", "-u2"])],
                    &[("g1", None, json!({}), &["+u1", "-u2"])],
                ],
                &[("g1", "+u1 -u2")],
            ),
            (
                "a soft-deleted group keeps its member changes",
                &[
                    &[("g1", None, json!({}), &["+u1"])],
                    &[("g1", Some("changed"), json!({}), &[])],
                ],
                &[("g1", "removed:changed +u1")],
            ),
            (
                "a hard-deleted group forgets its members",
                &[
                    &[("g1", None, json!({}), &["+u1"])],
                    &[("g1", Some("deleted"), json!({}), &[])],
                ],
                &[("g1", "removed:deleted reset")],
            ),
            (
                "a group seen after its deletion is present again",
                &[
                    &[("g1", Some("changed"), json!({}), &[])],
                    &[("g1", None, json!({"displayName": "Back"}), &["+u4"])],
                ],
                &[("g1", "+u4")],
            ),
            (
                "a group without members@delta has no member changes",
                &[&[("g1", None, json!({"displayName": "Quiet"}), &[])]],
                &[("g1", "")],
            ),
        ];
        for (name, pages, expected) in cases {
            let mut delta = GroupsDelta::new();
            for (i, entries) in pages.iter().enumerate() {
                delta.apply(page(entries, i + 1 == pages.len()));
            }
            let got: Vec<(&str, String)> = delta.groups().map(|(id, s)| (id, render(s))).collect();
            let want: Vec<(&str, String)> = expected
                .iter()
                .map(|(id, s)| (*id, s.to_string()))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn properties_latest_wins_and_absent_ones_are_kept() {
        let mut delta = GroupsDelta::new();
        delta.apply(page(
            &[(
                "g1",
                None,
                json!({"displayName": "Old", "description": "d", "securityEnabled": true}),
                &[],
            )],
            false,
        ));
        delta.apply(page(
            &[(
                "g1",
                None,
                json!({"displayName": "New", "description": null}),
                &[],
            )],
            true,
        ));
        let g = delta.get("g1").unwrap();
        assert_eq!(g.display_name(), Some(Some("New")));
        assert_eq!(g.properties.get("description"), Some(&Value::Null));
        assert_eq!(g.properties.get("securityEnabled"), Some(&json!(true)));
        assert!(!g.deleted());
        let mut quiet = GroupsDelta::new();
        quiet.apply(page(&[("g2", None, json!({}), &["+u1"])], true));
        assert_eq!(quiet.get("g2").unwrap().display_name(), None);
    }

    #[test]
    fn apply_returns_the_link_and_counts_ignored_members() {
        let mut delta = GroupsDelta::new();
        let body = json!({"@odata.nextLink": "n", "value": [{"id": "g1", "members@delta": [
            {"@odata.type": "#microsoft.graph.device", "id": "d1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u1"}
        ]}]});
        let p = parse_groups_page(body.to_string().as_bytes()).unwrap();
        assert_eq!(delta.apply(p.clone()), PageLink::Next("n".into()));
        delta.apply(p);
        assert_eq!(delta.ignored_members(), 2, "counted per entry seen");
        assert_eq!(delta.len(), 1);
        assert!(!delta.is_empty());
    }
}
