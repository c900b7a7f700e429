//! Pure data shared by the dirsync coordinator and workers.
//!
//! Nothing in this crate does I/O: it holds the versioned wire messages that travel over
//! RabbitMQ, the neutral representation of a directory object read from Graph, the outcome
//! counters, the names of the broker and Redis resources and the Lua scripts of the Redis
//! rate limits (`gcra`), and the sealing of tenant secrets at rest (`sealed`, whose nonces
//! come from the operating system's random source), so that the coordinator and the worker
//! agree on them without depending on each other.

pub mod counts;
pub mod error;
pub mod expr;
pub mod gcra;
pub mod group;
pub mod hosts;
pub mod ids;
pub mod mapping;
pub mod message;
pub mod sealed;
pub mod source;
pub mod topology;

pub use counts::Counts;
pub use error::ProtoError;
pub use gcra::{GCRA_PAUSE, GCRA_RESERVE, GcraRate};
pub use group::{GroupCounts, SourceGroup};
pub use hosts::AllowedHosts;
pub use ids::{RunId, TenantId};
pub use message::{BatchMessage, BatchResultEvent, WIRE_VERSION};
pub use sealed::{SecretField, SecretsKey};
pub use source::{PARTIAL_ATTRIBUTE, PHOTO_ATTRIBUTE, ROOM_ATTRIBUTE, RemovedReason, SourceUser};
pub use topology::{QueueArgument, RUN_COUNTS_ADD_ONCE, RUN_COUNTS_TTL, Topology};
