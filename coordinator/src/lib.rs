//! The dirsync coordinator: tenants, sync runs, Graph enumeration and run tracking.
//!
//! A run of one tenant walks Graph `users/delta` from the tenant's stored deltaLink (or from
//! scratch), publishes each page as one [`dirsync_proto::BatchMessage`] with publisher
//! confirms, waits until every batch's result is recorded in PostgreSQL by the workers, and
//! only then commits the new deltaLink and the run's summary.
//!
//! Layering: [`graph`] talks to Microsoft Graph and owns its wire types; [`broker`] owns the
//! RabbitMQ topology; [`tenants`] and [`runs`] own their tables; [`run`] composes them into
//! one sync run; [`guard`] (pure) and [`reconcile`] hold back its deactivations until the
//! accidental-deletion guard or an operator allows them; [`scheduler`] decides which tenant
//! runs when; [`cli`] is the `dirsync` command line.

pub mod api;
pub mod api_client;
pub mod avatars;
pub mod broker;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod db;
pub mod dead_letters;
pub mod dry_runs;
pub mod error;
pub mod escrow;
pub mod fleet_metrics;
pub mod graph;
pub mod group_objects;
pub mod guard;
pub mod http;
pub mod inflight;
pub mod memberships;
pub mod output;
pub mod provision;
pub mod quarantine;
pub mod readiness;
pub mod reconcile;
pub mod references;
pub mod run;
pub mod runs;
pub mod scheduler;
pub mod scope;
pub mod scope_store;
pub mod tenants;
pub mod webex_api;
pub mod webex_domains;
pub mod webex_org;
pub mod webex_sso;

pub use cloud::Cloud;
pub use config::CoordinatorConfig;
pub use error::CoordinatorError;
pub use run::{RunOutcome, RunProgress, Runner};
pub use tenants::{NewTenant, Tenant, TenantStore};
