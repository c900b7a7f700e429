//! The Graph simulator over HTTP: tokens, delta paging, incremental rounds, `$select`,
//! state-token errors, the admin endpoints, paging quirks, resets, throttling, transient
//! faults, groups with `members@delta` slices and `$filter=id eq`, driven with reqwest against
//! a loopback server.

mod errors;
mod faults;
mod filter;
mod groups;
mod harness;
mod quirks;
mod rounds;
