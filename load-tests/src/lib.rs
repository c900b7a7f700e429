//! Simulators, synthetic tenants, the oracle and the test kit of dirsync.
//!
//! - [`graph_sim`]: a Microsoft Graph simulator (OAuth token endpoint, `users/delta`,
//!   `groups/delta`, throttling, resets and other faults) over deterministic [`synthetic`]
//!   tenants with change steps applied between cycles.
//! - [`scim_sim`]: a Webex Identity SCIM 2.0 simulator with per-org tokens and counters.
//! - [`serve`]: runs either simulator on a loopback port, in-process or standalone.
//! - [`oracle`]: decides whether the SCIM org converged to the mapping of the tenant.
//! - [`testkit`] and [`fleet`]: isolated resources and a whole running dirsync, for the demo
//!   and the end-to-end tests.
//! - [`scenario`]: the load harness: scenario files, the runner, its reports, and the SCIM
//!   simulator's raw capacity.

pub mod domain_name;
pub mod fleet;
pub mod graph_sim;
pub mod oracle;
pub mod process;
pub mod scenario;
pub mod scim_sim;
pub mod serve;
pub mod synthetic;
pub mod testkit;
