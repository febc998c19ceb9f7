//! The API test suite: every test starts the real application on port 0
//! with its own database on the real FerretDB (or MongoDB) and talks to it
//! through a real socket. Run it with `scripts/test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_keys;
mod auth;
mod clinic_roles;
mod clinic_rules;
mod config;
mod contract;
mod graphiql;
mod guarded_reads;
mod holes;
mod idempotency;
mod keys;
mod limits;
mod live;
mod migrations;
pub mod models;
mod pagination;
mod persisted;
mod privacy;
mod quotas;
mod resilience;
mod response_cache;
mod roles;
mod schema;
mod seeds;
mod sessions;
mod support;
mod tls;
mod transport;
mod trusted;
mod websockets;
mod ws_legacy;
