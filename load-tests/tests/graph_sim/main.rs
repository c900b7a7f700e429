//! The Graph simulator over HTTP: tokens, delta paging, incremental rounds, `$select`,
//! state-token errors, the admin endpoints, paging quirks, resets, throttling and transient
//! faults, driven with reqwest against a loopback server.

mod errors;
mod faults;
mod harness;
mod quirks;
mod rounds;
