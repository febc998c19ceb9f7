//! `alawael seed [--scale N]`: loads the development accounts and assets,
//! then the clinic (programmes, beneficiaries, enrolments, sessions,
//! bookings) N times over. Idempotent: a second run adds nothing.

use std::sync::Arc;
use std::time::Instant;

use clap::Args as ClapArgs;

use crate::db::Db;
use crate::response_cache::ResponseCache;

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
    let vault = crate::startup::open_vault(&settings, &db)?;
    crate::seed::clinic::load(
        &db,
        &vault,
        &settings.seed,
        usize::from(args.scale),
        |line| {
            println!("seeded {line}");
        },
    )
    .await?;
    println!("seeding took {:.1} s", started.elapsed().as_secs_f64());
    stale_cached_answers(&settings, &db).await;
    Ok(())
}

/// The seed writes past the API, so it tells the response cache shared by
/// the servers (Redis) that answers showing the seeded types are stale.
async fn stale_cached_answers(settings: &crate::config::Settings, db: &Db) {
    if settings.redis.url.is_none() || !settings.response_cache.enabled {
        return;
    }
    let taken = match crate::cache::Cache::connect(&settings.redis).await {
        Ok(cache) => {
            ResponseCache::new(Arc::new(cache), settings.response_cache.clone(), db.name())
                .invalidate_types(&crate::models::registry::seeded_types())
                .await
        }
        Err(_) => false,
    };
    if taken {
        println!("cached answers showing seeded data are stale on every server");
    } else {
        println!(
            "warning: Redis did not take the cache invalidation; cached answers expire within {} s",
            settings.response_cache.max_age_cap_secs
        );
    }
}
