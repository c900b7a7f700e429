//! The neutral form of a user read from Microsoft Graph, as it travels in a batch.
//!
//! The coordinator's Graph client turns wire JSON into this; the worker maps it to SCIM.
//! Properties keep their Graph names (`userPrincipalName`, `givenName`, ...). A property
//! absent from `attributes` was not returned by Graph (never set, or not selected); a
//! property present with `null` was explicitly cleared. The manager relationship
//! (`manager@delta` on the wire) is carried as `attributes["manager"]` holding the
//! manager's Entra object id, or `null` when it was removed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An attribute the coordinator adds, not Graph (Graph property names never hold a dot):
/// `true` on a user that the places API lists as a room, for a tenant that syncs rooms.
pub const ROOM_ATTRIBUTE: &str = "dirsync.room";

/// An attribute the coordinator adds on the entries of its follow-up passes (manager
/// references, avatars): `true` means the entry carries only what that pass applies to a
/// user already in Webex (`manager`, [`PHOTO_ATTRIBUTE`]), not the user's properties; such an
/// entry is not a sighting of the user in Graph.
pub const PARTIAL_ATTRIBUTE: &str = "dirsync.partial";

/// An attribute the coordinator adds for a tenant that syncs avatars: the URL at which
/// dirsync serves the user's Entra photo, or `null` when the user no longer has one.
pub const PHOTO_ATTRIBUTE: &str = "dirsync.photo";

/// Why Graph marked an object `@removed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemovedReason {
    /// Soft delete: the object is in deleted items and can be restored.
    Changed,
    /// Hard delete: the object is gone for good.
    Deleted,
}

/// One user entry of a Graph delta page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceUser {
    /// Entra object id.
    pub id: String,
    /// Set when the entry is an `@removed` tombstone; `attributes` is then usually empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<RemovedReason>,
    /// Graph properties by their Graph names.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

impl SourceUser {
    /// A string property, if present and a string.
    pub fn str_attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    /// A boolean property, if present and a boolean.
    pub fn bool_attr(&self, name: &str) -> Option<bool> {
        self.attributes.get(name).and_then(Value::as_bool)
    }

    /// Whether this is a follow-up pass entry ([`PARTIAL_ATTRIBUTE`]).
    pub fn is_partial(&self) -> bool {
        self.bool_attr(PARTIAL_ATTRIBUTE) == Some(true)
    }

    /// Whether the coordinator identified this user as a room ([`ROOM_ATTRIBUTE`]).
    pub fn is_room(&self) -> bool {
        self.bool_attr(ROOM_ATTRIBUTE) == Some(true)
    }
}
