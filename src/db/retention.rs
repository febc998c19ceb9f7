//! Bounded deletion of old rows, for the retention sweeper: ids first (at
//! most `limit`, oldest first), then one delete by id, so one sweep step
//! never holds the database for long.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;

use super::{Db, DbResult};

/// Deletes up to `limit` rows of `collection` whose `field` is before `before`.
pub async fn delete_older(
    db: &Db,
    collection: &str,
    field: &str,
    before: DateTime,
    limit: u32,
) -> DbResult<u64> {
    let collection = db.collection(collection);
    let found: Vec<Document> = collection
        .find(doc! { field: { "$lt": before } })
        .projection(doc! { "_id": 1 })
        .sort(doc! { field: 1 })
        .limit(i64::from(limit.max(1)))
        .max_time(db.max_time())
        .await?
        .try_collect()
        .await?;
    let ids: Vec<ObjectId> = found
        .iter()
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(collection
        .delete_many(doc! { "_id": { "$in": ids } })
        .await?
        .deleted_count)
}
