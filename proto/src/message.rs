//! Versioned messages exchanged over RabbitMQ.
//!
//! A [`BatchMessage`] is one Graph page, self-contained: any worker can process it knowing
//! only the tenant id (credentials are read from PostgreSQL, never carried in messages).
//! A [`BatchResultEvent`] tells the coordinator that a batch's effects are committed.

use serde::{Deserialize, Serialize};

use crate::{Counts, ProtoError, RunId, SourceGroup, SourceUser, TenantId};

/// The wire version this build writes and reads.
pub const WIRE_VERSION: u32 = 1;

/// One page of a run, to be processed by a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchMessage {
    pub version: u32,
    pub tenant_id: TenantId,
    pub run_id: RunId,
    /// Position of the page in the run, from 0; unique per run.
    pub seq: u32,
    pub users: Vec<SourceUser>,
    /// Group objects to sync (a batch of groups carries no users).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<SourceGroup>,
    /// A dry run's batch: the worker reports what it would do and writes nothing to Webex
    /// or to the sync's state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// Published by a worker after the batch's mirror rows and result are committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResultEvent {
    pub version: u32,
    pub tenant_id: TenantId,
    pub run_id: RunId,
    pub seq: u32,
    pub counts: Counts,
}

macro_rules! wire_codec {
    ($ty:ty) => {
        impl $ty {
            pub fn encode(&self) -> Vec<u8> {
                serde_json::to_vec(self).expect("wire messages always serialize")
            }

            pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
                let msg: Self = serde_json::from_slice(bytes)?;
                if msg.version != WIRE_VERSION {
                    return Err(ProtoError::Version {
                        found: msg.version,
                        supported: WIRE_VERSION,
                    });
                }
                Ok(msg)
            }
        }
    };
}

wire_codec!(BatchMessage);
wire_codec!(BatchResultEvent);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RemovedReason;
    use serde_json::json;

    fn sample() -> BatchMessage {
        let mut user = SourceUser {
            id: "u1".into(),
            removed: None,
            attributes: Default::default(),
        };
        user.attributes
            .insert("displayName".into(), json!("Zoë Ólafsdóttir"));
        user.attributes
            .insert("mobilePhone".into(), serde_json::Value::Null);
        BatchMessage {
            version: WIRE_VERSION,
            tenant_id: TenantId::new(),
            run_id: RunId::new(),
            seq: 7,
            users: vec![
                user,
                SourceUser {
                    id: "u2".into(),
                    removed: Some(RemovedReason::Deleted),
                    attributes: Default::default(),
                },
            ],
            groups: Vec::new(),
            dry_run: false,
        }
    }

    #[test]
    fn a_group_batch_round_trips_and_older_batches_read_without_groups() {
        let mut msg = sample();
        msg.users.clear();
        msg.groups = vec![SourceGroup {
            id: "g1".into(),
            removed: None,
            display_name: Some("Équipe Ærø".into()),
            members: vec!["u1".into(), "u2".into()],
        }];
        assert_eq!(BatchMessage::decode(&msg.encode()).unwrap(), msg);
        let users_only = sample();
        let json = String::from_utf8(users_only.encode()).unwrap();
        assert!(!json.contains("groups"), "{json}");
        assert_eq!(BatchMessage::decode(json.as_bytes()).unwrap(), users_only);
    }

    #[test]
    fn batch_round_trips_including_nulls_and_tombstones() {
        let msg = sample();
        assert_eq!(BatchMessage::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        let mut msg = sample();
        msg.version = 99;
        assert!(matches!(
            BatchMessage::decode(&msg.encode()),
            Err(ProtoError::Version { found: 99, .. })
        ));
        assert!(matches!(
            BatchMessage::decode(b"{\"version\":1"),
            Err(ProtoError::Decode(_))
        ));
    }
}
