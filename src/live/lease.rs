//! Named leases: one instance at a time runs a periodic job (outbox
//! recovery, the sweeper). Time is cut into periods of the lease's length;
//! the instance that first claims `<name>:<period>` (an insert under a
//! unique `_id`, see `db::claims`) runs the job in that period.

use bson::DateTime;

use crate::db::claims::{Claim, claim};
use crate::db::{Db, DbResult};

pub const COLLECTION: &str = "leases";

/// Whether `owner` holds the lease `name` for the current period of `secs` seconds.
pub async fn take(db: &Db, name: &str, owner: &str, secs: u64) -> DbResult<bool> {
    let length = i64::try_from(secs.max(1).saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    let now = DateTime::now().timestamp_millis();
    let period = now / length;
    let until = DateTime::from_millis((period + 1).saturating_mul(length));
    let key = format!("{name}:{period}");
    Ok(match claim(db, COLLECTION, &key, owner, until).await? {
        Claim::Won => true,
        Claim::Held { owner: holder, .. } => holder == owner,
    })
}
