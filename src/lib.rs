//! Alawael: the GraphQL API of a rehabilitation centre's ERP.
//!
//! Requests flow one way: `http` (transport, auth header, documents,
//! caches, admission) → `graphql` (the engine: schema, pagination, loaders,
//! guards, the shared resolvers) → `models` (one folder per model: its
//! record, rules and API; `with_models!` lists them) → `db` (the handle,
//! stores, pages, scopes, migrations) → MongoDB or FerretDB. `events`
//! carries changes to subscriptions; `live` runs the workers (outbox,
//! webhooks, sweeper); `cache` is Redis or in-process; `reports` computes
//! requested reports in the background. See `docs/ARCHITECTURE.md`.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod cursor;
pub mod db;
pub mod documents;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod live;
pub mod models;
pub mod reports;
pub mod response_cache;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
