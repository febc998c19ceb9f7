//! The `refresh_tokens` collection: one row per issued refresh token, stored
//! as a SHA-256 hash. Tokens of one login share a family; each use rotates
//! the token, and reuse of a rotated one revokes the whole family.
//!
//! Redeeming must be atomic: of two concurrent uses exactly one may win.
//! FerretDB 1.24's `findAndModify` reads, then writes, so two callers can
//! both "win" a conditional update. An insert under a unique `_id` is atomic
//! on every server, so a use is claimed by inserting the token's hash into
//! `refresh_token_uses`; the second insert fails and counts as reuse.
//! For the same reason a family's revocation is an insert into
//! `refresh_token_revocations` (FerretDB's updates read, then write the whole
//! document, so a concurrent `usedAt` update can erase a `revokedAt`); the
//! `revokedAt` stamp on the tokens is for people reading the data.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use super::{Db, DbResult};

pub const COLLECTION: &str = "refresh_tokens";
pub const USES: &str = "refresh_token_uses";
pub const REVOCATIONS: &str = "refresh_token_revocations";
/// How long a family's revocation is kept: longer than any refresh token lives.
const REVOCATION_KEPT_DAYS: i64 = 400;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshTokenRecord {
    /// Hex SHA-256 of the token.
    #[serde(rename = "_id")]
    pub hash: String,
    pub family: String,
    pub user_id: ObjectId,
    pub expires_at: DateTime,
    #[serde(deserialize_with = "super::dates::read")]
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
    uses: Collection<Document>,
    revocations: Collection<Document>,
    max_time: std::time::Duration,
}

impl RefreshTokens {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            uses: db.collection(USES),
            revocations: db.collection(REVOCATIONS),
            max_time: db.max_time(),
        }
    }

    pub async fn insert(&self, record: &RefreshTokenRecord) -> DbResult<()> {
        self.collection
            .insert_one(bson::to_document(record)?)
            .await?;
        Ok(())
    }

    /// Uses a token, atomically: of two concurrent uses, one wins and the
    /// other is reuse, which revokes the family.
    pub async fn redeem(&self, hash: &str) -> DbResult<Redeemed> {
        let now = DateTime::now();
        let Some(found) = self
            .collection
            .find_one(doc! { "_id": hash })
            .max_time(self.max_time)
            .await?
        else {
            return Ok(Redeemed::Unknown);
        };
        let record: RefreshTokenRecord = bson::from_document(found)?;
        // A family revoked while this token was being issued (a concurrent reuse) stays revoked.
        let family_revoked = record.revoked_at.is_some()
            || self
                .revocations
                .find_one(doc! { "_id": &record.family })
                .max_time(self.max_time)
                .await?
                .is_some();
        if record.used_at.is_none() && !family_revoked {
            if record.expires_at <= now {
                return Ok(Redeemed::Unknown);
            }
            match self
                .uses
                .insert_one(doc! { "_id": hash, "family": &record.family, "at": now, "expiresAt": record.expires_at })
                .await
            {
                Ok(_) => {
                    self.collection
                        .update_one(doc! { "_id": hash }, doc! { "$set": { "usedAt": now } })
                        .await?;
                    return Ok(Redeemed::Fresh(record));
                }
                Err(e) if super::duplicate_key(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.revoke_family(&record.family).await?;
        Ok(Redeemed::Reused(record))
    }

    /// Revokes every token of a family (logout, reuse); true when it was live.
    pub async fn revoke_family(&self, family: &str) -> DbResult<bool> {
        let now = chrono::Utc::now();
        let until = DateTime::from_chrono(now + chrono::Duration::days(REVOCATION_KEPT_DAYS));
        let newly = match self
            .revocations
            .insert_one(
                doc! { "_id": family, "at": DateTime::from_chrono(now), "expiresAt": until },
            )
            .await
        {
            Ok(_) => true,
            Err(e) if super::duplicate_key(&e) => false,
            Err(e) => return Err(e.into()),
        };
        self.collection
            .update_many(
                doc! { "family": family, "revokedAt": null },
                doc! { "$set": { "revokedAt": DateTime::now() } },
            )
            .await?;
        Ok(newly)
    }

    /// Revokes every token family of a user (deactivation).
    pub async fn revoke_user(&self, user: ObjectId) -> DbResult<()> {
        let families = self
            .collection
            .distinct("family", doc! { "userId": user })
            .await?;
        for family in families.iter().filter_map(|f| f.as_str()) {
            self.revoke_family(family).await?;
        }
        Ok(())
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
