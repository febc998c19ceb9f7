//! The `sessions` collection: one row per sign-in (its id is the
//! refresh-token family), so a person can see where they are signed in
//! (device, address, last use) and end a session; and ending every session
//! of an account at once (password, role or status changes).

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::db::{Db, DbResult};

pub const COLLECTION: &str = "sessions";

/// A stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// The refresh-token family.
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: ObjectId,
    #[serde(default)]
    pub device: Option<String>,
    pub address: String,
    pub created_at: DateTime,
    pub last_used_at: DateTime,
    /// When its refresh token stops working if never used.
    pub expires_at: DateTime,
    #[serde(default)]
    pub ended_at: Option<DateTime>,
}

pub struct Sessions {
    db: Db,
}

impl Sessions {
    pub fn new(db: &Db) -> Self {
        Self { db: db.clone() }
    }

    fn collection(&self) -> mongodb::Collection<Document> {
        self.db.collection(COLLECTION)
    }

    pub async fn start(&self, session: &SessionRecord) -> DbResult<()> {
        self.collection()
            .insert_one(bson::to_document(session)?)
            .await?;
        Ok(())
    }

    /// The session was used (a refresh): when, from where, until when.
    pub async fn used(&self, id: &str, address: &str, expires_at: DateTime) -> DbResult<()> {
        self.collection()
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "lastUsedAt": DateTime::now(), "address": address, "expiresAt": expires_at } },
            )
            .await?;
        Ok(())
    }

    /// Ends one session; whether it was live.
    pub async fn end(&self, id: &str) -> DbResult<bool> {
        Ok(self
            .collection()
            .update_one(
                doc! { "_id": id, "endedAt": Bson::Null },
                doc! { "$set": { "endedAt": DateTime::now() } },
            )
            .await?
            .modified_count
            > 0)
    }

    /// Ends every session of an account.
    pub async fn end_all(&self, user: ObjectId) -> DbResult<u64> {
        Ok(self
            .collection()
            .update_many(
                doc! { "userId": user, "endedAt": Bson::Null },
                doc! { "$set": { "endedAt": DateTime::now() } },
            )
            .await?
            .modified_count)
    }

    /// One session.
    pub async fn get(&self, id: &str) -> DbResult<Option<SessionRecord>> {
        let found = self
            .collection()
            .find_one(doc! { "_id": id })
            .max_time(self.db.max_time())
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    /// An account's live sessions, the most recently used first.
    pub async fn live(&self, user: ObjectId) -> DbResult<Vec<SessionRecord>> {
        let found: Vec<Document> = self
            .collection()
            .find(doc! { "userId": user, "endedAt": Bson::Null, "expiresAt": { "$gt": DateTime::now() } })
            .sort(doc! { "lastUsedAt": -1 })
            .limit(100)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        crate::db::decode_all(found)
    }
}
