//! The SCIM 2.0 side: path parsing, request bodies (the user resource in `resource.rs`), Bulk requests, wire types, retries and the
//! client (users, and groups in `groups.rs`).

pub mod body;
pub mod bulk;
pub mod client;
pub mod groups;
pub mod path;
pub mod resource;
pub mod retry;
pub mod wire;

pub use body::patch_request;
pub use bulk::{BulkOperation, BulkOutcome, BulkRequest, MAX_BULK_OPERATIONS};
pub use client::{BulkSupport, ScimClient, http_client};
pub use resource::{UserBody, user_resource};
pub use retry::{RetryPolicy, parse_retry_after};
pub use wire::UserResource;
