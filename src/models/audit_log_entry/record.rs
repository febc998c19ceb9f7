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

use crate::db::{Db, DbError, DbResult};

pub const COLLECTION: &str = "audit_logs";
/// What an erased value reads.
pub const ERASED: &str = "[erased]";
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

/// One changed field, before and after. When a person's data is erased, a
/// value is replaced by `[erased]` and its digest kept beside it, so the
/// entry's hash (over digests of values, from chain version 2) still holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub field: String,
    pub before: Bson,
    pub after: Bson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_digest: Option<String>,
}

impl Change {
    pub fn new(field: impl Into<String>, before: Bson, after: Bson) -> Self {
        Self {
            field: field.into(),
            before,
            after,
            before_digest: None,
            after_digest: None,
        }
    }
}

/// The digest a value contributes to a version-2 hash.
pub fn value_digest(value: &Bson) -> String {
    hex::encode(Sha256::digest(
        value.clone().into_relaxed_extjson().to_string().as_bytes(),
    ))
}

/// The chain version new entries are written with.
pub const CHAIN_VERSION: i32 = 2;

fn first_version() -> i32 {
    1
}

/// What an entry records, before it is chained.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The entry's `_id` when it must be written at most once (the outbox
    /// entry it completes); a second append with it returns the first.
    pub id: Option<ObjectId>,
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
    /// 1: values hashed as they are; 2: values hashed through their digests.
    #[serde(default = "first_version")]
    pub v: i32,
}

impl AuditEntry {
    /// The hash over everything but `_id` and `hash`, in a fixed order.
    pub fn compute_hash(&self) -> String {
        let changes: Vec<serde_json::Value> = self
            .changes
            .iter()
            .map(|c| {
                if self.v >= 2 {
                    let digest = |value: &Bson, kept: &Option<String>| {
                        kept.clone().unwrap_or_else(|| value_digest(value))
                    };
                    serde_json::json!([
                        c.field,
                        digest(&c.before, &c.before_digest),
                        digest(&c.after, &c.after_digest)
                    ])
                } else {
                    serde_json::json!([
                        c.field,
                        c.before.clone().into_relaxed_extjson(),
                        c.after.clone().into_relaxed_extjson()
                    ])
                }
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
        let changes = redact_fields(entry.changes, &[]);
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
                id: entry.id.unwrap_or_default(),
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
                v: CHAIN_VERSION,
            };
            record.hash = record.compute_hash();
            match self
                .collection
                .insert_one(bson::to_document(&record)?)
                .await
            {
                Ok(_) => return Ok(record),
                Err(e) if crate::db::duplicate_key(&e) => {
                    if let Some(id) = entry.id
                        && let Some(written) = self
                            .collection
                            .find_one(doc! { "_id": id })
                            .max_time(self.max_time)
                            .await?
                    {
                        return Ok(bson::from_document(written)?);
                    }
                    continue;
                }
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
        crate::db::decode_all(docs)
    }

    /// Walks the chain in `seq` order; the first entry that does not hold.
    pub async fn verify(&self) -> DbResult<Option<Breach>> {
        Ok(self.verify_counting().await?.1)
    }

    /// Like `verify`, also counting the entries that held.
    pub async fn verify_counting(&self) -> DbResult<(u64, Option<Breach>)> {
        let mut checked = 0;
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
                    return Ok((
                        checked,
                        Some(Breach {
                            seq,
                            reason: format!("unreadable entry: {e}"),
                        }),
                    ));
                }
            };
            let breach = |reason: &str| {
                Some(Breach {
                    seq: entry.seq,
                    reason: reason.into(),
                })
            };
            if entry.seq != expected_seq {
                return Ok((
                    checked,
                    Some(Breach {
                        seq: expected_seq,
                        reason: format!(
                            "entry {expected_seq} is missing (found {} next)",
                            entry.seq
                        ),
                    }),
                ));
            }
            if entry.prev_hash != prev {
                return Ok((
                    checked,
                    breach("its prevHash does not match the entry before it"),
                ));
            }
            if entry.compute_hash() != entry.hash {
                return Ok((checked, breach("its content does not match its hash")));
            }
            // A kept digest stands only for an erased value.
            let forged = entry.changes.iter().any(|c| {
                (c.before_digest.is_some() && c.before != Bson::String(ERASED.into()))
                    || (c.after_digest.is_some() && c.after != Bson::String(ERASED.into()))
            });
            if forged {
                return Ok((
                    checked,
                    breach("a value kept beside its digest is not the erased mark"),
                ));
            }
            prev = entry.hash;
            expected_seq += 1;
            checked += 1;
        }
        Ok((checked, None))
    }

    /// Entries about any of these entities (`(entityType, entityId)`), oldest first.
    pub async fn about(&self, entities: &[(&str, String)]) -> DbResult<Vec<AuditEntry>> {
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        let any: Vec<Document> = entities
            .iter()
            .map(|(t, id)| doc! { "entityType": *t, "entityId": id })
            .collect();
        let docs: Vec<Document> = self
            .collection
            .find(doc! { "$or": any })
            .sort(doc! { "seq": 1 })
            .max_time(self.max_time)
            .await?
            .try_collect()
            .await?;
        crate::db::decode_all(docs)
    }

    /// Erases the values of `fields` in the entries about one entity,
    /// keeping each value's digest so the chain still verifies. Returns how
    /// many entries changed. The only write to existing entries, for the
    /// right to erasure.
    pub async fn erase_values(
        &self,
        entity_type: &str,
        entity_id: &str,
        fields: &[&str],
    ) -> DbResult<u64> {
        let mut changed = 0;
        for mut entry in self.for_entity(entity_type, entity_id).await? {
            if entry.v < 2 {
                // Version-1 hashes cover values themselves; those entries
                // hold sensitive fields redacted already.
                continue;
            }
            let mut touched = false;
            for change in &mut entry.changes {
                if !fields.contains(&change.field.as_str()) {
                    continue;
                }
                for (value, digest) in [
                    (&mut change.before, &mut change.before_digest),
                    (&mut change.after, &mut change.after_digest),
                ] {
                    if digest.is_none() && !matches!(value, Bson::Null) {
                        *digest = Some(value_digest(value));
                        *value = Bson::String(ERASED.into());
                        touched = true;
                    }
                }
            }
            if touched {
                self.collection
                    .update_one(
                        doc! { "_id": entry.id },
                        doc! { "$set": { "changes": bson::to_bson(&entry.changes)? } },
                    )
                    .await?;
                changed += 1;
            }
        }
        Ok(changed)
    }
}

/// Replaces the values of sensitive fields (the shared list and `extra`) by a mark.
pub fn redact_fields(changes: Vec<Change>, extra: &[&str]) -> Vec<Change> {
    changes
        .into_iter()
        .map(|mut c| {
            if SENSITIVE.contains(&c.field.as_str()) || extra.contains(&c.field.as_str()) {
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
            (b != a).then(|| Change::new(k.clone(), b, a))
        })
        .collect()
}

impl crate::db::store::Record for AuditEntry {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

crate::order_fields! {
    /// The audit log's one order: by position in the chain.
    pub enum AuditOrder {
        Seq = "SEQ" => "seq",
    }
}

impl crate::db::model::Model for AuditEntry {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::AuditLogEntry;
    type Order = AuditOrder;

    async fn scope(access: &crate::db::model::Access) -> DbResult<crate::db::model::Scope> {
        Ok(match access.viewer() {
            Some(v) if v.role == crate::domain::Role::Admin => crate::db::model::Scope::All,
            _ => crate::db::model::Scope::Nothing,
        })
    }
}

/// Which entries `auditLog` shows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor: Option<ObjectId>,
    pub action: Option<String>,
    pub from: Option<DateTime>,
    pub to: Option<DateTime>,
}

impl AuditFilter {
    pub fn to_document(&self) -> Document {
        let mut filter = Document::new();
        if let Some(t) = &self.entity_type {
            filter.insert("entityType", t);
        }
        if let Some(id) = &self.entity_id {
            filter.insert("entityId", id);
        }
        if let Some(actor) = self.actor {
            filter.insert("actor.id", actor);
        }
        if let Some(action) = &self.action {
            filter.insert("action", action);
        }
        crate::db::filters::range(&mut filter, "at", self.from, self.to);
        filter
    }
}

impl Db {
    /// The audit collection's own operations.
    pub fn audit(&self) -> AuditLog {
        AuditLog::new(self)
    }
}
