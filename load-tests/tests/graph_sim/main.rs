//! The Graph simulator over HTTP: tokens, delta paging, incremental rounds, `$select`,
//! state-token errors and the admin endpoints, driven with reqwest against a loopback server.

mod errors;
mod harness;
mod rounds;
