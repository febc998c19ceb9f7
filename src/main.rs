//! The `alawael` binary: parse the command line and run it.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    alawael::cli::Cli::parse().run().await
}
