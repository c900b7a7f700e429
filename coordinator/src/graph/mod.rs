//! Microsoft Graph: the delta-query client and its wire types.
//!
//! [`wire`] parses a delta page into neutral [`dirsync_proto::SourceUser`]s (pure);
//! [`client`] fetches tokens and pages with retries that honour `Retry-After`, paced by
//! [`pacing`] to stay under Graph's resource-unit budget per app+tenant pair and by
//! [`app_budget`] under the app registration's, shared by the fleet. [`photos`] reads
//! users' profile photos for the avatar pass;
//! [`domains`] lists the tenant's domains for the domain import; [`consent`] revokes the
//! app's consent (deletes its service principal) when an instance is deleted.
//! [`search`] finds users and groups by name for editing the scope. [`synchronization`] reads
//! an enterprise app's provisioning configuration to migrate it. [`user`] reads one user by
//! id or user principal name for "provision on demand".

pub mod app_budget;
pub mod client;
pub mod consent;
pub mod domains;
pub mod groups;
pub mod pacing;
pub mod photos;
pub mod rooms;
pub mod search;
pub mod synchronization;
pub mod user;
pub mod wire;

pub use client::GraphClient;
pub use pacing::{DEFAULT_RU_PER_10S, Pacer};
pub use wire::{DeltaPage, PageLink};
