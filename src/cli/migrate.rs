//! `alawael migrate up|down|status`. `up` also seals personal values
//! stored in clear before they were sealed.

use crate::db::{Db, migrations};
use crate::models::registry;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Apply every pending step.
    Up,
    /// Undo the last applied step.
    Down,
    /// List the steps and when each was applied.
    Status,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = super::settings()?;
    let db = Db::connect(&settings.database).await?;
    match args.action {
        Action::Up => {
            let applied = migrations::up(&db, &registry::indexes()).await?;
            let vault = crate::startup::open_vault(&settings, &db)?;
            let sealed =
                crate::models::beneficiary::privacy::seal_clear_values(&db, &vault).await?;
            if sealed.beneficiaries + sealed.sessions > 0 {
                println!(
                    "sealed the values kept in clear of {} beneficiaries and {} session notes",
                    sealed.beneficiaries, sealed.sessions
                );
            }
            if applied.is_empty() {
                println!("nothing to apply: the database is up to date");
            } else {
                println!(
                    "applied: {}",
                    applied
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Action::Down => match migrations::down(&db, &registry::indexes()).await? {
            Some(id) => println!("undone: {id}"),
            None => println!("nothing to undo: no step is applied"),
        },
        Action::Status => {
            for step in migrations::status(&db).await? {
                let when = step
                    .applied_at
                    .map(|t| t.try_to_rfc3339_string().unwrap_or_default())
                    .unwrap_or_else(|| "pending".into());
                println!("{:>3}  {:<28}  {}", step.id, when, step.name);
            }
        }
    }
    Ok(())
}
