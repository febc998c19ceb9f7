//! The `reports` collection: reports requested through the API and computed
//! by a background worker, and the queue operations the worker uses.
//!
//! A worker takes a report with a claim: an insert into `report_claims`
//! under `_id = "<report>:<attempt>"`, then a conditional update (status
//! RUNNING, lease owner and expiry, `attempts + 1`) that only matches the
//! report as the worker read it. On MongoDB the update alone would be
//! atomic; FerretDB's conditional updates are not, so the unique claim row
//! is what lets only one worker win each attempt, however many race. A
//! claim lasts as long as its lease, which the worker renews while it
//! computes; a report whose lease ran out (its worker died) is claimed again
//! as the next attempt, until `max_attempts`, when it fails.
//!
//! Scope: ADMIN sees every report, MANAGER the ones they requested, others none.

use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::{FindOneAndUpdateOptions, ReturnDocument};
use serde::{Deserialize, Serialize};

use super::rules::{ReportStatus, ReportType, gave_up_reason};
use crate::db::model::{Access, Clause, Model, Scope};
use crate::db::store::{Record, Store};
use crate::db::{Db, DbResult, duplicate_key, filters};
use crate::domain::Role;

pub const COLLECTION: &str = "reports";
pub const CLAIMS: &str = "report_claims";

/// Who holds a running report, and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub owner: String,
    pub until: DateTime,
}

/// A stored report request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(rename = "type")]
    pub kind: ReportType,
    /// The parameters as the client sent them: JSON text, kept verbatim
    /// (the worker validates them), so no client key ever reaches the
    /// database as a field name.
    pub parameters: String,
    pub status: ReportStatus,
    #[serde(default)]
    pub result: Option<Document>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    pub requested_by: ObjectId,
    /// Claims taken so far.
    pub attempts: i32,
    #[serde(default)]
    pub lease: Option<Lease>,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
    /// When the last claim started computing.
    #[serde(default)]
    pub started_at: Option<DateTime>,
    /// When the result was stored.
    #[serde(default)]
    pub generated_at: Option<DateTime>,
}

impl Record for ReportRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

impl Model for ReportRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::Report;
    const PUBLIC: &'static [&'static str] = &["type", "status"];
    type Order = super::ReportOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            (
                "status_leaseUntil",
                doc! { "status": 1, "lease.until": 1 },
                false,
            ),
            ("requestedBy", doc! { "requestedBy": 1 }, false),
        ]
    }

    async fn scope(access: &Access) -> DbResult<Scope> {
        Ok(match access.viewer() {
            Some(v) if v.role == Role::Admin => Scope::All,
            Some(v) if v.role == Role::Manager => {
                Scope::AnyOf(vec![Clause::equals("requestedBy", v.id)])
            }
            _ => Scope::Nothing,
        })
    }
}

impl ReportRecord {
    /// A new request, QUEUED.
    pub fn new(kind: ReportType, parameters: String, requested_by: ObjectId) -> Self {
        let now = DateTime::now();
        Self {
            id: ObjectId::new(),
            kind,
            parameters,
            status: ReportStatus::Queued,
            result: None,
            error: None,
            requested_by,
            attempts: 0,
            lease: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            generated_at: None,
        }
    }
}

/// Which reports a list shows.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub kinds: Vec<ReportType>,
    pub statuses: Vec<ReportStatus>,
}

impl ReportFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        filters::one_of(&mut filter, "type", &self.kinds)?;
        filters::one_of(&mut filter, "status", &self.statuses)?;
        Ok(filter)
    }
}

/// What a claim came to.
#[derive(Debug)]
pub enum Claim {
    /// This worker holds the report (RUNNING) as attempt `attempts`.
    Running(ReportRecord),
    /// The report had used up its attempts and is now FAILED.
    GaveUp(ReportRecord),
    /// Another worker took it first, or it changed since it was read.
    Lost,
}

fn later(by: Duration) -> DateTime {
    let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
    DateTime::from_millis(DateTime::now().timestamp_millis().saturating_add(millis))
}

/// Whether `at + by` has passed.
fn later_than(at: DateTime, by: Duration) -> bool {
    let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
    at.timestamp_millis().saturating_add(millis) < DateTime::now().timestamp_millis()
}

fn status(value: ReportStatus) -> DbResult<Bson> {
    Ok(bson::to_bson(&value)?)
}

/// The worker's side of the collection.
pub struct ReportQueue {
    db: Db,
    store: Store<ReportRecord>,
}

impl ReportQueue {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            store: Store::new(db),
        }
    }

    /// Reports a worker may claim, oldest first: QUEUED ones, and RUNNING
    /// ones whose lease has run out.
    pub async fn claimable(&self, limit: i64) -> DbResult<Vec<ReportRecord>> {
        let filter = doc! { "$or": [
            { "status": status(ReportStatus::Queued)? },
            { "status": status(ReportStatus::Running)?, "lease.until": { "$lt": DateTime::now() } },
        ] };
        let found: Vec<Document> = self
            .store
            .collection()
            .find(filter)
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .limit(limit)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        crate::db::decode_all(found)
    }

    /// Claims the next attempt of `seen` (as read by `claimable`) for
    /// `owner`; one that has used `max_attempts` is failed instead. A claim
    /// row whose report never moved on (its worker stopped between the two
    /// writes) counts as an attempt once a lease's time has passed.
    pub async fn claim(
        &self,
        seen: &ReportRecord,
        owner: &str,
        lease: Duration,
        max_attempts: i32,
    ) -> DbResult<Claim> {
        let mut attempt = seen.attempts + 1;
        loop {
            let key = format!("{}:{attempt}", seen.id.to_hex());
            let row =
                doc! { "_id": &key, "reportId": seen.id, "owner": owner, "at": DateTime::now() };
            match self.db.collection(CLAIMS).insert_one(row).await {
                Ok(_) => break,
                Err(e) if duplicate_key(&e) => {
                    let held = self
                        .db
                        .collection(CLAIMS)
                        .find_one(doc! { "_id": &key })
                        .max_time(self.db.max_time())
                        .await?;
                    let expired = held
                        .and_then(|h| h.get_datetime("at").ok().copied())
                        .is_some_and(|at| later_than(at, lease));
                    if !expired {
                        return Ok(Claim::Lost);
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let unchanged = doc! {
            "_id": seen.id,
            "attempts": seen.attempts,
            "status": { "$in": [status(ReportStatus::Queued)?, status(ReportStatus::Running)?] },
        };
        let now = DateTime::now();
        let used = attempt - 1;
        let update = if used >= max_attempts {
            doc! { "$set": {
                "status": status(ReportStatus::Failed)?,
                "error": gave_up_reason(used),
                "attempts": used,
                "lease": Bson::Null,
                "updatedAt": now,
            } }
        } else {
            doc! { "$set": {
                "status": status(ReportStatus::Running)?,
                "attempts": attempt,
                "lease": { "owner": owner, "until": later(lease) },
                "startedAt": now,
                "updatedAt": now,
            } }
        };
        let after = self.update(unchanged, update).await?;
        Ok(match after {
            None => Claim::Lost,
            Some(r) if r.status == ReportStatus::Failed => {
                self.forget_claims(r.id).await?;
                Claim::GaveUp(r)
            }
            Some(r) => Claim::Running(r),
        })
    }

    /// Removes a finished report's claim rows. A worker still holding an old
    /// view of the report may claim again, but its update then matches
    /// nothing: only QUEUED and RUNNING reports are claimed.
    pub async fn forget_claims(&self, report: ObjectId) -> DbResult<()> {
        self.db
            .collection(CLAIMS)
            .delete_many(doc! { "reportId": report })
            .await?;
        Ok(())
    }

    /// The filter that matches `held` only while `held`'s claim still holds it.
    fn held(held: &ReportRecord, owner: &str) -> DbResult<Document> {
        Ok(doc! {
            "_id": held.id,
            "status": status(ReportStatus::Running)?,
            "attempts": held.attempts,
            "lease.owner": owner,
        })
    }

    /// Extends the lease; false when the claim no longer holds the report.
    pub async fn renew(&self, held: &ReportRecord, owner: &str, lease: Duration) -> DbResult<bool> {
        let renewed = self
            .store
            .collection()
            .update_one(
                Self::held(held, owner)?,
                doc! { "$set": { "lease.until": later(lease) } },
            )
            .await?;
        Ok(renewed.matched_count == 1)
    }

    /// Stores the result (READY); `None` when the claim no longer held it.
    pub async fn complete(
        &self,
        held: &ReportRecord,
        owner: &str,
        result: Document,
    ) -> DbResult<Option<ReportRecord>> {
        let now = DateTime::now();
        self.update(
            Self::held(held, owner)?,
            doc! { "$set": {
                "status": status(ReportStatus::Ready)?,
                "result": result,
                "error": Bson::Null,
                "lease": Bson::Null,
                "generatedAt": now,
                "updatedAt": now,
            } },
        )
        .await
    }

    /// Fails the report with `reason`; `None` when the claim no longer held it.
    pub async fn fail(
        &self,
        held: &ReportRecord,
        owner: &str,
        reason: &str,
    ) -> DbResult<Option<ReportRecord>> {
        self.update(
            Self::held(held, owner)?,
            doc! { "$set": {
                "status": status(ReportStatus::Failed)?,
                "error": reason,
                "lease": Bson::Null,
                "updatedAt": DateTime::now(),
            } },
        )
        .await
    }

    /// Puts the report back in the queue (QUEUED) for any worker to take
    /// as its next attempt; `None` when the claim no longer held it.
    pub async fn release(
        &self,
        held: &ReportRecord,
        owner: &str,
    ) -> DbResult<Option<ReportRecord>> {
        self.update(
            Self::held(held, owner)?,
            doc! { "$set": {
                "status": status(ReportStatus::Queued)?,
                "lease": Bson::Null,
                "updatedAt": DateTime::now(),
            } },
        )
        .await
    }

    async fn update(&self, filter: Document, update: Document) -> DbResult<Option<ReportRecord>> {
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .max_time(self.db.max_time())
            .build();
        let after = self
            .store
            .collection()
            .find_one_and_update(filter, update)
            .with_options(options)
            .await?;
        Ok(after.map(bson::from_document).transpose()?)
    }
}
