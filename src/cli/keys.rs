//! `alawael keys`: the master keys that wrap every person's data key.
//! `generate` prints a new master key; `status` counts the keys each master
//! key wraps; `rotate` rewraps them all with the current master key
//! (resumable, audited, with a progress bar), while the API keeps serving.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use crate::db::Db;
use crate::domain::Actor;
use crate::models::audit_log_entry::changes::Change;
use crate::models::audit_log_entry::entry::NewEntry;
use crate::vault::{MasterKeys, rotate};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print a new random master key (`id:base64`) to give as ALAWAEL_MASTER_KEY.
    Generate {
        /// The key's id (letters, digits, `-`, `_`), e.g. the month it starts.
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// How many data keys each master key wraps.
    Status,
    /// Rewrap every data key with the first master key given. Give the new
    /// key first and the old one after it (`ALAWAEL_MASTER_KEY=new:..,old:..`)
    /// to the servers and to this command; drop the old one once this has
    /// finished. Run again after a crash: it resumes.
    Rotate,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Action::Generate { id } = &args.action {
        let key = MasterKeys::generate(id);
        MasterKeys::parse(&key)?;
        println!("{key}");
        return Ok(());
    }
    let settings = super::settings()?;
    let db = Db::connect(&settings.database).await?;
    let vault = crate::startup::open_vault(&settings, &db)?;
    match args.action {
        Action::Generate { .. } => Ok(()),
        Action::Status => {
            println!("the current master key is `{}`", vault.masters().current());
            for (master, count) in vault.status().await? {
                println!("{count} keys wrapped by `{master}`");
            }
            Ok(())
        }
        Action::Rotate => rotate_all(&db, &vault).await,
    }
}

async fn audit(db: &Db, action: &str, changes: Vec<Change>) -> anyhow::Result<()> {
    db.audit()
        .append(NewEntry {
            id: None,
            actor: Actor::system(),
            action: action.into(),
            entity_type: "MasterKey".into(),
            entity_id: None,
            changes,
            request_id: None,
        })
        .await?;
    Ok(())
}

async fn rotate_all(db: &Db, vault: &crate::vault::Vault) -> anyhow::Result<()> {
    let current = vault.masters().current().to_string();
    let remaining = rotate::remaining(vault).await?;
    if remaining == 0 {
        println!("every key is already wrapped by `{current}`");
        return Ok(());
    }
    audit(
        db,
        "keys.rotate.start",
        vec![
            Change::new("master", bson::Bson::Null, current.clone().into()),
            Change::new(
                "remaining",
                bson::Bson::Null,
                bson::Bson::Int64(i64::try_from(remaining).unwrap_or(i64::MAX)),
            ),
        ],
    )
    .await?;
    let bar = Arc::new(ProgressBar::new(remaining));
    bar.set_style(
        ProgressStyle::with_template("rewrapping {bar:40} {pos}/{len} keys ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let shown = bar.clone();
    let done = rotate::rotate(vault, move |n| shown.set_position(n)).await?;
    bar.finish();
    audit(
        db,
        "keys.rotate.finish",
        vec![
            Change::new("master", bson::Bson::Null, current.clone().into()),
            Change::new(
                "rewrapped",
                bson::Bson::Null,
                bson::Bson::Int64(i64::try_from(done).unwrap_or(i64::MAX)),
            ),
        ],
    )
    .await?;
    println!(
        "{done} keys rewrapped; every key is now wrapped by `{current}`; the old master key may go"
    );
    Ok(())
}
