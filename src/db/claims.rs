//! Claims: deciding which of several workers does one thing, by inserting
//! a row under a unique `_id` (the first insert wins; the others get a
//! duplicate-key error). FerretDB's `findAndModify` is not atomic under
//! concurrency, so a conditional update cannot decide this there; an
//! insert can, on FerretDB and MongoDB alike. Claims carry `at`, which the
//! retention sweeper (and a TTL index on MongoDB) uses to remove old ones.

use bson::{DateTime, doc};

use super::{Db, DbResult, duplicate_key};

/// What a claim attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This caller holds it.
    Won,
    /// Someone else does, until `until` (a past `until`: its holder stopped).
    Held { owner: String, until: DateTime },
}

/// Claims `key` in `collection` for `owner` until `until`.
pub async fn claim(
    db: &Db,
    collection: &str,
    key: &str,
    owner: &str,
    until: DateTime,
) -> DbResult<Claim> {
    let claims = db.collection(collection);
    let inserted = claims
        .insert_one(doc! { "_id": key, "owner": owner, "until": until, "at": DateTime::now() })
        .await;
    match inserted {
        Ok(_) => Ok(Claim::Won),
        Err(e) if duplicate_key(&e) => {
            let held = claims
                .find_one(doc! { "_id": key })
                .max_time(db.max_time())
                .await?;
            Ok(match held {
                Some(held) => Claim::Held {
                    owner: held.get_str("owner").unwrap_or_default().to_string(),
                    until: held
                        .get_datetime("until")
                        .copied()
                        .unwrap_or(DateTime::from_millis(0)),
                },
                // Removed between the insert and the read: try again later.
                None => Claim::Held {
                    owner: String::new(),
                    until: DateTime::now(),
                },
            })
        }
        Err(e) => Err(e.into()),
    }
}
