//! What every collection needs, typed by its record: read by id, find one,
//! load many in one command, a keyset page, a lazy count, insert, `$set`
//! returning the document after, delete. Each model's file declares its
//! records, filters and rules and delegates the plumbing here. Every read
//! carries the configured time limit.

use std::marker::PhantomData;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Document, RawDocument, RawDocumentBuf, doc};
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::options::{FindOneAndUpdateOptions, ReturnDocument};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::page::{self, Page, Sort, Window};
use super::{Db, DbError, DbResult};

/// A validated change to a stored record: each field `None` leaves the
/// stored one as it is, `Some(None)` clears an optional one. The `$set` is
/// derived from it (serialised under the stored names), so no update builds
/// its document by hand. Fields are `#[serde(skip_serializing_if =
/// "Option::is_none")]`.
pub trait ForUpdate: Serialize {
    /// The `$set` document.
    fn to_set(&self) -> DbResult<Document> {
        Ok(bson::to_document(self)?)
    }
}

/// A stored model: its collection and its id. Declaring this is what a new
/// model needs for `Store` and for a dataloader by id.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const COLLECTION: &'static str;
    fn id(&self) -> ObjectId;

    /// Decodes a raw stored document into the record (serde by default;
    /// records read by the hundred read their fields directly, `db::raw`).
    fn from_raw(document: &RawDocument) -> DbResult<Self> {
        page::decode_raw(document)
    }
}

pub struct Store<T> {
    collection: Collection<Document>,
    max_time: Duration,
    record: PhantomData<fn() -> T>,
}

/// A count to run later (a connection's `totalCount`, only when asked for).
#[derive(Clone)]
pub struct CountQuery {
    collection: Option<Collection<Document>>,
    filter: Document,
    max_time: Duration,
}

impl CountQuery {
    pub async fn run(&self) -> DbResult<u64> {
        match &self.collection {
            Some(collection) => page::count(collection, self.filter.clone(), self.max_time).await,
            None => Ok(0),
        }
    }

    /// A count known to be zero (a scope that admits nothing): no command.
    pub fn zero() -> Self {
        Self {
            collection: None,
            filter: Document::new(),
            max_time: Duration::ZERO,
        }
    }
}

impl<T: Record> Store<T> {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(T::COLLECTION),
            max_time: db.max_time(),
            record: PhantomData,
        }
    }

    /// The untyped collection, for the model's own queries.
    pub fn collection(&self) -> &Collection<Document> {
        &self.collection
    }

    /// The collection read as raw BSON: rows are decoded once, straight
    /// into records, without an intermediate `Document`.
    fn raw(&self) -> Collection<RawDocumentBuf> {
        self.collection.clone_with_type()
    }

    pub fn max_time(&self) -> Duration {
        self.max_time
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<T>> {
        self.find_one(doc! { "_id": id }).await
    }

    pub async fn find_one(&self, filter: Document) -> DbResult<Option<T>> {
        self.find_one_raw(filter)
            .await?
            .map(|d| T::from_raw(&d))
            .transpose()
    }

    /// The stored document matching `filter`, undecoded.
    pub async fn find_one_raw(&self, filter: Document) -> DbResult<Option<RawDocumentBuf>> {
        Ok(self.raw().find_one(filter).max_time(self.max_time).await?)
    }

    /// Loads the records with these ids in one command (a dataloader's batch).
    pub async fn get_many(&self, ids: &[ObjectId]) -> DbResult<Vec<T>> {
        self.find_by_ids(ids)
            .await?
            .iter()
            .map(|d| T::from_raw(d))
            .collect()
    }

    /// The stored documents with these ids, undecoded, in one command (the
    /// first batch holds them all, so no `getMore` follows; a negative limit
    /// would be capped at the server's default first batch of 101).
    pub async fn find_by_ids(&self, ids: &[ObjectId]) -> DbResult<Vec<RawDocumentBuf>> {
        let size = u32::try_from(ids.len().max(1)).map_err(|e| DbError::Other(e.into()))?;
        Ok(self
            .raw()
            .find(doc! { "_id": { "$in": ids } })
            .limit(i64::from(size))
            .batch_size(size)
            .max_time(self.max_time)
            .await?
            .try_collect()
            .await?)
    }

    pub async fn page(&self, filter: Document, sort: Sort, window: Window) -> DbResult<Page<T>> {
        page::fetch(&self.collection, filter, sort, window, self.max_time).await
    }

    pub fn count_query(&self, filter: Document) -> CountQuery {
        CountQuery {
            collection: Some(self.collection.clone()),
            filter,
            max_time: self.max_time,
        }
    }

    /// Inserts a record; a unique-index clash becomes `Duplicate(clash)`.
    pub async fn insert(&self, record: &T, clash: &str) -> DbResult<()> {
        match self.collection.insert_one(bson::to_document(record)?).await {
            Ok(_) => Ok(()),
            Err(e) if super::duplicate_key(&e) => Err(DbError::Duplicate(clash.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Inserts records; ones already stored (same `_id`) are skipped, so a
    /// retried write stores each once.
    pub async fn insert_once(&self, records: &[T]) -> DbResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let documents = records
            .iter()
            .map(bson::to_document)
            .collect::<Result<Vec<_>, _>>()?;
        match self.collection.insert_many(documents).ordered(false).await {
            Ok(_) => Ok(()),
            Err(e) if super::duplicate_key(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets fields of one record; returns it after the change, `None` when it
    /// does not exist. A unique-index clash becomes `Duplicate(clash)`.
    pub async fn set(&self, id: ObjectId, set: Document, clash: &str) -> DbResult<Option<T>> {
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .max_time(self.max_time)
            .build();
        match self
            .collection
            .find_one_and_update(doc! { "_id": id }, doc! { "$set": set })
            .with_options(options)
            .await
        {
            Ok(found) => Ok(found.map(bson::from_document).transpose()?),
            Err(e) if super::duplicate_key(&e) => Err(DbError::Duplicate(clash.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes one record, as an undo of its creation.
    pub async fn remove(&self, id: ObjectId) -> DbResult<()> {
        self.collection.delete_one(doc! { "_id": id }).await?;
        Ok(())
    }

    /// Puts a record back exactly as it was, as an undo of a change or deletion.
    pub async fn restore(&self, record: &T) -> DbResult<()> {
        self.collection
            .replace_one(doc! { "_id": record.id() }, bson::to_document(record)?)
            .upsert(true)
            .await?;
        Ok(())
    }

    /// Deletes one record; returns it as it was, `None` when there was none.
    pub async fn delete(&self, id: ObjectId) -> DbResult<Option<T>> {
        let found = self
            .collection
            .find_one_and_delete(doc! { "_id": id })
            .max_time(self.max_time)
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }
}
