//! The `api_keys` collection: credentials of partner systems. A key is
//! `alw_<id>_<secret>`, shown once; only its SHA-256 is stored (the secret
//! is 32 random bytes, so no slow hash is needed). A key authenticates as a
//! service principal with a role ceiling and scopes (`domain::scopes`),
//! until it expires or is revoked; its uses are counted.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::{Db, DbResult};
use crate::domain::Role;

pub const COLLECTION: &str = "api_keys";
const PREFIX: &str = "alw_";

/// A stored key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    pub scopes: Vec<String>,
    /// The most the key may do: its guards see this role.
    pub role: Role,
    pub created_by: Option<ObjectId>,
    pub created_at: DateTime,
    #[serde(default)]
    pub expires_at: Option<DateTime>,
    #[serde(default)]
    pub revoked_at: Option<DateTime>,
    #[serde(default)]
    pub last_used_at: Option<DateTime>,
    #[serde(default)]
    pub uses: i64,
}

impl ApiKeyRecord {
    /// Whether it may authenticate now.
    pub fn live(&self, now: DateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }
}

/// A new key for `id`: its text (to show once) and its hash (to store).
pub fn new_key(id: ObjectId) -> (String, String) {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let key = format!("{PREFIX}{}_{}", id.to_hex(), URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&key);
    (key, hash)
}

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The id a key names, if it is shaped like one.
pub fn id_of(key: &str) -> Option<ObjectId> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (secret.len() >= 40).then_some(())?;
    ObjectId::parse_str(id).ok()
}

/// Equal hashes, compared in time that does not depend on where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub struct ApiKeys {
    db: Db,
}

impl ApiKeys {
    pub fn new(db: &Db) -> Self {
        Self { db: db.clone() }
    }

    fn collection(&self) -> mongodb::Collection<Document> {
        self.db.collection(COLLECTION)
    }

    pub async fn insert(&self, key: &ApiKeyRecord) -> DbResult<()> {
        self.collection()
            .insert_one(bson::to_document(key)?)
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<ApiKeyRecord>> {
        let found = self
            .collection()
            .find_one(doc! { "_id": id })
            .max_time(self.db.max_time())
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    /// Every key, newest first.
    pub async fn list(&self) -> DbResult<Vec<ApiKeyRecord>> {
        let found: Vec<Document> = self
            .collection()
            .find(doc! {})
            .sort(doc! { "createdAt": -1 })
            .limit(1000)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        crate::db::decode_all(found)
    }

    /// Revokes a key; the key after, `None` when there is none.
    pub async fn revoke(&self, id: ObjectId) -> DbResult<Option<ApiKeyRecord>> {
        self.collection()
            .update_one(
                doc! { "_id": id, "revokedAt": Bson::Null },
                doc! { "$set": { "revokedAt": DateTime::now() } },
            )
            .await?;
        self.get(id).await
    }

    /// Adds counted uses (and when last) to their keys.
    pub async fn add_uses(&self, uses: HashMap<ObjectId, (i64, DateTime)>) -> DbResult<()> {
        for (id, (count, last)) in uses {
            self.collection()
                .update_one(
                    doc! { "_id": id },
                    doc! { "$inc": { "uses": count }, "$set": { "lastUsedAt": last } },
                )
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_id_and_only_its_hash_is_kept() {
        let id = ObjectId::new();
        let (key, stored) = new_key(id);
        assert!(key.starts_with("alw_"));
        assert_eq!(id_of(&key), Some(id));
        assert_eq!(stored, hash(&key));
        assert!(!stored.contains(&key[30..]));
        assert!(same_hash(&stored, &hash(&key)));
        assert!(!same_hash(&stored, &hash("alw_other")));
        assert_eq!(
            id_of("alw_nothex_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            None
        );
        assert_eq!(id_of(&format!("alw_{}_short", id.to_hex())), None);
    }
}
