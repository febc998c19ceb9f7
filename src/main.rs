//! The `alawael` binary: parse the command line and run it.

use clap::Parser;

/// mimalloc instead of the system allocator: a request allocates many small
/// short-lived values (rows, fields, JSON), which glibc's malloc serves
/// slowly under threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    alawael::cli::Cli::parse().run().await
}
