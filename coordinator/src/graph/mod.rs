//! Microsoft Graph: the delta-query client and its wire types.
//!
//! [`wire`] parses a delta page into neutral [`dirsync_proto::SourceUser`]s (pure);
//! [`client`] fetches tokens and pages with retries that honour `Retry-After`.

pub mod client;
pub mod wire;

pub use client::GraphClient;
pub use wire::{DeltaPage, PageLink};
