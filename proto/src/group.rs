//! The neutral form of an Entra group to sync as a Webex group object ("sync group objects"),
//! and the group outcome counters.

use serde::{Deserialize, Serialize};

use crate::RemovedReason;

/// One chosen group as the coordinator wants it in Webex: its name and the complete list of
/// its user members. A worker makes the Webex group match it, member by member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceGroup {
    /// Entra object id (the Webex group's `externalId`).
    pub id: String,
    /// Set when the group is deleted in Entra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<RemovedReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Entra ids of its direct user members, all of them.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Group outcomes: synced (Webex matches), to be synced (some members are not in Webex
/// yet; a later run completes the group) or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    pub synced: u64,
    pub pending: u64,
    pub failed: u64,
}

impl GroupCounts {
    pub fn add(&mut self, other: GroupCounts) {
        self.synced += other.synced;
        self.pending += other.pending;
        self.failed += other.failed;
    }

    pub fn total(&self) -> u64 {
        self.synced + self.pending + self.failed
    }
}
