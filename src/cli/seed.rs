//! `alawael seed [--scale N]`: loads the development accounts and assets,
//! then the clinic (programmes, beneficiaries, enrolments, sessions,
//! bookings) N times over. Idempotent: a second run adds nothing.

use std::time::Instant;

use clap::Args as ClapArgs;

use crate::db::Db;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// How many times to repeat the clinic data set (1 = 8 programmes, 64 beneficiaries).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub scale: u16,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = super::settings()?;
    settings.check_seed_password()?;
    let db = Db::connect(&settings.database).await?;
    let started = Instant::now();
    let report = crate::seed::load(&db, &settings.seed).await?;
    println!(
        "seeded: {} users and {} assets added ({} already present)",
        report.users_added, report.assets_added, report.already_present
    );
    crate::seed::clinic::load(&db, &settings.seed, usize::from(args.scale), |line| {
        println!("seeded {line}");
    })
    .await?;
    println!("seeding took {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
