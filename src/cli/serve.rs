//! `alawael serve [--bind ADDR]`.

use crate::startup::Application;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8080 (default: server.bind).
    #[arg(long)]
    pub bind: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = super::settings()?;
    let app = Application::build(settings, args.bind.as_deref()).await?;
    tracing::info!(address = %app.address(), "Alawael API listening");
    app.run_until_stopped().await
}
