//! Per-request dataloaders: one per relation, so a page of rows costs one
//! batched `find` per level, not one query per row.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use bson::oid::ObjectId;

use crate::db::Db;
use crate::db::DbError;
use crate::db::users::UserRecord;

/// The per-request user loader, with its cache (a prefetched page is reused).
pub type Users =
    async_graphql::dataloader::DataLoader<UserLoader, async_graphql::dataloader::HashMapCache>;

/// Loads users by id (`Asset.assignedTo`, and every later `→ User`).
pub struct UserLoader {
    pub db: Db,
}

impl Loader<ObjectId> for UserLoader {
    type Value = UserRecord;
    type Error = std::sync::Arc<DbError>;

    async fn load(&self, keys: &[ObjectId]) -> Result<HashMap<ObjectId, UserRecord>, Self::Error> {
        let users = self
            .db
            .users()
            .get_many(keys)
            .await
            .map_err(std::sync::Arc::new)?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}
