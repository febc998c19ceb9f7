//! The key store: every person's data key, wrapped by a master key, in a
//! database of its own (`vault.database`), so backups of the data never
//! carry the keys that open it and erasure (deleting a key) reaches them.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, doc};
use futures::TryStreamExt;

use crate::db::{Db, DbResult};

pub const COLLECTION: &str = "data_keys";

/// A stored key: whose, which, wrapped by which master key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: Bson,
    pub key_id: String,
    pub master: String,
    pub wrapped: Vec<u8>,
}

impl StoredKey {
    fn from_document(document: &Document) -> Option<Self> {
        Some(Self {
            id: document.get("_id")?.clone(),
            key_id: document.get_str("keyId").ok()?.to_string(),
            master: document.get_str("master").ok()?.to_string(),
            wrapped: document.get_binary_generic("wrapped").ok()?.clone(),
        })
    }

    fn to_document(&self) -> Document {
        doc! {
            "_id": self.id.clone(),
            "keyId": &self.key_id,
            "master": &self.master,
            "wrapped": Binary { subtype: BinarySubtype::Generic, bytes: self.wrapped.clone() },
            "createdAt": DateTime::now(),
        }
    }
}

/// The key store's collection.
#[derive(Clone)]
pub struct KeyStore {
    db: Db,
}

impl KeyStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn keys(&self) -> mongodb::Collection<Document> {
        self.db.collection(COLLECTION)
    }

    /// The stored keys of these ids, in one command.
    pub async fn find(&self, ids: &[Bson]) -> DbResult<HashMap<String, StoredKey>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found: Vec<Document> = self
            .keys()
            .find(doc! { "_id": { "$in": ids } })
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        Ok(found
            .iter()
            .filter_map(StoredKey::from_document)
            .map(|k| (k.id.to_string(), k))
            .collect())
    }

    /// Stores new keys, keeping any already there (another writer won the
    /// race); the caller reads back what is stored.
    pub async fn insert(&self, keys: &[StoredKey]) -> DbResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let documents: Vec<Document> = keys.iter().map(StoredKey::to_document).collect();
        match self.keys().insert_many(documents).ordered(false).await {
            Ok(_) => Ok(()),
            Err(error) if crate::db::duplicate_key(&error) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes a key; whether there was one.
    pub async fn delete(&self, id: ObjectId) -> DbResult<bool> {
        Ok(self
            .keys()
            .delete_one(doc! { "_id": id })
            .await?
            .deleted_count
            > 0)
    }

    /// Up to `limit` keys not yet wrapped by `master`.
    pub async fn wrapped_by_others(&self, master: &str, limit: i64) -> DbResult<Vec<StoredKey>> {
        let found: Vec<Document> = self
            .keys()
            .find(doc! { "master": { "$ne": master } })
            .sort(doc! { "_id": 1 })
            .limit(limit)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        Ok(found.iter().filter_map(StoredKey::from_document).collect())
    }

    /// Replaces a key's wrapping, if it is still wrapped by `from`; whether it was.
    pub async fn rewrap(
        &self,
        key: &StoredKey,
        from: &str,
        to: &str,
        wrapped: Vec<u8>,
    ) -> DbResult<bool> {
        let result = self
            .keys()
            .update_one(
                doc! { "_id": key.id.clone(), "master": from },
                doc! { "$set": {
                    "master": to,
                    "wrapped": Binary { subtype: BinarySubtype::Generic, bytes: wrapped },
                    "rotatedAt": DateTime::now(),
                } },
            )
            .await?;
        Ok(result.modified_count > 0)
    }

    /// How many keys each master key wraps.
    pub async fn count_by_master(&self) -> DbResult<Vec<(String, u64)>> {
        let found: Vec<Document> = self
            .keys()
            .find(doc! {})
            .projection(doc! { "master": 1 })
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        let mut counts: Vec<(String, u64)> = Vec::new();
        for document in found {
            let master = document.get_str("master").unwrap_or("?").to_string();
            match counts.iter_mut().find(|(m, _)| *m == master) {
                Some((_, n)) => *n += 1,
                None => counts.push((master, 1)),
            }
        }
        Ok(counts)
    }
}
