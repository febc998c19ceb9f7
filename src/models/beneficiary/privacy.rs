//! Data protection: everything held about one beneficiary (export, their
//! sealed values opened), and erasure of what identifies them wherever it
//! is held, keeping the rows statistics need. Erasure destroys the person's
//! data key, so what was sealed with it stops opening everywhere at once
//! (the live rows, backups, audit entries), and clears or thins what holds
//! the person in clear: session notes, audit values written before values
//! were sealed, pending outbox intents, webhook payloads, report results and
//! analytics dimensions. It writes in an order that makes a crash harmless:
//! the beneficiary (with `erasedAt`, the mark of a finished erasure) last,
//! so running it again completes it.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use serde_json::{Value, json};

use super::record::{self as beneficiaries, BeneficiaryRecord, IDENTIFYING};
use crate::db::model::Model;
use crate::db::outbox::Outbox;
use crate::db::store::{Record, Store};
use crate::db::{Db, DbError, DbResult};
use crate::domain::{GlobalId, NodeKind};
use crate::models::audit_log_entry::changes::ERASED;
use crate::models::enrollment::record as enrollments;
use crate::models::enrollment::record::EnrollmentRecord;
use crate::models::schedule::record as schedules;
use crate::models::therapy_session::record as sessions;
use crate::models::therapy_session::record::TherapySessionRecord;
use crate::vault::{DataKey, Sealed, Vault, VaultError};

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

/// Sealed values in `value` (a row or audit entry as JSON) opened with
/// `key`: a field sealed in the row gives its stored text (a guardian its
/// JSON), a value the audit writer sealed its JSON; `[erased]` without a key.
fn open_all(value: &mut Value, key: Option<&DataKey>) {
    match value {
        Value::String(text) => {
            let Some(sealed) = Sealed::parse(text) else {
                return;
            };
            *value = match key.map(|k| k.open(&sealed)) {
                Some(Ok(plain)) => match serde_json::from_str::<Value>(&plain) {
                    Ok(parsed @ (Value::Object(_) | Value::Array(_) | Value::String(_))) => parsed,
                    _ => Value::String(plain),
                },
                _ => Value::String(ERASED.into()),
            };
        }
        Value::Array(items) => items.iter_mut().for_each(|v| open_all(v, key)),
        Value::Object(fields) => fields.values_mut().for_each(|v| open_all(v, key)),
        _ => {}
    }
}

/// Everything held about a beneficiary, as one JSON document, their sealed
/// values opened; `None` when there is no such beneficiary.
pub async fn export(db: &Db, vault: &Vault, id: ObjectId) -> DbResult<Option<Value>> {
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
    let key = vault.key(id).await.map_err(vault_failed)?;
    let mut export = json!({
        "exportedAt": chrono::Utc::now().to_rfc3339(),
        "beneficiary": Bson::Document(person).into_relaxed_extjson(),
        "enrollments": json_of(enrolments),
        "therapySessions": json_of(sessions),
        "schedules": json_of(bookings),
        "auditLog": json_of(audit),
    });
    open_all(&mut export, key.as_deref());
    Ok(Some(export))
}

fn vault_failed(error: VaultError) -> DbError {
    match error {
        VaultError::Db(error) => error,
        other => DbError::Other(other.into()),
    }
}

/// The ids of the rows that hold a person: theirs, their enrolments' and
/// their sessions' (hex, as payloads and dimensions name them, and global).
async fn held_ids(db: &Db, id: ObjectId) -> DbResult<Vec<String>> {
    let mut ids = vec![
        id.to_hex(),
        GlobalId::new(NodeKind::Beneficiary, id).encode(),
    ];
    for (collection, kind) in [
        (enrollments::COLLECTION, NodeKind::Enrollment),
        (sessions::COLLECTION, NodeKind::TherapySession),
    ] {
        let rows: Vec<Document> = db
            .collection(collection)
            .find(doc! { "beneficiaryId": id })
            .projection(doc! { "_id": 1 })
            .max_time(db.max_time())
            .await?
            .try_collect()
            .await?;
        for row in rows {
            if let Ok(row_id) = row.get_object_id("_id") {
                ids.push(row_id.to_hex());
                ids.push(GlobalId::new(kind, row_id).encode());
            }
        }
    }
    Ok(ids)
}

/// A pattern matching any of `ids` in stored text.
fn any_of(ids: &[String]) -> String {
    ids.iter()
        .map(|i| crate::domain::text::regex_escape(i))
        .collect::<Vec<_>>()
        .join("|")
}

/// A stored payload thinned: the event and the row's id, kind, changed
/// fields and the public fields of its model, nothing else.
fn thin_payload(payload: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(payload) else {
        return json!({ "type": null, "data": {} }).to_string();
    };
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        let public: &[&str] = match data.get("kind").and_then(Value::as_str) {
            Some("Beneficiary") => BeneficiaryRecord::PUBLIC,
            Some("Enrollment") => EnrollmentRecord::PUBLIC,
            Some("TherapySession") => TherapySessionRecord::PUBLIC,
            _ => &[],
        };
        data.retain(|field, _| {
            matches!(field.as_str(), "id" | "kind" | "changedFields")
                || public.contains(&field.as_str())
        });
    }
    value.to_string()
}

/// What an erasure did.
pub struct Erasure {
    pub before: BeneficiaryRecord,
    pub after: BeneficiaryRecord,
    pub sessions_cleared: u64,
    pub audit_entries: u64,
    /// Whether the person's data key was destroyed.
    pub key_destroyed: bool,
    pub deliveries_thinned: u64,
    pub reports_cleared: u64,
    pub intents_scrubbed: u64,
    pub analytics_scrubbed: u64,
}

/// Erases a beneficiary's identifying data; `Ok(None)` when they were
/// already erased (a no-op) — the caller has checked they exist.
pub async fn erase(db: &Db, vault: &Vault, before: BeneficiaryRecord) -> DbResult<Option<Erasure>> {
    if before.erased_at.is_some() {
        return Ok(None);
    }
    let now = DateTime::now();
    let held = held_ids(db, before.id).await?;
    let pattern = any_of(&held);
    let cleared = db
        .collection(sessions::COLLECTION)
        .update_many(
            doc! { "beneficiaryId": before.id, "notes": { "$ne": Bson::Null } },
            doc! { "$set": { "notes": Bson::Null, "updatedAt": now } },
        )
        .await?
        .modified_count;
    let audit_entries = db
        .audit()
        .erase_values("Beneficiary", &before.id.to_hex(), IDENTIFYING)
        .await?;
    let mut personal: Vec<&str> = BeneficiaryRecord::PERSONAL.to_vec();
    personal.extend(EnrollmentRecord::PERSONAL);
    personal.extend(TherapySessionRecord::PERSONAL);
    let intents_scrubbed = Outbox::new(db).scrub(before.id, &personal).await?;
    let deliveries = db.collection(crate::models::webhook::record::DELIVERIES);
    let held_by: Vec<Document> = deliveries
        .find(doc! { "payload": { "$regex": &pattern } })
        .projection(doc! { "_id": 1, "payload": 1 })
        .max_time(db.max_time())
        .await?
        .try_collect()
        .await?;
    let mut deliveries_thinned = 0;
    for delivery in held_by {
        let (Ok(id), Ok(payload)) = (delivery.get_object_id("_id"), delivery.get_str("payload"))
        else {
            continue;
        };
        let thin = thin_payload(payload);
        if thin != payload {
            deliveries
                .update_one(doc! { "_id": id }, doc! { "$set": { "payload": thin } })
                .await?;
            deliveries_thinned += 1;
        }
    }
    let reports_cleared = db
        .collection(crate::models::report::record::COLLECTION)
        .update_many(
            doc! { "parameters": { "$regex": &pattern }, "result": { "$ne": Bson::Null } },
            doc! { "$set": { "result": Bson::Null, "updatedAt": now } },
        )
        .await?
        .modified_count;
    let hex: Vec<&String> = held.iter().filter(|i| i.len() == 24).collect();
    let analytics_scrubbed = db
        .collection(crate::models::analytics_event::record::COLLECTION)
        .update_many(
            doc! { "dimensions.entityId": { "$in": &hex } },
            doc! { "$unset": { "dimensions.entityId": "" } },
        )
        .await?
        .modified_count;
    let key_destroyed = vault.destroy(before.id).await.map_err(vault_failed)?;
    let store = Store::<BeneficiaryRecord>::new(db);
    let after = store
        .set(
            before.id,
            beneficiaries::erasure(before.id, now),
            "duplicate",
        )
        .await?
        .ok_or_else(|| crate::db::DbError::Other(anyhow::anyhow!("the beneficiary vanished")))?;
    Ok(Some(Erasure {
        before,
        after,
        sessions_cleared: cleared,
        audit_entries,
        key_destroyed,
        deliveries_thinned,
        reports_cleared,
        intents_scrubbed,
        analytics_scrubbed,
    }))
}

/// What sealing values kept in clear did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Backfill {
    pub beneficiaries: u64,
    pub sessions: u64,
}

/// Text stored in clear (not sealed, not absent).
fn clear_text(row: &Document, field: &str) -> Option<String> {
    match row.get(field) {
        Some(Bson::String(text)) if !Sealed::is_sealed(text) => Some(text.clone()),
        _ => None,
    }
}

/// Seals the values of beneficiaries and session notes stored in clear
/// before values were sealed (`alawael migrate up` runs it; it finds
/// nothing to do once done): each person gets a data key, their national
/// id a blind index, their birth date a birth year.
pub async fn seal_clear_values(db: &Db, vault: &Vault) -> DbResult<Backfill> {
    let mut done = Backfill::default();
    let index = vault.indexer().await.map_err(vault_failed)?;
    let people: Vec<Document> = db
        .collection(BeneficiaryRecord::COLLECTION)
        .find(doc! { "erasedAt": Bson::Null })
        .projection(doc! { "nationalId": 1, "dateOfBirth": 1, "guardian": 1, "medicalNotes": 1 })
        .max_time(db.max_time())
        .await?
        .try_collect()
        .await?;
    for row in people {
        let Ok(id) = row.get_object_id("_id") else {
            continue;
        };
        let national = clear_text(&row, "nationalId");
        let born = clear_text(&row, "dateOfBirth");
        let notes = clear_text(&row, "medicalNotes");
        let guardian = row.get_document("guardian").ok().cloned();
        if national.is_none() && born.is_none() && notes.is_none() && guardian.is_none() {
            continue;
        }
        let key = vault.create_key(id).await.map_err(vault_failed)?;
        let mut set = Document::new();
        if let Some(national) = national {
            set.insert("nationalIdKey", index.index("nationalId", &national));
            set.insert("nationalId", key.seal(&national).as_str());
        }
        if let Some(born) = born {
            if let Some(year) = born.get(..4).and_then(|y| y.parse::<i32>().ok()) {
                set.insert("birthYear", year);
            }
            set.insert("dateOfBirth", key.seal(&born).as_str());
        }
        if let Some(notes) = notes {
            set.insert("medicalNotes", key.seal(&notes).as_str());
        }
        if let Some(guardian) = guardian {
            let guardian: super::record::Guardian = bson::from_document(guardian)?;
            let text = serde_json::to_string(&guardian).map_err(|e| DbError::Other(e.into()))?;
            set.insert("guardian", key.seal(&text).as_str());
        }
        db.collection(BeneficiaryRecord::COLLECTION)
            .update_one(doc! { "_id": id }, doc! { "$set": set })
            .await?;
        done.beneficiaries += 1;
    }
    let notes: Vec<Document> = db
        .collection(sessions::COLLECTION)
        .find(doc! { "notes": { "$type": "string" } })
        .projection(doc! { "notes": 1, "beneficiaryId": 1 })
        .max_time(db.max_time())
        .await?
        .try_collect()
        .await?;
    for row in notes {
        let (Ok(id), Ok(person), Some(text)) = (
            row.get_object_id("_id"),
            row.get_object_id("beneficiaryId"),
            clear_text(&row, "notes"),
        ) else {
            continue;
        };
        // An erased person's notes were cleared; none is left to seal.
        let Some(key) = vault.key(person).await.map_err(vault_failed)? else {
            continue;
        };
        db.collection(sessions::COLLECTION)
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "notes": key.seal(&text).as_str() } },
            )
            .await?;
        done.sessions += 1;
    }
    Ok(done)
}
