//! Graph `groups/delta` pages: wire types and a pure parser (no I/O).
//!
//! A group entry carries its selected properties and, with `$select=members`, a
//! `members@delta` slice. Large groups are split across pages: the same group id comes back
//! with further slices, in no particular order (reference §1.3), so a page is only ever a
//! fragment; [`delta::GroupsDelta`] folds fragments into per-group state.

pub mod delta;

use serde_json::{Map, Value};

use dirsync_proto::RemovedReason;

use super::wire::{PageLink, excerpt, page_objects, take_identity, usable_id};
use crate::CoordinatorError;

pub use delta::{GroupState, GroupsDelta, MemberChange};

/// The properties read from `groups/delta`; `members` turns on `members@delta`.
pub const GROUP_SELECT: &str = "id,displayName,description,securityEnabled,mailNickname,members";

const USER_TYPE: &str = "#microsoft.graph.user";
const GROUP_TYPE: &str = "#microsoft.graph.group";

/// What kind of directory object a member is. Other kinds (devices, service principals,
/// contacts) are not synced and never become a [`MemberDelta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    /// The stored form (`group_members.member_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Group => "group",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<Self, CoordinatorError> {
        match s {
            "user" => Ok(MemberKind::User),
            "group" => Ok(MemberKind::Group),
            other => Err(CoordinatorError::Invalid(format!(
                "unknown member kind {other:?}"
            ))),
        }
    }
}

/// One entry of `members@delta`: a member added, or removed (`@removed` reason `deleted`,
/// which Graph uses both for an unlink and for a deleted member object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDelta {
    pub id: String,
    pub kind: MemberKind,
    pub removed: bool,
}

/// One group entry of a page: possibly only a slice of the group's member changes.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEntry {
    pub id: String,
    /// `@removed` on the group itself: `Changed` = soft-deleted, `Deleted` = gone for good.
    pub removed: Option<RemovedReason>,
    /// Selected properties by their Graph names (`displayName`, `description`,
    /// `securityEnabled`, `mailNickname`, ...); absent = not returned, `null` = cleared.
    pub properties: Map<String, Value>,
    /// User and group members of this slice, in page order; empty when the entry has no
    /// `members@delta` (a group without members, or without member changes).
    pub members: Vec<MemberDelta>,
    /// Entries of `members@delta` of other object types, skipped.
    pub ignored_members: u32,
}

/// One parsed page of `groups/delta`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupsPage {
    pub groups: Vec<GroupEntry>,
    pub link: PageLink,
}

impl GroupsPage {
    /// Member entries of other object types skipped on this page.
    pub fn ignored_members(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| u64::from(g.ignored_members))
            .sum()
    }
}

fn malformed(msg: String) -> CoordinatorError {
    CoordinatorError::GraphPage(msg)
}

/// Parses one `groups/delta` page body.
pub fn parse_groups_page(body: &[u8]) -> Result<GroupsPage, CoordinatorError> {
    let (objects, link) = page_objects(body)?;
    let groups = objects
        .into_iter()
        .map(parse_group)
        .collect::<Result<_, _>>()?;
    Ok(GroupsPage { groups, link })
}

fn parse_group(mut obj: Map<String, Value>) -> Result<GroupEntry, CoordinatorError> {
    let (id, removed) = take_identity(&mut obj)?;
    let (members, ignored_members) = match obj.remove("members@delta") {
        None => (Vec::new(), 0),
        Some(Value::Array(entries)) => parse_members(&id, entries)?,
        Some(other) => {
            return Err(malformed(format!(
                "group {id}: members@delta is not an array: {}",
                excerpt(&other)
            )));
        }
    };
    // Annotations (`@odata.type`, other `...@delta` relationships) are not group properties.
    obj.retain(|k, _| !k.contains('@'));
    Ok(GroupEntry {
        id,
        removed,
        properties: obj,
        members,
        ignored_members,
    })
}

fn parse_members(
    group: &str,
    entries: Vec<Value>,
) -> Result<(Vec<MemberDelta>, u32), CoordinatorError> {
    let mut members = Vec::with_capacity(entries.len());
    let mut ignored = 0u32;
    for entry in entries {
        let Value::Object(entry) = entry else {
            return Err(malformed(format!(
                "group {group}: members@delta entry is not an object: {}",
                excerpt(&entry)
            )));
        };
        let kind = match entry.get("@odata.type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case(USER_TYPE) => MemberKind::User,
            Some(t) if t.eq_ignore_ascii_case(GROUP_TYPE) => MemberKind::Group,
            Some(_) => {
                ignored = ignored.saturating_add(1);
                continue;
            }
            None => {
                return Err(malformed(format!(
                    "group {group}: members@delta entry without a string @odata.type: {}",
                    excerpt(&entry)
                )));
            }
        };
        let id = match entry.get("id") {
            Some(Value::String(id)) if usable_id(id) => id.clone(),
            other => {
                return Err(malformed(format!(
                    "group {group}: member without a usable id: {}",
                    excerpt(&other)
                )));
            }
        };
        let removed = match entry.get("@removed") {
            None => false,
            Some(r) => match r.get("reason").and_then(Value::as_str) {
                Some(reason) if reason.eq_ignore_ascii_case("deleted") => true,
                _ => {
                    return Err(malformed(format!(
                        "group {group}: member {id}: unknown @removed reason {}",
                        excerpt(r)
                    )));
                }
            },
        };
        members.push(MemberDelta { id, kind, removed });
    }
    Ok((members, ignored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> GroupsPage {
        parse_groups_page(v.to_string().as_bytes()).unwrap()
    }

    fn user(id: &str, removed: bool) -> MemberDelta {
        MemberDelta {
            id: id.into(),
            kind: MemberKind::User,
            removed,
        }
    }

    #[test]
    fn parses_fixture_f4() {
        let f4 = json!({
          "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups",
          "@odata.deltaLink": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=FIXTURE-GDELTA-0002",
          "value": [
            {
              "displayName": "Eng-All",
              "description": "Engineering (updated)",
              "id": "9f000000-0000-4000-8000-0000000000aa",
              "members@delta": [
                { "@odata.type": "#microsoft.graph.user", "id": "0a1b2c3d-0000-4000-8000-000000000002", "@removed": { "reason": "deleted" } },
                { "@odata.type": "#microsoft.graph.user", "id": "0a1b2c3d-0000-4000-8000-000000000005" }
              ]
            }
          ]
        });
        let page = parse(f4);
        assert_eq!(
            page.link,
            PageLink::Delta(
                "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=FIXTURE-GDELTA-0002"
                    .into()
            )
        );
        assert_eq!(page.groups.len(), 1);
        let g = &page.groups[0];
        assert_eq!(g.id, "9f000000-0000-4000-8000-0000000000aa");
        assert_eq!(g.removed, None);
        assert_eq!(g.properties.get("displayName"), Some(&json!("Eng-All")));
        assert_eq!(
            g.properties.get("description"),
            Some(&json!("Engineering (updated)"))
        );
        assert_eq!(g.properties.len(), 2, "{:?}", g.properties);
        assert_eq!(
            g.members,
            vec![
                user("0a1b2c3d-0000-4000-8000-000000000002", true),
                user("0a1b2c3d-0000-4000-8000-000000000005", false),
            ]
        );
        assert_eq!(g.ignored_members, 0);
    }

    #[test]
    fn a_large_group_comes_back_in_slices_on_several_pages() {
        let p1 = parse(json!({
            "@odata.nextLink": "n1",
            "value": [
                {"id": "g1", "displayName": "Big", "securityEnabled": true, "mailNickname": "big",
                 "members@delta": [
                    {"@odata.type": "#microsoft.graph.user", "id": "u2"},
                    {"@odata.type": "#microsoft.graph.group", "id": "g2"},
                    {"@odata.type": "#microsoft.graph.user", "id": "u1"}
                 ]}
            ]
        }));
        assert_eq!(p1.link, PageLink::Next("n1".into()));
        assert_eq!(
            p1.groups[0].properties.get("securityEnabled"),
            Some(&json!(true))
        );
        assert_eq!(
            p1.groups[0].members[1],
            MemberDelta {
                id: "g2".into(),
                kind: MemberKind::Group,
                removed: false
            }
        );
        // The next page: the same group with a further slice only (no properties), then a
        // group without members@delta.
        let p2 = parse(json!({
            "@odata.nextLink": "n2",
            "value": [
                {"id": "g1", "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u3"}]},
                {"id": "g3", "displayName": "Empty", "description": null}
            ]
        }));
        assert_eq!(p2.groups[0].id, "g1");
        assert!(p2.groups[0].properties.is_empty());
        assert_eq!(p2.groups[0].members, vec![user("u3", false)]);
        assert!(p2.groups[1].members.is_empty());
        assert_eq!(
            p2.groups[1].properties.get("description"),
            Some(&Value::Null)
        );
    }

    #[test]
    fn empty_value_with_next_link_is_valid() {
        let page = parse(json!({"@odata.nextLink": "n", "value": []}));
        assert!(page.groups.is_empty());
        assert_eq!(page.link, PageLink::Next("n".into()));
        let page = parse(json!({"@odata.deltaLink": "d"}));
        assert!(page.groups.is_empty());
        assert_eq!(page.link, PageLink::Delta("d".into()));
    }

    #[test]
    fn other_member_types_are_ignored_but_counted() {
        let page = parse(json!({
            "@odata.deltaLink": "d",
            "value": [{"id": "g1", "members@delta": [
                {"@odata.type": "#microsoft.graph.device", "id": "d1"},
                {"@odata.type": "#microsoft.graph.User", "id": "u1"},
                {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "s1", "@removed": {"reason": "deleted"}},
                {"@odata.type": "#microsoft.graph.orgContact", "id": "c1"}
            ]}]
        }));
        assert_eq!(page.groups[0].members, vec![user("u1", false)]);
        assert_eq!(page.groups[0].ignored_members, 3);
        assert_eq!(page.ignored_members(), 3);
    }

    #[test]
    fn removed_groups_carry_their_reason() {
        let page = parse(json!({
            "@odata.deltaLink": "d",
            "value": [
                {"id": "g1", "@removed": {"reason": "changed"}},
                {"id": "g2", "@removed": {"reason": "Deleted"}}
            ]
        }));
        assert_eq!(page.groups[0].removed, Some(RemovedReason::Changed));
        assert_eq!(page.groups[1].removed, Some(RemovedReason::Deleted));
        assert!(page.groups[1].properties.is_empty());
    }

    #[test]
    fn unknown_shapes_are_errors_not_panics() {
        for body in [
            r#"{"value":[]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"displayName":"no id"}]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"id":7}]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"id":""}]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"id":"g","@removed":{"reason":"vanished"}}]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"id":"g","members@delta":{"id":"u"}}]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"id":"g","members@delta":null}]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"id":"g","members@delta":["u1"]}]}"#,
            r#"{"@odata.deltaLink":"d","value":[{"id":"g","members@delta":[{"id":"u1"}]}]}"#,
            r##"{"@odata.deltaLink":"d","value":[{"id":"g","members@delta":[{"@odata.type":"#microsoft.graph.user"}]}]}"##,
            r##"{"@odata.deltaLink":"d","value":[{"id":"g","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"u","@removed":{"reason":"changed"}}]}]}"##,
            r##"{"@odata.deltaLink":"d","value":[{"id":"g","members@delta":[{"@odata.type":"#microsoft.graph.group","id":"x","@removed":{}}]}]}"##,
            r#"{"@odata.deltaLink":"d","value":[3]}"#,
            r#"{"@odata.deltaLink":"d","value":"#,
            "<html>oops</html>",
        ] {
            let err = parse_groups_page(body.as_bytes()).unwrap_err();
            assert!(
                matches!(err, CoordinatorError::GraphPage(_)),
                "{body}: {err}"
            );
        }
    }

    #[test]
    fn member_kinds_round_trip_their_stored_form() {
        for kind in [MemberKind::User, MemberKind::Group] {
            assert_eq!(MemberKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(MemberKind::parse("device").is_err());
    }
}
