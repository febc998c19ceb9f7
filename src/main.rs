//! The `alawael` binary: parse the command line and run it.

use clap::Parser;

/// mimalloc instead of the system allocator: a request allocates many small
/// short-lived values (rows, fields, JSON), which glibc's malloc serves
/// slowly under threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One single-threaded runtime: `serve` starts one more per extra serving
/// thread (`server.threads`), each with its own connections.
fn main() -> anyhow::Result<()> {
    let cli = alawael::cli::Cli::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(cli.run())
}
