//! `alawael seed`: loads the development data set from `seeds/`.

use crate::db::Db;

pub async fn run() -> anyhow::Result<()> {
    let settings = super::settings()?;
    settings.check_seed_password()?;
    let db = Db::connect(&settings.database).await?;
    let report = crate::seed::load(&db, &settings.seed).await?;
    println!(
        "seeded: {} users and {} assets added ({} already present)",
        report.users_added, report.assets_added, report.already_present
    );
    Ok(())
}
