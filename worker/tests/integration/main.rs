//! Integration tests of the worker against real PostgreSQL, Redis and RabbitMQ (see
//! `common` for how each test gets its own database, key prefix and queue names).

mod common;
mod counters;
mod deferrals;
mod fake_scim;
mod harness;
mod push;
mod ratelimit;
mod record;
mod sealed_token;
mod telemetry;
mod tenant_failure;
mod worker_e2e;
