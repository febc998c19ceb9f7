//! Named leases (`leases`): one instance at a time runs a periodic job
//! (outbox recovery, the sweeper). Taking a lease is one `findAndModify`
//! that matches only a free or expired lease (or one this instance holds);
//! the first take of a name inserts it, and a racing insert loses on `_id`.

use bson::{DateTime, doc};
use mongodb::options::ReturnDocument;

use crate::db::{Db, DbResult, duplicate_key};

const COLLECTION: &str = "leases";

/// Takes (or renews) the lease `name` for `owner` for `secs`; whether it is held.
pub async fn take(db: &Db, name: &str, owner: &str, secs: u64) -> DbResult<bool> {
    let now = DateTime::now();
    let until = DateTime::from_millis(
        now.timestamp_millis() + i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2),
    );
    let result = db
        .collection(COLLECTION)
        .find_one_and_update(
            doc! { "_id": name, "$or": [ { "until": { "$lte": now } }, { "owner": owner } ] },
            doc! { "$set": { "owner": owner, "until": until } },
        )
        .upsert(true)
        .return_document(ReturnDocument::After)
        .max_time(db.max_time())
        .await;
    match result {
        Ok(found) => Ok(found.is_some()),
        Err(e) if duplicate_key(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
