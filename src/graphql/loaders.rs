//! Per-request dataloaders: one per relation, so a page of rows costs one
//! batched `find` per level, not one query per row. `ById<T>` serves any
//! stored model; a relation declares only its alias here.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use bson::oid::ObjectId;

use crate::db::store::{Record, Store};
use crate::db::users::UserRecord;
use crate::db::{Db, DbError};

/// Loads records of one model by id, in one `$in` query per batch.
pub struct ById<T> {
    db: Db,
    record: PhantomData<fn() -> T>,
}

impl<T: Record> ById<T> {
    /// A fresh loader with its per-request cache (a prefetched page is reused).
    pub fn cached(db: Db) -> DataLoader<Self, HashMapCache> {
        DataLoader::with_cache(
            Self {
                db,
                record: PhantomData,
            },
            tokio::spawn,
            HashMapCache::default(),
        )
    }
}

impl<T: Record> Loader<ObjectId> for ById<T> {
    type Value = T;
    type Error = Arc<DbError>;

    async fn load(&self, keys: &[ObjectId]) -> Result<HashMap<ObjectId, T>, Self::Error> {
        let found = Store::<T>::new(&self.db)
            .get_many(keys)
            .await
            .map_err(Arc::new)?;
        Ok(found.into_iter().map(|r| (r.id(), r)).collect())
    }
}

/// Users by id (`Asset.assignedTo`, and every later `→ User`).
pub type Users = DataLoader<ById<UserRecord>, HashMapCache>;
