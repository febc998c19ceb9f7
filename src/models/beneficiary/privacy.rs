//! Data protection: everything held about one beneficiary (export), and
//! erasure of what identifies them wherever it is held, keeping the rows
//! statistics need. Erasure writes in an order that makes a crash harmless:
//! session notes and audit values first, the beneficiary (with `erasedAt`,
//! the mark of a finished erasure) last, so running it again completes it.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use serde_json::{Value, json};

use super::record::{self as beneficiaries, BeneficiaryRecord, IDENTIFYING};
use crate::db::store::{Record, Store};
use crate::db::{Db, DbResult};
use crate::models::enrollment::record as enrollments;
use crate::models::schedule::record as schedules;
use crate::models::therapy_session::record as sessions;

async fn all(db: &Db, collection: &str, filter: Document) -> DbResult<Vec<Document>> {
    Ok(db
        .collection(collection)
        .find(filter)
        .sort(doc! { "_id": 1 })
        .max_time(db.max_time())
        .await?
        .try_collect()
        .await?)
}

fn json_of(documents: Vec<Document>) -> Value {
    Value::Array(
        documents
            .into_iter()
            .map(|d| Bson::Document(d).into_relaxed_extjson())
            .collect(),
    )
}

/// Everything held about a beneficiary, as one JSON document; `None` when
/// there is no such beneficiary.
pub async fn export(db: &Db, id: ObjectId) -> DbResult<Option<Value>> {
    let Some(person) = db
        .collection(BeneficiaryRecord::COLLECTION)
        .find_one(doc! { "_id": id })
        .max_time(db.max_time())
        .await?
    else {
        return Ok(None);
    };
    let enrolments = all(db, enrollments::COLLECTION, doc! { "beneficiaryId": id }).await?;
    let sessions = all(db, sessions::COLLECTION, doc! { "beneficiaryId": id }).await?;
    let schedule_ids: Vec<ObjectId> = sessions
        .iter()
        .filter_map(|s| s.get_object_id("scheduleId").ok())
        .collect();
    let bookings = if schedule_ids.is_empty() {
        Vec::new()
    } else {
        all(
            db,
            schedules::COLLECTION,
            doc! { "_id": { "$in": schedule_ids } },
        )
        .await?
    };
    let mut about: Vec<(&str, String)> = vec![("Beneficiary", id.to_hex())];
    for e in &enrolments {
        if let Ok(eid) = e.get_object_id("_id") {
            about.push(("Enrollment", eid.to_hex()));
        }
    }
    for s in &sessions {
        if let Ok(sid) = s.get_object_id("_id") {
            about.push(("TherapySession", sid.to_hex()));
        }
    }
    let audit: Vec<Document> = db
        .audit()
        .about(&about)
        .await?
        .into_iter()
        .map(|e| bson::to_document(&e))
        .collect::<Result<_, _>>()?;
    Ok(Some(json!({
        "exportedAt": chrono::Utc::now().to_rfc3339(),
        "beneficiary": Bson::Document(person).into_relaxed_extjson(),
        "enrollments": json_of(enrolments),
        "therapySessions": json_of(sessions),
        "schedules": json_of(bookings),
        "auditLog": json_of(audit),
    })))
}

/// What an erasure did.
pub struct Erasure {
    pub before: BeneficiaryRecord,
    pub after: BeneficiaryRecord,
    pub sessions_cleared: u64,
    pub audit_entries: u64,
}

/// Erases a beneficiary's identifying data; `Ok(None)` when they were
/// already erased (a no-op) — the caller has checked they exist.
pub async fn erase(db: &Db, before: BeneficiaryRecord) -> DbResult<Option<Erasure>> {
    if before.erased_at.is_some() {
        return Ok(None);
    }
    let cleared = db
        .collection(sessions::COLLECTION)
        .update_many(
            doc! { "beneficiaryId": before.id, "notes": { "$ne": Bson::Null } },
            doc! { "$set": { "notes": Bson::Null, "updatedAt": DateTime::now() } },
        )
        .await?
        .modified_count;
    let audit_entries = db
        .audit()
        .erase_values("Beneficiary", &before.id.to_hex(), IDENTIFYING)
        .await?;
    let store = Store::<BeneficiaryRecord>::new(db);
    let after = store
        .set(
            before.id,
            beneficiaries::erasure(before.id, DateTime::now()),
            "duplicate",
        )
        .await?
        .ok_or_else(|| crate::db::DbError::Other(anyhow::anyhow!("the beneficiary vanished")))?;
    Ok(Some(Erasure {
        before,
        after,
        sessions_cleared: cleared,
        audit_entries,
    }))
}
