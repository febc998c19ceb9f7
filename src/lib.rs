//! Alawael: the GraphQL API of a rehabilitation centre's ERP.
//!
//! Requests flow one way: `http` (transport, auth header, limits) →
//! `graphql` (one file per model: types, guards, resolvers) → `db` (one file
//! per collection; row rules and queries live here) → MongoDB or FerretDB.
//! `events` carries changes to subscriptions; `cache` is Redis or in-process;
//! `reports` is the background worker that computes requested reports.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod cursor;
pub mod db;
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
pub mod trusted;
