//! The `refresh_tokens` collection: one row per issued refresh token, stored
//! as a SHA-256 hash. Tokens of one login share a family; each use rotates
//! the token, and reuse of a rotated one revokes the whole family.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::{Db, DbResult};

pub const COLLECTION: &str = "refresh_tokens";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshTokenRecord {
    /// Hex SHA-256 of the token.
    #[serde(rename = "_id")]
    pub hash: String,
    pub family: String,
    pub user_id: ObjectId,
    pub expires_at: DateTime,
    pub created_at: DateTime,
    #[serde(default)]
    pub used_at: Option<DateTime>,
    #[serde(default)]
    pub revoked_at: Option<DateTime>,
}

/// What happened when a token was presented.
#[derive(Debug)]
pub enum Redeemed {
    /// The token was live and is now used: issue its successor.
    Fresh(RefreshTokenRecord),
    /// The token had already been used or revoked: its family is now revoked.
    Reused(RefreshTokenRecord),
    /// No such token, or it has expired.
    Unknown,
}

pub struct RefreshTokens {
    collection: Collection<Document>,
    max_time: std::time::Duration,
}

impl RefreshTokens {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            max_time: db.max_time(),
        }
    }

    pub async fn insert(&self, record: &RefreshTokenRecord) -> DbResult<()> {
        self.collection
            .insert_one(bson::to_document(record)?)
            .await?;
        Ok(())
    }

    /// Marks a live token used, atomically: of two concurrent uses, one wins
    /// and the other is reuse.
    pub async fn redeem(&self, hash: &str) -> DbResult<Redeemed> {
        let now = DateTime::now();
        let live = doc! {
            "_id": hash, "usedAt": null, "revokedAt": null, "expiresAt": { "$gt": now },
        };
        if let Some(found) = self
            .collection
            .find_one_and_update(live, doc! { "$set": { "usedAt": now } })
            .max_time(self.max_time)
            .await?
        {
            return Ok(Redeemed::Fresh(bson::from_document(found)?));
        }
        let Some(found) = self
            .collection
            .find_one(doc! { "_id": hash })
            .max_time(self.max_time)
            .await?
        else {
            return Ok(Redeemed::Unknown);
        };
        let record: RefreshTokenRecord = bson::from_document(found)?;
        if record.expires_at <= now && record.used_at.is_none() && record.revoked_at.is_none() {
            return Ok(Redeemed::Unknown);
        }
        self.revoke_family(&record.family).await?;
        Ok(Redeemed::Reused(record))
    }

    /// Revokes every token of a family (logout, reuse).
    pub async fn revoke_family(&self, family: &str) -> DbResult<u64> {
        let result = self
            .collection
            .update_many(
                doc! { "family": family, "revokedAt": null },
                doc! { "$set": { "revokedAt": DateTime::now() } },
            )
            .await?;
        Ok(result.modified_count)
    }

    /// Revokes every token of a user (deactivation).
    pub async fn revoke_user(&self, user: ObjectId) -> DbResult<u64> {
        let result = self
            .collection
            .update_many(
                doc! { "userId": user, "revokedAt": null },
                doc! { "$set": { "revokedAt": DateTime::now() } },
            )
            .await?;
        Ok(result.modified_count)
    }

    pub async fn find(&self, hash: &str) -> DbResult<Option<RefreshTokenRecord>> {
        let found = self
            .collection
            .find_one(doc! { "_id": hash })
            .max_time(self.max_time)
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }
}
