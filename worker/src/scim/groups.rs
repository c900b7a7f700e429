//! Group operations of the SCIM client: create, find, member changes, rename, delete.
//!
//! Memberships change only by PATCH `add`/`remove` of at most [`MAX_MEMBERS_PER_OP`] members
//! per request, never by PUT (a PUT without `members` empties a Webex group). Removal uses
//! Entra's form (`path: members` with a `value` list), which Webex accepts for many members
//! at once; the request bodies are pure functions, tested below.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::ScimClient;
use super::wire::{ListResponse, PATCH_OP_SCHEMA, filter_string, json_bytes};
use crate::error::WorkerError;

pub const CORE_GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Most members one Webex group operation may name (webex-scim.md §7).
pub const MAX_MEMBERS_PER_OP: usize = 500;

/// The part of a SCIM group resource the worker needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupResource {
    #[serde(deserialize_with = "super::wire::resource_id")]
    pub id: String,
    #[serde(rename = "externalId", default)]
    pub external_id: Option<String>,
}

/// `POST /Groups` body: name, our external id, and the first members (at most
/// [`MAX_MEMBERS_PER_OP`]; the caller adds the rest by PATCH).
pub fn group_resource(display_name: &str, external_id: &str, members: &[String]) -> Value {
    let members: Vec<Value> = members
        .iter()
        .take(MAX_MEMBERS_PER_OP)
        .map(|id| json!({ "value": id, "type": "user" }))
        .collect();
    json!({
        "schemas": [CORE_GROUP_SCHEMA],
        "displayName": display_name,
        "externalId": external_id,
        "members": members,
    })
}

/// PATCH bodies adding `add` and removing `remove`, one operation of at most
/// [`MAX_MEMBERS_PER_OP`] members per request; removals first, so a group near its size
/// limit makes room before it grows.
pub fn member_patches(add: &[String], remove: &[String]) -> Vec<Value> {
    let op = |op: &str, ids: &[String]| {
        let value: Vec<Value> = ids
            .iter()
            .map(|id| {
                if op == "add" {
                    json!({ "value": id, "type": "user" })
                } else {
                    json!({ "value": id })
                }
            })
            .collect();
        json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{ "op": op, "path": "members", "value": value }],
        })
    };
    remove
        .chunks(MAX_MEMBERS_PER_OP)
        .map(|ids| op("remove", ids))
        .chain(add.chunks(MAX_MEMBERS_PER_OP).map(|ids| op("add", ids)))
        .collect()
}

/// PATCH body renaming a group.
pub fn rename_patch(display_name: &str) -> Value {
    json!({
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{ "op": "replace", "path": "displayName", "value": display_name }],
    })
}

impl ScimClient {
    /// `POST /Groups` with the first members; the rest by [`Self::change_members`].
    pub async fn create_group(
        &self,
        display_name: &str,
        external_id: &str,
        members: &[String],
    ) -> Result<GroupResource, WorkerError> {
        let body = group_resource(display_name, external_id, members);
        let created = self
            .send(
                Method::POST,
                self.url(&["Groups"]),
                Some(&json_bytes(&body)),
            )
            .await?;
        let group: GroupResource = serde_json::from_slice(&created)
            .map_err(|e| WorkerError::ScimResponse(format!("create group: {e}")))?;
        if members.len() > MAX_MEMBERS_PER_OP {
            self.change_members(&group.id, &members[MAX_MEMBERS_PER_OP..], &[])
                .await?;
        }
        Ok(group)
    }

    /// The org's group named `display_name` that carries `external_id`, if any: Webex allows
    /// several groups with one name, and only ours may be adopted.
    pub async fn find_group(
        &self,
        display_name: &str,
        external_id: &str,
    ) -> Result<Option<GroupResource>, WorkerError> {
        let mut url = self.url(&["Groups"]);
        url.query_pairs_mut()
            .append_pair(
                "filter",
                &format!("displayName eq {}", filter_string(display_name)),
            )
            .append_pair("excludedAttributes", "members");
        let body = self.send(Method::GET, url, None).await?;
        let list: ListResponse<GroupResource> = serde_json::from_slice(&body)
            .map_err(|e| WorkerError::ScimResponse(format!("search groups: {e}")))?;
        Ok(list
            .resources
            .into_iter()
            .find(|g| g.external_id.as_deref() == Some(external_id)))
    }

    /// Adds and removes members by PATCH, [`MAX_MEMBERS_PER_OP`] per request.
    pub async fn change_members(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), WorkerError> {
        for body in member_patches(add, remove) {
            self.send(
                Method::PATCH,
                self.url(&["Groups", id]),
                Some(&json_bytes(&body)),
            )
            .await?;
        }
        Ok(())
    }

    /// Renames a group.
    pub async fn rename_group(&self, id: &str, display_name: &str) -> Result<(), WorkerError> {
        let body = rename_patch(display_name);
        self.send(
            Method::PATCH,
            self.url(&["Groups", id]),
            Some(&json_bytes(&body)),
        )
        .await
        .map(drop)
    }

    /// `DELETE /Groups/{id}`.
    pub async fn delete_group(&self, id: &str) -> Result<(), WorkerError> {
        self.send(Method::DELETE, self.url(&["Groups", id]), None)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize, prefix: &str) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn a_new_group_carries_at_most_500_members() {
        let body = group_resource("Équipe", "g1", &ids(501, "u"));
        assert_eq!(body["schemas"][0], CORE_GROUP_SCHEMA);
        assert_eq!(body["displayName"], "Équipe");
        assert_eq!(body["externalId"], "g1");
        let members = body["members"].as_array().unwrap();
        assert_eq!(members.len(), 500);
        assert_eq!(members[0], json!({"value": "u0", "type": "user"}));
    }

    #[test]
    fn member_changes_are_chunked_removals_first() {
        let patches = member_patches(&ids(1_001, "a"), &ids(2, "r"));
        let shape: Vec<(String, usize)> = patches
            .iter()
            .map(|p| {
                let op = &p["Operations"][0];
                assert_eq!(op["path"], "members");
                (
                    op["op"].as_str().unwrap().to_string(),
                    op["value"].as_array().unwrap().len(),
                )
            })
            .collect();
        let want = [("remove", 2), ("add", 500), ("add", 500), ("add", 1)]
            .map(|(op, n)| (op.to_string(), n));
        assert_eq!(shape, want);
        assert_eq!(
            patches[0]["Operations"][0]["value"][0],
            json!({"value": "r0"})
        );
        assert_eq!(
            patches[1]["Operations"][0]["value"][0],
            json!({"value": "a0", "type": "user"})
        );
        assert!(member_patches(&[], &[]).is_empty());
    }

    #[test]
    fn rename_replaces_the_display_name() {
        let body = rename_patch("New");
        assert_eq!(body["schemas"][0], PATCH_OP_SCHEMA);
        assert_eq!(
            body["Operations"][0],
            json!({"op": "replace", "path": "displayName", "value": "New"})
        );
    }
}
