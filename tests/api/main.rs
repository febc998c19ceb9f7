//! The API test suite: every test starts the real application on port 0
//! with its own database on the real FerretDB (or MongoDB) and talks to it
//! through a real socket. Run it with `scripts/test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assets;
mod auth;
mod helpers;
mod limits;
mod pagination;
mod resilience;
mod roles;
mod schema;
mod transport;
mod websockets;
