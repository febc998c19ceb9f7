//! The development data set in `seeds/` (compiled into the binary): four
//! accounts, one per role, and 120 assets across categories. Loading is
//! idempotent: rows already present (by e-mail, by serial number) are kept.
//!
//! Each model's rows are built by its `seed.rs` (`models::<model>::seed`);
//! this module parses the files, walks them, and keeps what the generators
//! share: stable ids, picking from a list, times of day.

pub mod clinic;

use crate::auth::password;
use crate::config::SeedSettings;
use crate::db::Db;
use crate::domain::Email;
use crate::models::asset::seed::{self as asset_seed, SeedAsset};
pub(crate) use crate::models::seeding::{at, pick, seed_id};
use crate::models::user::seed::{self as user_seed, SeedUser};
use secrecy::ExposeSecret;

const USERS: &str = include_str!("../../seeds/users.json");
const ASSETS: &str = include_str!("../../seeds/assets.json");

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub users_added: usize,
    pub assets_added: usize,
    pub already_present: usize,
}

pub async fn load(db: &Db, settings: &SeedSettings) -> anyhow::Result<SeedReport> {
    load_parts(db, settings, true).await
}

/// Loads the accounts, and the assets when `with_assets` (tests skip them).
pub async fn load_parts(
    db: &Db,
    settings: &SeedSettings,
    with_assets: bool,
) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    let users: Vec<SeedUser> = serde_json::from_str(USERS)?;
    let hash = password::hash(settings.password.expose_secret().to_string()).await?;
    for user in users {
        let email = Email::parse(&user.email)
            .map_err(|m| anyhow::anyhow!("seed user {}: {m}", user.email))?;
        if db.users().find_by_email(&email).await?.is_some() {
            report.already_present += 1;
            continue;
        }
        db.users()
            .create(user_seed::account(user, email, hash.clone()))
            .await?;
        report.users_added += 1;
    }
    if !with_assets {
        return Ok(report);
    }
    let assets: Vec<SeedAsset> = serde_json::from_str(ASSETS)?;
    for asset in assets {
        let assigned_to = match &asset.assigned_to {
            Some(email) => {
                let email = Email::parse(email)
                    .map_err(|m| anyhow::anyhow!("seed asset {}: {m}", asset.name))?;
                db.users().find_by_email(&email).await?.map(|u| u.id)
            }
            None => None,
        };
        let added = db
            .assets()
            .upsert_seed(asset_seed::asset(asset, assigned_to)?)
            .await?;
        if added {
            report.assets_added += 1;
        } else {
            report.already_present += 1;
        }
    }
    Ok(report)
}
