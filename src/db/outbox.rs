//! The outbox (`outbox`): FerretDB has no transactions, so a change and
//! what must follow it (its audit entry, webhook deliveries, analytics
//! events, the bus event) are tied together by writing the intent first.
//! Every audited write records an entry (`intent`) before it touches the
//! model's collection, and marks it `done` once everything that follows
//! is stored. An intent left behind by a crash is settled later by
//! `live::outbox::recover`, which reads the row to tell whether the write
//! happened: a creation happened if the row exists, a deletion if it does
//! not, an update if the row carries the update's `updatedAt` stamp (or a
//! later entry saw that stamp as its starting point). Done entries keep
//! only their stamps (no personal data) and are swept after a day.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::{Db, DbResult};
use crate::db::model::Redaction;
use crate::domain::Actor;

pub const COLLECTION: &str = "outbox";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Written before the change; the change may or may not have happened.
    Intent,
    /// Everything that follows the change is stored.
    Done,
    /// The change did not happen.
    Void,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub state: State,
    pub at: DateTime,
    /// The model's name (`Asset`) and collection.
    pub entity: String,
    pub collection: String,
    pub entity_id: ObjectId,
    /// `created`, `updated` or `deleted`.
    pub kind: String,
    /// The audit action (`asset.update`).
    pub action: String,
    pub actor: Actor,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Fields redacted in the audit entry, and fields that never leave the process.
    #[serde(default)]
    pub sensitive: Vec<String>,
    #[serde(default)]
    pub secret: Vec<String>,
    /// Stored-only fields left out of webhook payloads.
    #[serde(default)]
    pub internal: Vec<String>,
    /// Where the row names its person (`Model::SUBJECT`), and that person
    /// when the row before the change names one (erasure scrubs their
    /// pending intents).
    #[serde(default)]
    pub subject_path: Option<String>,
    #[serde(default)]
    pub subject: Option<ObjectId>,
    /// Fields holding personal data (`Model::PERSONAL`): sealed in the audit
    /// entry, never in a webhook payload unless granted.
    #[serde(default)]
    pub personal: Vec<String>,
    /// Fields stored sealed (`Model::SEALED`).
    #[serde(default)]
    pub sealed: Vec<String>,
    /// Fields a webhook payload carries (`Model::PUBLIC`).
    #[serde(default)]
    pub public: Vec<String>,
    /// Fields left out of the audit entry; `None` in intents written before
    /// models declared them, which leave out their stored-only keys instead
    /// (what the audit writer left out then was one of those).
    #[serde(default)]
    pub unaudited: Option<Vec<String>>,
    /// The row before the change (updates and deletions); dropped when done.
    #[serde(default)]
    pub before: Option<Document>,
    /// The `updatedAt` the update writes, and the one it starts from.
    #[serde(default)]
    pub stamp: Option<DateTime>,
    #[serde(default)]
    pub prev_stamp: Option<DateTime>,
}

impl Entry {
    /// The person `row` (this entry's row, before or after) is about.
    pub fn subject_of(&self, row: &Document) -> Option<ObjectId> {
        let path = self.subject_path.as_deref()?;
        match path {
            "_id" => Some(self.entity_id),
            path => row.get_object_id(path).ok(),
        }
    }

    /// What the audit entry keeps out of the change, as the model declared it.
    pub fn redaction(&self) -> Redaction {
        Redaction {
            redacted: self.sensitive.clone(),
            omitted: self
                .unaudited
                .clone()
                .unwrap_or_else(|| self.internal.clone()),
        }
    }
}

pub struct Outbox {
    collection: Collection<Document>,
    db: Db,
}

impl Outbox {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            db: db.clone(),
        }
    }

    /// Records the intent of a change, before the change.
    pub async fn intend(&self, entry: &Entry) -> DbResult<()> {
        self.collection
            .insert_one(bson::to_document(entry)?)
            .await?;
        Ok(())
    }

    /// The change did not happen.
    pub async fn void(&self, id: ObjectId) -> DbResult<()> {
        self.collection
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "state": "void" }, "$unset": { "before": "" } },
            )
            .await?;
        Ok(())
    }

    /// Everything that follows the change is stored.
    pub async fn done(&self, id: ObjectId) -> DbResult<()> {
        self.collection
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "state": "done" }, "$unset": { "before": "" } },
            )
            .await?;
        Ok(())
    }

    /// Takes a person's personal values out of the rows kept by intents
    /// not settled yet (erasure); returns how many intents held some.
    pub async fn scrub(&self, subject: ObjectId, fields: &[&str]) -> DbResult<u64> {
        let mut unset = Document::new();
        for field in fields {
            unset.insert(format!("before.{field}"), "");
        }
        if unset.is_empty() {
            return Ok(0);
        }
        Ok(self
            .collection
            .update_many(
                doc! { "subject": subject, "before": { "$type": "object" } },
                doc! { "$unset": unset },
            )
            .await?
            .modified_count)
    }

    /// Intents older than `before`: changes whose request did not finish.
    pub async fn stale(&self, before: DateTime, limit: i64) -> DbResult<Vec<Entry>> {
        let found: Vec<Document> = self
            .collection
            .find(doc! { "state": "intent", "at": { "$lt": before } })
            .sort(doc! { "at": 1 })
            .limit(limit)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        super::decode_all(found)
    }

    /// Whether a later change of the same row started from `stamp` (so the
    /// update that wrote `stamp` happened).
    pub async fn continued_from(&self, entity_id: ObjectId, stamp: DateTime) -> DbResult<bool> {
        Ok(self
            .collection
            .find_one(doc! { "entityId": entity_id, "prevStamp": stamp })
            .max_time(self.db.max_time())
            .await?
            .is_some())
    }

    /// The row an entry is about, as it is now.
    pub async fn row(&self, entry: &Entry) -> DbResult<Option<Document>> {
        Ok(self
            .db
            .collection(&entry.collection)
            .find_one(doc! { "_id": entry.entity_id })
            .max_time(self.db.max_time())
            .await?)
    }

    /// Removes settled entries older than `before`, at most `limit`.
    pub async fn sweep(&self, before: DateTime, limit: i64) -> DbResult<u64> {
        let ids: Vec<Document> = self
            .collection
            .find(doc! { "state": { "$in": ["done", "void"] }, "at": { "$lt": before } })
            .projection(doc! { "_id": 1 })
            .limit(limit)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        let ids: Vec<ObjectId> = ids
            .iter()
            .filter_map(|d| d.get_object_id("_id").ok())
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(self
            .collection
            .delete_many(doc! { "_id": { "$in": ids } })
            .await?
            .deleted_count)
    }
}
