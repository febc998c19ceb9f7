//! The `enrollments` collection: a beneficiary in a programme with a
//! therapist. Two rules hold under concurrent requests without transactions
//! (FerretDB has none, and its conditional updates are not atomic), each
//! decided by an insert under a unique key:
//!
//! - **Capacity.** A PENDING or ACTIVE enrolment holds a seat: a row in
//!   `enrollment_seats` with `_id = "<programme>:<n>"`, `n < capacity`.
//!   Enrolling inserts a free seat number first; racing requests that pick
//!   the same number are refused by the unique `_id`, so at most `capacity`
//!   seats exist. Leaving PENDING/ACTIVE deletes the seat.
//! - **One open enrolment per beneficiary and programme.** The enrolment's
//!   `activeKey` is `"<beneficiary>:<programme>"` while it holds a place and
//!   `"closed:<id>"` after, under a unique index.
//! - **Status moves.** Leaving a status inserts `enrollment_transitions`
//!   `_id = "<enrolment>:<from>"`; statuses never repeat, so only one move
//!   out of each status can ever win.
//!
//! A crash between two writes leaves nothing inconsistent: a seat whose
//! enrolment does not exist (crash after the seat, before the enrolment) or
//! no longer holds a place (crash after the status change, before the seat
//! was freed) is stale and is reclaimed by the next enrolment that finds the
//! programme full; a transition claim whose move was not applied is applied
//! by the next request that meets it.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::rules::EnrollmentStatus;
use crate::db::model::{Access, Clause, Model, Scope};
use crate::db::store::{ForUpdate, Record, Store};
use crate::db::{Db, DbError, DbResult, duplicate_key};
use crate::domain::Role;

pub const COLLECTION: &str = "enrollments";
pub const SEATS: &str = "enrollment_seats";
pub const TRANSITIONS: &str = "enrollment_transitions";
/// How old a seat must be before it may be judged stale (an enrolment in
/// flight inserts its seat a moment before itself).
const SEAT_GRACE_MS: i64 = 30_000;

/// One goal of an enrolment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goal {
    pub description: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub target_date: Option<String>,
    pub achieved: bool,
}

/// A validated change to an enrolment (see `ForUpdate`); its status moves
/// through `setEnrollmentStatus`, not here.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentForUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub therapist_id: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goals: Option<Vec<Goal>>,
}

impl ForUpdate for EnrollmentForUpdate {}

/// A stored enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub beneficiary_id: ObjectId,
    pub program_id: ObjectId,
    pub therapist_id: ObjectId,
    pub status: EnrollmentStatus,
    /// `YYYY-MM-DD`.
    pub start_date: String,
    /// `YYYY-MM-DD`; set when the enrolment is completed or withdrawn.
    #[serde(default)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub goals: Vec<Goal>,
    pub active_key: String,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

impl Record for EnrollmentRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

impl Model for EnrollmentRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::Enrollment;
    const SUBJECT: Option<&'static str> = Some("beneficiaryId");
    const PERSONAL: &'static [&'static str] = &["goals"];
    const PUBLIC: &'static [&'static str] = &["status", "programId"];
    const INTERNAL: &'static [&'static str] = &["activeKey"];
    type Order = super::EnrollmentOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            ("activeKey_unique", doc! { "activeKey": 1 }, true),
            ("programId", doc! { "programId": 1 }, false),
            ("beneficiaryId", doc! { "beneficiaryId": 1 }, false),
            ("therapistId", doc! { "therapistId": 1 }, false),
        ]
    }

    async fn scope(access: &Access) -> DbResult<Scope> {
        Ok(match access.viewer() {
            Some(v) if v.is_manager() => Scope::All,
            Some(v) if v.role == Role::Therapist => {
                Scope::AnyOf(vec![Clause::equals("therapistId", v.id)])
            }
            _ => Scope::Nothing,
        })
    }
}

/// The unique key of an enrolment that holds a place.
pub fn open_key(beneficiary: ObjectId, program: ObjectId) -> String {
    format!("{}:{}", beneficiary.to_hex(), program.to_hex())
}

/// The key of an enrolment that no longer holds a place.
pub fn closed_key(id: ObjectId) -> String {
    format!("closed:{}", id.to_hex())
}

/// Which enrolments a list shows.
#[derive(Debug, Clone, Default)]
pub struct EnrollmentFilter {
    pub statuses: Vec<EnrollmentStatus>,
    pub beneficiary: Option<ObjectId>,
    pub program: Option<ObjectId>,
    pub therapist: Option<ObjectId>,
}

impl EnrollmentFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        crate::db::filters::one_of(&mut filter, "status", &self.statuses)?;
        for (field, value) in [
            ("beneficiaryId", self.beneficiary),
            ("programId", self.program),
            ("therapistId", self.therapist),
        ] {
            if let Some(id) = value {
                filter.insert(field, id);
            }
        }
        Ok(filter)
    }
}

/// Why an enrolment write was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Full,
    AlreadyEnrolled,
    Moved(EnrollmentStatus),
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Self::Full => "the programme is full".into(),
            Self::AlreadyEnrolled => {
                "this beneficiary already has a pending or active enrolment in this programme"
                    .into()
            }
            Self::Moved(status) => format!(
                "this enrolment has already moved on (to {})",
                format!("{status:?}").to_uppercase()
            ),
        }
    }
}

/// The business writes of enrolments.
pub struct Enrollments {
    db: Db,
    store: Store<EnrollmentRecord>,
}

impl Enrollments {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            store: Store::new(db),
        }
    }

    /// Takes a seat in the programme, then inserts the enrolment. On any
    /// refusal nothing stays written.
    pub async fn enroll(
        &self,
        record: &EnrollmentRecord,
        capacity: i32,
    ) -> DbResult<Result<(), Refusal>> {
        let Some(seat) = self
            .take_seat(record.program_id, record.id, capacity)
            .await?
        else {
            return Ok(Err(Refusal::Full));
        };
        match self.store.insert(record, "duplicate").await {
            Ok(()) => Ok(Ok(())),
            Err(DbError::Duplicate(_)) => {
                self.seats().delete_one(doc! { "_id": &seat }).await?;
                Ok(Err(Refusal::AlreadyEnrolled))
            }
            Err(other) => {
                self.seats().delete_one(doc! { "_id": &seat }).await?;
                Err(other)
            }
        }
    }

    fn seats(&self) -> mongodb::Collection<Document> {
        self.db.collection(SEATS)
    }

    /// Inserts the first free seat number below `capacity`; `None` when full.
    async fn take_seat(
        &self,
        program: ObjectId,
        enrollment: ObjectId,
        capacity: i32,
    ) -> DbResult<Option<String>> {
        let taken: Vec<Document> = self
            .seats()
            .find(doc! { "programId": program })
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        let taken_ids: Vec<String> = taken
            .iter()
            .filter_map(|d| d.get_str("_id").ok().map(str::to_string))
            .collect();
        let seat_id = |n: i32| format!("{}:{n}", program.to_hex());
        let mut free: Vec<i32> = (0..capacity)
            .filter(|n| !taken_ids.contains(&seat_id(*n)))
            .collect();
        if free.is_empty() {
            free = self.reclaim_stale(&taken, capacity).await?;
        }
        for n in free {
            let id = seat_id(n);
            let seat = doc! {
                "_id": &id, "programId": program, "enrollmentId": enrollment, "at": DateTime::now(),
            };
            match self.seats().insert_one(seat).await {
                Ok(_) => return Ok(Some(id)),
                Err(e) if duplicate_key(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Deletes seats whose enrolment is gone or no longer holds a place;
    /// returns the seat numbers freed.
    async fn reclaim_stale(&self, seats: &[Document], capacity: i32) -> DbResult<Vec<i32>> {
        let holders: Vec<ObjectId> = seats
            .iter()
            .filter_map(|s| s.get_object_id("enrollmentId").ok())
            .collect();
        let holding: HashMap<ObjectId, EnrollmentStatus> = self
            .store
            .get_many(&holders)
            .await?
            .into_iter()
            .map(|e| (e.id, e.status))
            .collect();
        let now = DateTime::now().timestamp_millis();
        let mut freed = Vec::new();
        for seat in seats {
            let (Ok(id), Ok(holder)) = (seat.get_str("_id"), seat.get_object_id("enrollmentId"))
            else {
                continue;
            };
            let old = seat
                .get_datetime("at")
                .map(|at| now - at.timestamp_millis() > SEAT_GRACE_MS)
                .unwrap_or(true);
            let stale = match holding.get(&holder) {
                Some(status) => !status.holds_place(),
                None => old,
            };
            let number = id
                .rsplit(':')
                .next()
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n < capacity);
            if let (true, Some(n)) = (stale, number) {
                let removed = self
                    .seats()
                    .delete_one(doc! { "_id": id, "enrollmentId": holder })
                    .await?;
                if removed.deleted_count == 1 {
                    tracing::info!(seat = id, "reclaimed a stale programme seat");
                }
                freed.push(n);
            }
        }
        Ok(freed)
    }

    /// Claims the move out of `record.status`; `Err(Moved)` when another
    /// request already moved it (and that move is applied if it was not).
    pub async fn claim_move(
        &self,
        record: &EnrollmentRecord,
        to: EnrollmentStatus,
    ) -> DbResult<Result<(), Refusal>> {
        let key = transition_key(record.id, record.status);
        let claim = doc! { "_id": &key, "to": bson::to_bson(&to)?, "at": DateTime::now() };
        match self.db.collection(TRANSITIONS).insert_one(claim).await {
            Ok(_) => Ok(Ok(())),
            Err(e) if duplicate_key(&e) => {
                let existing = self
                    .db
                    .collection(TRANSITIONS)
                    .find_one(doc! { "_id": &key })
                    .max_time(self.db.max_time())
                    .await?;
                let claimed: Option<EnrollmentStatus> = existing
                    .and_then(|d| d.get("to").cloned())
                    .and_then(|b| bson::from_bson(b).ok());
                let Some(claimed) = claimed else {
                    return Err(DbError::Other(anyhow::anyhow!(
                        "unreadable transition claim"
                    )));
                };
                // The winner may have stopped before applying its move: apply it.
                self.apply_move(record, claimed, DateTime::now()).await?;
                if !claimed.holds_place() {
                    self.release_seat(record.id).await?;
                }
                Ok(Err(Refusal::Moved(claimed)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a claimed move: status, key, end date. Idempotent. The seat is
    /// freed separately (`release_seat`) once the move is recorded.
    pub async fn apply_move(
        &self,
        record: &EnrollmentRecord,
        to: EnrollmentStatus,
        stamp: DateTime,
    ) -> DbResult<Option<EnrollmentRecord>> {
        let mut set = doc! { "status": bson::to_bson(&to)?, "updatedAt": stamp };
        if !to.holds_place() {
            set.insert("activeKey", closed_key(record.id));
            if record.end_date.is_none() {
                set.insert(
                    "endDate",
                    chrono::Utc::now()
                        .date_naive()
                        .format("%Y-%m-%d")
                        .to_string(),
                );
            }
        }
        self.store.set(record.id, set, "duplicate").await
    }

    /// Frees the seat an enrolment held.
    pub async fn release_seat(&self, enrollment: ObjectId) -> DbResult<()> {
        self.seats()
            .delete_many(doc! { "enrollmentId": enrollment })
            .await?;
        Ok(())
    }

    /// Undoes a claimed move whose audit entry could not be written.
    pub async fn undo_move(&self, before: &EnrollmentRecord) -> DbResult<()> {
        self.store.restore(before).await?;
        self.db
            .collection(TRANSITIONS)
            .delete_one(doc! { "_id": transition_key(before.id, before.status) })
            .await?;
        Ok(())
    }

    /// Whether a programme has any enrolment, in any status.
    pub async fn any_in_program(&self, program: ObjectId) -> DbResult<bool> {
        Ok(self
            .store
            .find_one(doc! { "programId": program })
            .await?
            .is_some())
    }

    /// How many seats a programme's open enrolments hold.
    pub async fn seats_taken(&self, program: ObjectId) -> DbResult<u64> {
        Ok(self
            .seats()
            .count_documents(doc! { "programId": program })
            .max_time(self.db.max_time())
            .await?)
    }
}

fn transition_key(id: ObjectId, from: EnrollmentStatus) -> String {
    format!("{}:{:?}", id.to_hex(), from).to_uppercase()
}

impl Db {
    /// The enrollments collection's own operations.
    pub fn enrollments(&self) -> Enrollments {
        Enrollments::new(self)
    }
}
