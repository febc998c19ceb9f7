//! The `audit_logs` collection: append-only and hash-chained. Each entry
//! stores the hash of the one before it and its own hash over its content,
//! so a changed, deleted, reordered or truncated entry is found by `verify`.
//! Nothing in the API updates or deletes entries.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use tokio::sync::Mutex;

use super::{Db, DbError, DbResult};

pub const COLLECTION: &str = "audit_logs";
/// The `prevHash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Field names whose values never enter the log.
const SENSITIVE: &[&str] = &[
    "passwordHash",
    "password",
    "secret",
    "nationalId",
    "medicalNotes",
    "notes",
];

/// Who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `user`, `api_key`, `system` or `anonymous`.
    pub kind: String,
    #[serde(default)]
    pub id: Option<ObjectId>,
}

impl Actor {
    pub fn user(id: ObjectId) -> Self {
        Self {
            kind: "user".into(),
            id: Some(id),
        }
    }
    pub fn system() -> Self {
        Self {
            kind: "system".into(),
            id: None,
        }
    }
    pub fn anonymous() -> Self {
        Self {
            kind: "anonymous".into(),
            id: None,
        }
    }
}

/// One changed field, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Bson,
    pub after: Bson,
}

/// What an entry records, before it is chained.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub actor: Actor,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub changes: Vec<Change>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub seq: i64,
    pub at: DateTime,
    pub actor: Actor,
    pub action: String,
    pub entity_type: String,
    #[serde(default)]
    pub entity_id: Option<String>,
    pub changes: Vec<Change>,
    #[serde(default)]
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The hash over everything but `_id` and `hash`, in a fixed order.
    pub fn compute_hash(&self) -> String {
        let changes: Vec<serde_json::Value> = self
            .changes
            .iter()
            .map(|c| {
                serde_json::json!([
                    c.field,
                    c.before.clone().into_relaxed_extjson(),
                    c.after.clone().into_relaxed_extjson()
                ])
            })
            .collect();
        let canonical = serde_json::json!([
            self.seq,
            self.at.timestamp_millis(),
            self.actor.kind,
            self.actor.id.map(|id| id.to_hex()),
            self.action,
            self.entity_type,
            self.entity_id,
            changes,
            self.request_id,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The first entry that does not hold, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub seq: i64,
    pub reason: String,
}

fn append_lock() -> Arc<Mutex<()>> {
    static LOCK: OnceLock<Arc<Mutex<()>>> = OnceLock::new();
    LOCK.get_or_init(|| Arc::new(Mutex::new(()))).clone()
}

pub struct AuditLog {
    collection: Collection<Document>,
    max_time: std::time::Duration,
}

impl AuditLog {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            max_time: db.max_time(),
        }
    }

    /// Appends an entry after the current last one. Appends in this process
    /// are serialised; across processes the unique `seq` index makes a racing
    /// append retry.
    pub async fn append(&self, entry: NewEntry) -> DbResult<AuditEntry> {
        let lock = append_lock();
        let _guard = lock.lock().await;
        let changes = redact(entry.changes);
        for _ in 0..5 {
            let last = self
                .collection
                .find_one(doc! {})
                .sort(doc! { "seq": -1 })
                .max_time(self.max_time)
                .await?;
            let (seq, prev_hash) = match last {
                Some(d) => (
                    d.get_i64("seq")
                        .map_err(|e| DbError::Other(e.into()))?
                        .checked_add(1)
                        .ok_or_else(|| {
                            DbError::Other(anyhow::anyhow!("the audit sequence is exhausted"))
                        })?,
                    d.get_str("hash")
                        .map_err(|e| DbError::Other(e.into()))?
                        .to_string(),
                ),
                None => (1, GENESIS.to_string()),
            };
            let mut record = AuditEntry {
                id: ObjectId::new(),
                seq,
                at: DateTime::now(),
                actor: entry.actor.clone(),
                action: entry.action.clone(),
                entity_type: entry.entity_type.clone(),
                entity_id: entry.entity_id.clone(),
                changes: changes.clone(),
                request_id: entry.request_id.clone(),
                prev_hash,
                hash: String::new(),
            };
            record.hash = record.compute_hash();
            match self
                .collection
                .insert_one(bson::to_document(&record)?)
                .await
            {
                Ok(_) => return Ok(record),
                Err(e) if super::duplicate_key(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DbError::Other(anyhow::anyhow!(
            "audit append lost the race five times"
        )))
    }

    /// Entries for an entity, newest first.
    pub async fn for_entity(
        &self,
        entity_type: &str,
        entity_id: &str,
    ) -> DbResult<Vec<AuditEntry>> {
        let docs: Vec<Document> = self
            .collection
            .find(doc! { "entityType": entity_type, "entityId": entity_id })
            .sort(doc! { "seq": -1 })
            .max_time(self.max_time)
            .await?
            .try_collect()
            .await?;
        super::decode_all(docs)
    }

    /// Walks the chain in `seq` order; the first entry that does not hold.
    pub async fn verify(&self) -> DbResult<Option<Breach>> {
        let mut cursor = self
            .collection
            .find(doc! {})
            .sort(doc! { "seq": 1 })
            .await?;
        let mut expected_seq = 1;
        let mut prev = GENESIS.to_string();
        while let Some(document) = cursor.try_next().await? {
            let seq = document.get_i64("seq").unwrap_or(-1);
            let entry: AuditEntry = match bson::from_document(document) {
                Ok(entry) => entry,
                Err(e) => {
                    return Ok(Some(Breach {
                        seq,
                        reason: format!("unreadable entry: {e}"),
                    }));
                }
            };
            let breach = |reason: &str| {
                Some(Breach {
                    seq: entry.seq,
                    reason: reason.into(),
                })
            };
            if entry.seq != expected_seq {
                return Ok(Some(Breach {
                    seq: expected_seq,
                    reason: format!("entry {expected_seq} is missing (found {} next)", entry.seq),
                }));
            }
            if entry.prev_hash != prev {
                return Ok(breach("its prevHash does not match the entry before it"));
            }
            if entry.compute_hash() != entry.hash {
                return Ok(breach("its content does not match its hash"));
            }
            prev = entry.hash;
            expected_seq += 1;
        }
        Ok(None)
    }
}

fn redact(changes: Vec<Change>) -> Vec<Change> {
    changes
        .into_iter()
        .map(|mut c| {
            if SENSITIVE.contains(&c.field.as_str()) {
                let mark = |b: &Bson| {
                    if matches!(b, Bson::Null) {
                        Bson::Null
                    } else {
                        Bson::String("[redacted]".into())
                    }
                };
                c.before = mark(&c.before);
                c.after = mark(&c.after);
            }
            c
        })
        .collect()
}

/// The fields that differ between two documents, as changes.
pub fn diff(before: Option<&Document>, after: Option<&Document>) -> Vec<Change> {
    let empty = Document::new();
    let before = before.unwrap_or(&empty);
    let after = after.unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "_id" | "updatedAt" | "createdAt" | "serialKey"))
        .filter_map(|k| {
            let b = before.get(k).cloned().unwrap_or(Bson::Null);
            let a = after.get(k).cloned().unwrap_or(Bson::Null);
            (b != a).then(|| Change {
                field: k.clone(),
                before: b,
                after: a,
            })
        })
        .collect()
}
