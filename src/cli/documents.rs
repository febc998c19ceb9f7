//! `alawael documents add FILE | list | remove ID`: the trusted documents
//! kept in Redis, which servers with `documents.from_redis` load (at start,
//! on SIGHUP, and when this command announces a change).

use std::path::PathBuf;

use secrecy::ExposeSecret;

use crate::documents::trusted::manifest::normalise_id;
use crate::documents::trusted::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Add the operations of a manifest (Apollo's persisted-query manifest or
    /// GraphQL Code Generator's persisted-documents.json); every id must be
    /// the SHA-256 of its body, or nothing is added.
    Add { file: PathBuf },
    /// Print the stored documents: id, type and name, one per line.
    List,
    /// Remove the document with this id (`<hex>` or `sha256:<hex>`).
    Remove { id: String },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = super::settings()?;
    let options =
        mongodb::options::ClientOptions::parse(settings.database.uri.expose_secret()).await?;
    let database = crate::db::database_name(&options);
    match args.action {
        Action::Add { file } => {
            let operations = crate::documents::trusted::read_manifest(&file)?;
            let mut store = Store::open(&settings, &database).await?;
            let added = store.add(&operations).await?;
            println!(
                "added {added} trusted document(s) ({} already stored)",
                operations.len() - added
            );
        }
        Action::List => {
            let mut store = Store::open(&settings, &database).await?;
            for op in store.list().await? {
                println!(
                    "{}\t{}\t{}",
                    op.id,
                    op.kind,
                    op.name.as_deref().unwrap_or("-")
                );
            }
        }
        Action::Remove { id } => {
            let Some(hex) = normalise_id(&id) else {
                anyhow::bail!("{id:?} is not a document id (64 hexadecimal characters)");
            };
            let mut store = Store::open(&settings, &database).await?;
            if !store.remove(&hex).await? {
                anyhow::bail!("no trusted document {hex} is stored");
            }
            println!("removed {hex}");
        }
    }
    Ok(())
}
