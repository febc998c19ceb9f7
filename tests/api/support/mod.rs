//! What the tests share: `spawn_app` and the clients (`helpers`), the
//! clinic built through the API (`clinic`), and headless Chromium (`browser`).

pub mod browser;
pub mod clinic;
pub mod helpers;
