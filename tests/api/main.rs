//! The API test suite: every test starts the real application on port 0
//! with its own database on the real FerretDB (or MongoDB) and talks to it
//! through a real socket. Run it with `scripts/test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assets;
mod audit;
mod auth;
mod config;
mod helpers;
mod limits;
mod migrations;
mod pagination;
mod resilience;
mod roles;
mod schema;
mod tls;
mod transport;
mod users;
mod websockets;
