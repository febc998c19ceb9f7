//! `alawael audit verify`: walks the hash chain and names the first bad entry.

use crate::db::Db;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Check every entry's hash and link; exit 1 at the first that does not hold.
    Verify,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = super::settings()?;
    let db = Db::connect(&settings.database).await?;
    match args.action {
        Action::Verify => match db.audit().verify().await? {
            None => {
                println!("the audit chain holds");
                Ok(())
            }
            Some(breach) => anyhow::bail!(
                "audit entry {} does not hold: {}",
                breach.seq,
                breach.reason
            ),
        },
    }
}
