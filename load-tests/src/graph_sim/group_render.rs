//! Graph wire shapes of groups in delta pages: the group `$select`, group entries, `@removed`
//! groups and `members@delta` slices (graph.md §1.3, §1.8 F4).

use serde_json::{Map, Value, json};

use crate::synthetic::MemberRef;

use super::group_store::GroupItem;

/// The group properties the simulator models, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupProps(u8);

impl GroupProps {
    pub(crate) const DISPLAY_NAME: GroupProps = GroupProps(1);
    pub(crate) const DESCRIPTION: GroupProps = GroupProps(2);
    pub(crate) const MAIL_NICKNAME: GroupProps = GroupProps(4);
    pub(crate) const SECURITY_ENABLED: GroupProps = GroupProps(8);
    /// The membership relationship (`members@delta`); only returned when selected.
    pub(crate) const MEMBERS: GroupProps = GroupProps(16);
    const ALL: [(GroupProps, &'static str); 5] = [
        (GroupProps::DISPLAY_NAME, "displayName"),
        (GroupProps::DESCRIPTION, "description"),
        (GroupProps::MAIL_NICKNAME, "mailNickname"),
        (GroupProps::SECURITY_ENABLED, "securityEnabled"),
        (GroupProps::MEMBERS, "members"),
    ];

    pub(crate) const EMPTY: GroupProps = GroupProps(0);

    /// Without `$select`: every property, relationships excluded (as users without `manager`).
    pub(crate) const DEFAULT: GroupProps = GroupProps(1 | 2 | 4 | 8);

    pub(crate) fn contains(self, other: GroupProps) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    fn with(self, other: GroupProps) -> GroupProps {
        GroupProps(self.0 | other.0)
    }

    fn names(self) -> Vec<&'static str> {
        GroupProps::ALL
            .iter()
            .filter(|(p, _)| self.contains(*p))
            .map(|(_, name)| *name)
            .collect()
    }
}

/// The `$select` of a groups delta chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupSelection {
    explicit: Option<GroupProps>,
}

impl GroupSelection {
    /// Parses a `$select` value; `Err` names the first unknown property. `id` is implied.
    pub(crate) fn parse(raw: Option<&str>) -> Result<GroupSelection, String> {
        let Some(raw) = raw else {
            return Ok(GroupSelection { explicit: None });
        };
        let mut props = GroupProps::EMPTY;
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name.eq_ignore_ascii_case("id") {
                continue;
            }
            let (prop, _) = GroupProps::ALL
                .iter()
                .find(|(_, wire)| wire.eq_ignore_ascii_case(name))
                .ok_or_else(|| name.to_owned())?;
            props = props.with(*prop);
        }
        Ok(GroupSelection {
            explicit: Some(props),
        })
    }

    pub(crate) fn from_bits(bits: Option<u8>) -> Option<GroupSelection> {
        match bits {
            None => Some(GroupSelection { explicit: None }),
            Some(bits) if bits & !31 == 0 => Some(GroupSelection {
                explicit: Some(GroupProps(bits)),
            }),
            Some(_) => None,
        }
    }

    pub(crate) fn bits(self) -> Option<u8> {
        self.explicit.map(|p| p.0)
    }

    pub(crate) fn props(self) -> GroupProps {
        self.explicit.unwrap_or(GroupProps::DEFAULT)
    }

    /// The `$select` value of an explicit selection, else `None`.
    pub(crate) fn query(self) -> Option<String> {
        Some(self.explicit?.names().join(","))
    }

    /// `@odata.context`, e.g. `{base}/v1.0/$metadata#groups(displayName,members)`.
    pub(crate) fn context(self, base_url: &str) -> String {
        match self.query() {
            None => format!("{base_url}/v1.0/$metadata#groups"),
            Some(query) => format!("{base_url}/v1.0/$metadata#groups({query})"),
        }
    }
}

/// One `value` entry. `minimal` (`Prefer: return=minimal`) sends a group whose membership alone
/// changed as its id and `members@delta`.
pub(crate) fn render(item: &GroupItem<'_>, select: GroupProps, minimal: bool) -> Value {
    let group = &item.group.group;
    if let Some(reason) = item.removed {
        return json!({ "id": group.id, "@removed": { "reason": reason } });
    }
    let props = if minimal && item.membership_only {
        GroupProps::MEMBERS
    } else {
        select
    };
    let mut map = Map::new();
    if props.contains(GroupProps::DISPLAY_NAME) {
        map.insert("displayName".into(), json!(group.display_name));
    }
    if props.contains(GroupProps::DESCRIPTION)
        && let Some(description) = &group.description
    {
        map.insert("description".into(), json!(description));
    }
    if props.contains(GroupProps::MAIL_NICKNAME) {
        map.insert("mailNickname".into(), json!(group.mail_nickname));
    }
    if props.contains(GroupProps::SECURITY_ENABLED) {
        map.insert("securityEnabled".into(), json!(group.security_enabled));
    }
    map.insert("id".into(), json!(group.id));
    // A group with no members (or nothing in this slice) omits the annotation.
    if props.contains(GroupProps::MEMBERS) && !item.members.is_empty() {
        let members: Vec<Value> = item
            .members
            .iter()
            .map(|(member, removed)| member_entry(member, *removed))
            .collect();
        map.insert("members@delta".into(), Value::Array(members));
    }
    Value::Object(map)
}

fn member_entry(member: &MemberRef, removed: bool) -> Value {
    let mut entry = json!({ "@odata.type": member.kind.odata_type(), "id": member.id });
    if removed {
        // Graph says `deleted` for an unlink as well as for a deleted member object.
        entry["@removed"] = json!({ "reason": "deleted" });
    }
    entry
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::synthetic::{EntraGroup, TenantGroup, UserState};

    fn group(description: Option<&str>) -> TenantGroup {
        TenantGroup {
            group: EntraGroup {
                id: "g-1".into(),
                display_name: "Eng-All".into(),
                description: description.map(str::to_owned),
                mail_nickname: "engall".into(),
                security_enabled: true,
            },
            members: BTreeSet::new(),
            state: UserState::Live,
        }
    }

    #[test]
    fn select_parsing_and_context() {
        // (raw, context suffix, or the unknown name)
        let cases: [(Option<&str>, Result<&str, &str>); 5] = [
            (None, Ok("groups")),
            (
                Some("members,displayName"),
                Ok("groups(displayName,members)"),
            ),
            (Some("ID, DESCRIPTION"), Ok("groups(description)")),
            (Some("id"), Ok("groups()")),
            (Some("displayName,owners"), Err("owners")),
        ];
        for (raw, expected) in cases {
            let got = GroupSelection::parse(raw).map(|s| s.context("http://h"));
            let expected = expected
                .map(|suffix| format!("http://h/v1.0/$metadata#{suffix}"))
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{raw:?}");
        }
        let s = GroupSelection::parse(Some("members")).unwrap();
        assert_eq!(GroupSelection::from_bits(s.bits()), Some(s));
        assert_eq!(GroupSelection::from_bits(Some(64)), None);
        assert!(!GroupProps::DEFAULT.contains(GroupProps::MEMBERS));
    }

    #[test]
    fn representations() {
        let with = group(Some("Engineering"));
        let without = group(None);
        let all = GroupSelection::parse(Some(
            "displayName,description,mailNickname,securityEnabled,members",
        ))
        .unwrap()
        .props();
        let item = |g, members: Vec<(MemberRef, bool)>, removed, membership_only| GroupItem {
            group: g,
            removed,
            members,
            membership_only,
        };
        let slice = vec![
            (MemberRef::user("u-2"), true),
            (MemberRef::user("u-5"), false),
            (MemberRef::group("g-9"), false),
        ];
        let cases = [
            (
                render(&item(&with, slice.clone(), None, true), all, false),
                json!({
                    "id": "g-1", "displayName": "Eng-All", "description": "Engineering",
                    "mailNickname": "engall", "securityEnabled": true,
                    "members@delta": [
                        {"@odata.type": "#microsoft.graph.user", "id": "u-2", "@removed": {"reason": "deleted"}},
                        {"@odata.type": "#microsoft.graph.user", "id": "u-5"},
                        {"@odata.type": "#microsoft.graph.group", "id": "g-9"},
                    ],
                }),
            ),
            (
                render(&item(&with, slice.clone(), None, true), all, true),
                json!({
                    "id": "g-1",
                    "members@delta": [
                        {"@odata.type": "#microsoft.graph.user", "id": "u-2", "@removed": {"reason": "deleted"}},
                        {"@odata.type": "#microsoft.graph.user", "id": "u-5"},
                        {"@odata.type": "#microsoft.graph.group", "id": "g-9"},
                    ],
                }),
            ),
            (
                render(&item(&without, Vec::new(), None, false), all, false),
                json!({
                    "id": "g-1", "displayName": "Eng-All", "mailNickname": "engall",
                    "securityEnabled": true,
                }),
            ),
            (
                render(&item(&with, slice, None, false), GroupProps::DEFAULT, false),
                json!({
                    "id": "g-1", "displayName": "Eng-All", "description": "Engineering",
                    "mailNickname": "engall", "securityEnabled": true,
                }),
            ),
            (
                render(&item(&with, Vec::new(), Some("changed"), false), all, false),
                json!({ "id": "g-1", "@removed": { "reason": "changed" } }),
            ),
        ];
        for (i, (got, expected)) in cases.into_iter().enumerate() {
            assert_eq!(got, expected, "case {i}");
        }
    }
}
