//! The `alawael` command line: one subcommand per file, each with its
//! options and a `run`.

pub mod apikey;
pub mod audit;
pub mod documents;
pub mod keys;
pub mod migrate;
pub mod schema;
pub mod seed;
pub mod serve;

use clap::{Parser, Subcommand};

/// Alawael ERP: the GraphQL API of the rehabilitation centre.
#[derive(Debug, Parser)]
#[command(name = "alawael", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (HTTP, or HTTPS when a certificate is configured).
    Serve(serve::Args),
    /// Apply, undo or list database migrations.
    Migrate(migrate::Args),
    /// Load the development seed data (idempotent); `--scale N` multiplies the clinic.
    Seed(seed::Args),
    /// Print the GraphQL schema (SDL) to stdout; needs no database.
    Schema,
    /// Check the audit log's hash chain.
    Audit(audit::Args),
    /// Add, list or remove the trusted documents kept in Redis.
    Documents(documents::Args),
    /// Generate, count or rotate the master keys that wrap personal data keys.
    Keys(keys::Args),
    /// Create, list or revoke the API keys of partner systems.
    Apikey(apikey::Args),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Schema => schema::run(),
            Command::Serve(args) => serve::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Seed(args) => seed::run(args).await,
            Command::Audit(args) => audit::run(args).await,
            Command::Documents(args) => documents::run(args).await,
            Command::Keys(args) => keys::run(args).await,
            Command::Apikey(args) => apikey::run(args).await,
        }
    }
}

/// Settings and logging for the subcommands that need them.
fn settings() -> anyhow::Result<crate::config::Settings> {
    let settings = crate::config::load()?;
    crate::telemetry::init(settings.environment);
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
