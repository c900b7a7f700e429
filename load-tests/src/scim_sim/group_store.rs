//! The groups of an org and the store operations on them (webex-scim.md §7).
//!
//! Memory: a group is its JSON object without `members` (a few hundred bytes) plus its members
//! as an ordered set of 16-byte user ids, some 30 bytes a member with the set's own overhead:
//! a 250,000-member group costs under 10 MB, where JSON member objects would cost hundreds.
//! Ordering by id keeps member pages stable and makes a user a member at most once. Answers
//! rebuild `members` only for the members they show: `value`, `type` "user", `display` (the
//! user's displayName, else userName) and `$ref` (`/Members` pages leave `$ref` out, as the
//! reference's schema does).
//!
//! Groups live in the org's state beside its users, under the same lock, because adding a
//! member checks the user exists and deleting a user removes it from every group (a scan of
//! the org's groups, which are far fewer than its users).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::ScimError;
use super::group_filter;
use super::group_patch;
use super::group_query::{GroupListQuery, MembersQuery};
use super::group_schema::{self, GROUP_MEMBERS, parse_user_id};
use super::list::{sort_key, sorted_page};
use super::patch;
use super::store::{Org, OrgState, Store, kept_meta, lock, new_location, now};
use super::stored::StoredUser;

pub(crate) struct StoredGroup {
    /// Creation order.
    seq: u64,
    /// The group without `members`.
    resource: Map<String, Value>,
    members: BTreeSet<Uuid>,
}

/// The groups of one org.
#[derive(Default)]
pub(crate) struct Groups {
    by_id: HashMap<String, StoredGroup>,
    /// Creation order, the stable order of unsorted lists.
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

impl Groups {
    fn insert(&mut self, id: String, resource: Map<String, Value>, members: BTreeSet<Uuid>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, id.clone());
        self.by_id.insert(
            id,
            StoredGroup {
                seq,
                resource,
                members,
            },
        );
    }

    fn get(&self, id: &str) -> Result<&StoredGroup, ScimError> {
        self.by_id.get(id).ok_or_else(|| not_found(id))
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut StoredGroup, ScimError> {
        self.by_id.get_mut(id).ok_or_else(|| not_found(id))
    }

    /// Every group, in creation order.
    fn in_order(&self) -> impl Iterator<Item = &StoredGroup> {
        self.order.values().filter_map(|id| self.by_id.get(id))
    }
}

fn not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("group {id} not found"))
}

/// Is `id` a user of the org? User ids are stored in the lower-case hyphenated form.
fn has_user(users: &HashMap<String, StoredUser>, id: &Uuid) -> bool {
    let mut buf = Uuid::encode_buffer();
    users.contains_key(&*id.hyphenated().encode_lower(&mut buf))
}

/// `…/v2/Users`, from a group's `meta.location` (`…/v2/Groups/{id}`), for members' `$ref`.
fn users_url(resource: &Map<String, Value>) -> Option<String> {
    let location = resource.get("meta")?.get("location")?.as_str()?;
    let (base, _) = location.rsplit_once("/Groups/")?;
    Some(format!("{base}/Users"))
}

/// One member as answers show it.
fn member(id: &Uuid, users: &HashMap<String, StoredUser>, users_url: Option<&str>) -> Value {
    let mut buf = Uuid::encode_buffer();
    let id = &*id.hyphenated().encode_lower(&mut buf);
    let mut m = Map::new();
    m.insert("value".into(), json!(id));
    m.insert("type".into(), json!("user"));
    if let Some(display) = users.get(id).and_then(StoredUser::display) {
        m.insert("display".into(), json!(display));
    }
    if let Some(url) = users_url {
        m.insert("$ref".into(), json!(format!("{url}/{id}")));
    }
    Value::Object(m)
}

impl StoredGroup {
    /// The group as answers show it, with its first `shown` members (none: no `members`).
    fn render(&self, users: &HashMap<String, StoredUser>, shown: usize) -> Value {
        let mut r = self.resource.clone();
        if shown > 0 && !self.members.is_empty() {
            let url = users_url(&r);
            let members = self
                .members
                .iter()
                .take(shown)
                .map(|id| member(id, users, url.as_deref()))
                .collect();
            r.insert("members".into(), Value::Array(members));
        }
        Value::Object(r)
    }
}

impl Store {
    pub fn create_group(
        &self,
        org: &Org,
        base_url: &str,
        body: Value,
        shown: usize,
    ) -> Result<Value, ScimError> {
        let (id, location) = new_location(org, base_url, "Groups");
        let mut st = lock(&org.state);
        let st = &mut *st;
        let input = self.stamped(org, &id, &location, None, |s| {
            group_schema::from_body(body, s, |u| has_user(&st.users, u))
        })?;
        st.groups.insert(
            id.clone(),
            input.resource,
            input.members.into_iter().collect(),
        );
        Ok(st.groups.get(&id)?.render(&st.users, shown))
    }

    pub fn get_group(&self, org: &Org, id: &str, shown: usize) -> Result<Value, ScimError> {
        let st = lock(&org.state);
        Ok(st.groups.get(id)?.render(&st.users, shown))
    }

    pub fn list_groups(&self, org: &Org, q: &GroupListQuery) -> Value {
        let st = lock(&org.state);
        let hits: Vec<&StoredGroup> = st
            .groups
            .in_order()
            .filter(|g| {
                q.list
                    .filter
                    .as_ref()
                    .is_none_or(|f| group_filter::matches(f, &g.resource, &g.members))
            })
            .collect();
        sorted_page(
            hits,
            &q.list,
            |g, by| sort_key(&g.resource, by),
            |g| g.render(&st.users, q.shown),
        )
    }

    /// A `GET /Groups/{id}/Members` page.
    pub fn group_members_page(
        &self,
        org: &Org,
        id: &str,
        q: &MembersQuery,
    ) -> Result<Value, ScimError> {
        let st = lock(&org.state);
        let group = st.groups.get(id)?;
        let (total, page): (usize, Vec<Value>) = if q.users {
            let page = group
                .members
                .iter()
                .skip(q.start_index - 1)
                .take(q.count)
                .map(|m| member(m, &st.users, None))
                .collect();
            (group.members.len(), page)
        } else {
            (0, Vec::new())
        };
        Ok(json!({
            "schemas": [GROUP_MEMBERS],
            "displayName": group.resource.get("displayName"),
            "memberSize": total,
            "itemsPerPage": page.len(),
            "startIndex": q.start_index,
            "members": page,
        }))
    }

    pub fn patch_group(
        &self,
        org: &Org,
        id: &str,
        body: &Value,
        shown: usize,
    ) -> Result<Value, ScimError> {
        let ops = patch::parse_request(body)?;
        let mut st = lock(&org.state);
        let st = &mut *st;
        let users = &st.users;
        let group = st.groups.get_mut(id)?;
        let mut r = group.resource.clone();
        let changes = group_patch::apply(&mut r, &group.members, &ops, &|u| has_user(users, u))?;
        let (created, location) = kept_meta(&group.resource);
        self.stamped(org, id, &location, Some(&created), |s| {
            group_schema::after_patch(&mut r, s)
        })?;
        changes.commit(&mut group.members);
        group.resource = r;
        Ok(group.render(users, shown))
    }

    pub fn put_group(
        &self,
        org: &Org,
        id: &str,
        body: Value,
        shown: usize,
    ) -> Result<Value, ScimError> {
        let mut st = lock(&org.state);
        let st = &mut *st;
        let users = &st.users;
        let group = st.groups.get_mut(id)?;
        let (created, location) = kept_meta(&group.resource);
        let input = self.stamped(org, id, &location, Some(&created), |s| {
            group_schema::from_body(body, s, |u| has_user(users, u))
        })?;
        group.resource = input.resource;
        group.members = input.members.into_iter().collect();
        Ok(group.render(users, shown))
    }

    pub fn delete_group(&self, org: &Org, id: &str) -> Result<(), ScimError> {
        let mut st = lock(&org.state);
        let group = st.groups.by_id.remove(id).ok_or_else(|| not_found(id))?;
        st.groups.order.remove(&group.seq);
        Ok(())
    }

    /// Calls `f` with every group of the org, in creation order, with all its members. The org
    /// stays locked meanwhile.
    pub fn for_each_group(&self, org: &Org, mut f: impl FnMut(Value)) {
        let st = lock(&org.state);
        for g in st.groups.in_order() {
            f(g.render(&st.users, usize::MAX));
        }
    }

    /// The member ids of group `id`, in member-page order; `None` for an unknown group.
    pub fn group_member_ids(&self, org: &Org, id: &str) -> Option<Vec<String>> {
        let st = lock(&org.state);
        let group = st.groups.by_id.get(id)?;
        Some(group.members.iter().map(Uuid::to_string).collect())
    }

    /// A deleted user leaves every group it was in; those groups change version.
    pub(super) fn forget_member(&self, st: &mut OrgState, user_id: &str) {
        let Some(user) = parse_user_id(user_id) else {
            return;
        };
        // One timestamp for every group the deletion touches.
        let mut when = None;
        for group in st.groups.by_id.values_mut() {
            if group.members.remove(&user) {
                let when = when.get_or_insert_with(now);
                group_schema::touch(&mut group.resource, self.next_version(), when);
            }
        }
    }
}
