//! The stored entry of `audit_logs` and what it says: who did what to which
//! entity, with its changes and its place in the chain; its filter, its
//! order, and the reads of entries about entities.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::chain::AuditLog;
use super::changes::Change;
use crate::db::DbResult;
/// Who did it (shared with the outbox, so it lives in `domain`).
pub use crate::domain::Actor;

pub const COLLECTION: &str = "audit_logs";

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
pub struct AuditLogEntryRecord {
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

impl crate::db::store::Record for AuditLogEntryRecord {
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

impl crate::db::model::Model for AuditLogEntryRecord {
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

impl AuditLog {
    /// Entries for an entity, newest first.
    pub async fn for_entity(
        &self,
        entity_type: &str,
        entity_id: &str,
    ) -> DbResult<Vec<AuditLogEntryRecord>> {
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

    /// Entries about any of these entities (`(entityType, entityId)`), oldest first.
    pub async fn about(&self, entities: &[(&str, String)]) -> DbResult<Vec<AuditLogEntryRecord>> {
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
}
