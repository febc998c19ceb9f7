//! The database reads reports are built from: `$group` sums (one
//! aggregation per sum, joined), and projected finds in bounded batches.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use futures::TryStreamExt;

use super::values::text;
use crate::db::{Db, DbResult};

/// Rows per batch of a find or an aggregation's cursor.
const BATCH: u32 = 1000;

async fn aggregate(db: &Db, collection: &str, pipeline: Vec<Document>) -> DbResult<Vec<Document>> {
    Ok(db
        .collection(collection)
        .aggregate(pipeline)
        .max_time(db.max_time())
        .batch_size(BATCH)
        .await?
        .try_collect()
        .await?)
}

/// Groups the rows matching `matched` by `id`, summing each `(name, value)`
/// (`1` counts). FerretDB 1.24 computes only the first accumulator of a
/// `$group` (the others read 0), so each sum is its own aggregation and the
/// groups are joined on `_id`.
pub async fn grouped(
    db: &Db,
    collection: &str,
    matched: &Document,
    id: Bson,
    sums: &[(&str, Bson)],
) -> DbResult<Vec<Document>> {
    let mut joined: Vec<Document> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for (name, value) in sums {
        let groups = aggregate(
            db,
            collection,
            vec![
                doc! { "$match": matched.clone() },
                doc! { "$group": { "_id": id.clone(), *name: { "$sum": value.clone() } } },
            ],
        )
        .await?;
        for group in groups {
            let key = group.get("_id").cloned().unwrap_or(Bson::Null);
            let at = *position.entry(key.to_string()).or_insert_with(|| {
                joined.push(doc! { "_id": key });
                joined.len() - 1
            });
            let sum = group.get(*name).cloned().unwrap_or(Bson::Int32(0));
            joined[at].insert(*name, sum);
        }
    }
    Ok(joined)
}

pub async fn find(
    db: &Db,
    collection: &str,
    filter: Document,
    projection: Document,
    sort: Document,
    limit: Option<i64>,
) -> DbResult<Vec<Document>> {
    let collection = db.collection(collection);
    let mut find = collection
        .find(filter)
        .projection(projection)
        .sort(sort)
        .batch_size(BATCH)
        .max_time(db.max_time());
    if let Some(limit) = limit {
        find = find.limit(limit);
    }
    Ok(find.await?.try_collect().await?)
}

/// `name` of the rows with these ids.
pub async fn names_of(
    db: &Db,
    collection: &str,
    ids: &[ObjectId],
) -> DbResult<HashMap<ObjectId, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = find(
        db,
        collection,
        doc! { "_id": { "$in": ids } },
        doc! { "name": 1 },
        doc! { "_id": 1 },
        None,
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get_object_id("_id").ok()?, text(r.get("name")))))
        .collect())
}
