//! Graph wire shapes of users in delta pages: `$select` parsing, full and minimal
//! representations, `@removed` entries and `manager@delta`.

use serde_json::{Map, Value, json};

use crate::synthetic::{Prop, PropSet, TenantUser, UserState};

use super::store::PageItem;

/// The `$select` of a delta chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Selection {
    /// `None` when the initial request had no `$select`.
    explicit: Option<PropSet>,
}

impl Selection {
    /// Parses a `$select` value; `Err` names the first unknown property. `id` is accepted and
    /// implied.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Selection, String> {
        let Some(raw) = raw else {
            return Ok(Selection { explicit: None });
        };
        let mut props = PropSet::EMPTY;
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name.eq_ignore_ascii_case("id") {
                continue;
            }
            props.insert(Prop::from_wire_name(name).ok_or_else(|| name.to_owned())?);
        }
        Ok(Selection {
            explicit: Some(props),
        })
    }

    pub(crate) fn from_bits(bits: Option<u32>) -> Option<Selection> {
        match bits {
            None => Some(Selection { explicit: None }),
            Some(bits) => PropSet::from_bits(bits).map(|p| Selection { explicit: Some(p) }),
        }
    }

    pub(crate) fn bits(self) -> Option<u32> {
        self.explicit.map(PropSet::bits)
    }

    /// The properties returned.
    pub(crate) fn props(self) -> PropSet {
        self.explicit.unwrap_or_else(PropSet::default_selection)
    }

    /// The `$select` value of an explicit selection (`displayName,mail`), else `None`.
    pub(crate) fn query(self) -> Option<String> {
        let props = self.explicit?;
        let names: Vec<&str> = props.iter().map(Prop::wire_name).collect();
        Some(names.join(","))
    }

    /// `@odata.context`, e.g. `{base}/v1.0/$metadata#users(displayName,givenName)`.
    pub(crate) fn context(self, base_url: &str) -> String {
        match self.explicit {
            None => format!("{base_url}/v1.0/$metadata#users"),
            Some(_) => format!(
                "{base_url}/v1.0/$metadata#users({})",
                self.query().unwrap_or_default()
            ),
        }
    }
}

/// One `value` entry for a page item. `minimal` (`Prefer: return=minimal`) limits updated users
/// to the properties that changed.
pub(crate) fn render(item: &PageItem<'_>, select: PropSet, minimal: bool) -> Value {
    let user = item.user;
    match user.state {
        UserState::SoftDeleted => removed(&user.user.id, "changed"),
        UserState::HardDeleted => removed(&user.user.id, "deleted"),
        UserState::Live => {
            let props = match (minimal, item.changed) {
                (true, Some(changed)) => {
                    PropSet::from_iter(changed.iter().filter(|p| select.contains(*p)))
                }
                _ => select,
            };
            live(user, props)
        }
    }
}

fn removed(id: &str, reason: &str) -> Value {
    json!({ "id": id, "@removed": { "reason": reason } })
}

/// The user's `props`: values as they are, `null` for cleared ones, never-set ones omitted.
fn live(user: &TenantUser, props: PropSet) -> Value {
    let mut map = Map::new();
    for prop in props.iter() {
        let value = match user.user.value(prop) {
            Some(value) => value,
            None if user.cleared.contains(prop) => Value::Null,
            None => continue,
        };
        if prop == Prop::Manager {
            // A cleared manager has no documented shape; the synthetic tenants never clear one.
            if let Value::String(id) = value {
                map.insert(
                    "manager@delta".into(),
                    json!([{ "@odata.type": "#microsoft.graph.user", "id": id }]),
                );
            }
        } else {
            map.insert(prop.wire_name().into(), value);
        }
    }
    map.insert("id".into(), Value::String(user.user.id.clone()));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::generate_users;

    fn user(state: UserState) -> TenantUser {
        let mut user = generate_users(1, 3, "contoso.example").remove(2);
        user.given_name = None;
        user.job_title = None;
        user.mobile_phone = None;
        user.manager_id = Some("m-1".into());
        TenantUser {
            user,
            state,
            cleared: [Prop::MobilePhone].into_iter().collect(),
        }
    }

    fn set(props: &[Prop]) -> PropSet {
        props.iter().copied().collect()
    }

    #[test]
    fn select_parsing() {
        // (raw, expected props, or the unknown name)
        let cases: [(Option<&str>, Result<PropSet, &str>); 6] = [
            (None, Ok(PropSet::default_selection())),
            (
                Some("displayName,givenName"),
                Ok(set(&[Prop::DisplayName, Prop::GivenName])),
            ),
            (Some(" id , DISPLAYNAME ,"), Ok(set(&[Prop::DisplayName]))),
            (Some("id"), Ok(PropSet::EMPTY)),
            (Some("manager,mail"), Ok(set(&[Prop::Manager, Prop::Mail]))),
            (Some("displayName,skills"), Err("skills")),
        ];
        for (raw, expected) in cases {
            let parsed = Selection::parse(raw).map(Selection::props);
            assert_eq!(parsed, expected.map_err(str::to_owned), "{raw:?}");
        }
    }

    #[test]
    fn context_lists_the_selection() {
        let cases = [
            (None, "http://h/v1.0/$metadata#users"),
            (
                Some("surname,displayName"),
                "http://h/v1.0/$metadata#users(displayName,surname)",
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(Selection::parse(raw).unwrap().context("http://h"), expected);
        }
    }

    #[test]
    fn representations() {
        let live_user = user(UserState::Live);
        let id = live_user.user.id.clone();
        let full = |u: &TenantUser, select: PropSet, changed: Option<PropSet>, minimal: bool| {
            render(
                &PageItem {
                    user: u,
                    changed,
                    index: 0,
                },
                select,
                minimal,
            )
        };
        let select = set(&[
            Prop::DisplayName,
            Prop::GivenName,
            Prop::JobTitle,
            Prop::MobilePhone,
            Prop::Manager,
        ]);
        let cases = [
            (
                full(&live_user, select, None, false),
                json!({
                    "id": id, "displayName": live_user.user.display_name, "mobilePhone": null,
                    "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m-1"}],
                }),
            ),
            (
                full(
                    &live_user,
                    select,
                    Some(set(&[Prop::MobilePhone, Prop::City])),
                    true,
                ),
                json!({ "id": id, "mobilePhone": null }),
            ),
            (
                full(&live_user, select, Some(set(&[Prop::MobilePhone])), false),
                full(&live_user, select, None, false),
            ),
            (
                full(&live_user, PropSet::EMPTY, None, false),
                json!({ "id": id }),
            ),
            (
                full(&user(UserState::SoftDeleted), select, None, false),
                json!({ "id": id, "@removed": { "reason": "changed" } }),
            ),
            (
                full(&user(UserState::HardDeleted), select, Some(select), true),
                json!({ "id": id, "@removed": { "reason": "deleted" } }),
            ),
        ];
        for (i, (got, expected)) in cases.into_iter().enumerate() {
            assert_eq!(got, expected, "case {i}");
        }
    }

    #[test]
    fn default_selection_includes_arrays_and_booleans_but_not_manager() {
        let value = render(
            &PageItem {
                user: &user(UserState::Live),
                changed: None,
                index: 0,
            },
            PropSet::default_selection(),
            false,
        );
        assert!(value["businessPhones"].is_array());
        assert!(value["accountEnabled"].is_boolean());
        assert!(value.get("manager@delta").is_none());
        assert!(
            value.get("givenName").is_none(),
            "never-set property must be omitted"
        );
        assert!(value.get("jobTitle").is_none());
    }
}
