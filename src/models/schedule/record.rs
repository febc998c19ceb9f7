//! The `schedules` collection: bookings of an asset, a room or a therapist.
//! ADMIN and MANAGER see all; everyone else the bookings they made and the
//! ones that book them.
//!
//! Two SCHEDULED bookings of one resource never overlap, also when requests
//! race, without transactions: times sit on a five-minute grid, and a
//! booking first inserts one `schedule_slots` row per slot it covers, with
//! `_id = "<resourceType>:<resourceId>:<minute>"`. The unique `_id` lets only
//! one booking hold a slot; a booking that meets a held slot deletes the
//! slots it inserted and is refused. Cancelling marks the booking, then
//! deletes its slots. A crash between two writes leaves slots whose booking
//! is missing or no longer SCHEDULED: such slots are stale, and a booking
//! that meets one deletes it and tries again.

use std::collections::{HashMap, HashSet};

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::rules::{BookingSpan, ScheduleResourceType, ScheduleStatus};
use crate::db::model::{Access, Clause, Model, Scope};
use crate::db::store::{ForUpdate, Record, Store};
use crate::db::{Db, DbError, DbResult, filters};

pub const COLLECTION: &str = "schedules";
pub const SLOTS: &str = "schedule_slots";
/// How old a slot must be before a missing booking makes it stale.
const SLOT_GRACE_MS: i64 = 30_000;

/// A stored booking.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub title: String,
    pub resource_type: ScheduleResourceType,
    /// An Asset or User global id, or a room code.
    pub resource_id: String,
    /// The booked user, when the resource is a therapist (drives the scope).
    #[serde(default)]
    pub booked_user_id: Option<ObjectId>,
    pub start_date: DateTime,
    pub end_date: DateTime,
    pub status: ScheduleStatus,
    #[serde(default)]
    pub program_id: Option<ObjectId>,
    pub created_by: ObjectId,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

/// A validated change to a booking (see `ForUpdate`); its time and
/// resource do not change (cancel and book again), its status only by
/// cancelling.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleForUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_id: Option<Option<ObjectId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ScheduleStatus>,
}

impl ForUpdate for ScheduleForUpdate {}

impl Record for ScheduleRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

impl Model for ScheduleRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::Schedule;
    const PUBLIC: &'static [&'static str] = &[
        "title",
        "resourceType",
        "status",
        "startDate",
        "endDate",
        "programId",
    ];
    type Order = super::ScheduleOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            (
                "resourceId_startDate",
                doc! { "resourceId": 1, "startDate": 1 },
                false,
            ),
            ("createdBy", doc! { "createdBy": 1 }, false),
            ("bookedUserId", doc! { "bookedUserId": 1 }, false),
        ]
    }

    async fn scope(access: &Access) -> DbResult<Scope> {
        Ok(match access.viewer() {
            Some(v) if v.is_manager() => Scope::All,
            Some(v) => Scope::AnyOf(vec![
                Clause::equals("createdBy", v.id),
                Clause::equals("bookedUserId", v.id),
            ]),
            None => Scope::Nothing,
        })
    }
}

/// Which bookings a list shows.
#[derive(Debug, Clone, Default)]
pub struct ScheduleFilter {
    pub resource_types: Vec<ScheduleResourceType>,
    pub resource_id: Option<String>,
    pub statuses: Vec<ScheduleStatus>,
    pub program: Option<ObjectId>,
    pub starts_from: Option<DateTime>,
    pub starts_to: Option<DateTime>,
}

impl ScheduleFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        filters::one_of(&mut filter, "resourceType", &self.resource_types)?;
        if let Some(resource) = &self.resource_id {
            filter.insert("resourceId", resource);
        }
        filters::one_of(&mut filter, "status", &self.statuses)?;
        if let Some(program) = self.program {
            filter.insert("programId", program);
        }
        filters::range(&mut filter, "startDate", self.starts_from, self.starts_to);
        Ok(filter)
    }
}

/// The ids of the slot rows a booking holds.
pub fn slot_ids(record: &ScheduleRecord, span: &BookingSpan) -> Vec<String> {
    let kind = bson::to_bson(&record.resource_type)
        .ok()
        .and_then(|b| b.as_str().map(str::to_string))
        .unwrap_or_default();
    span.slots()
        .into_iter()
        .map(|minute| format!("{kind}:{}:{minute}", record.resource_id))
        .collect()
}

/// The booking writes that keep resources from being double-booked.
pub struct Schedules {
    db: Db,
    store: Store<ScheduleRecord>,
}

impl Schedules {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            store: Store::new(db),
        }
    }

    fn slots(&self) -> mongodb::Collection<Document> {
        self.db.collection(SLOTS)
    }

    /// Claims the booking's slots, then inserts it. `Ok(false)` when another
    /// SCHEDULED booking holds one of the slots; nothing stays written then.
    pub async fn book(&self, record: &ScheduleRecord, span: &BookingSpan) -> DbResult<bool> {
        let ids = slot_ids(record, span);
        let now = DateTime::now();
        for _ in 0..3 {
            let rows: Vec<Document> = ids
                .iter()
                .map(|id| doc! { "_id": id, "scheduleId": record.id, "at": now })
                .collect();
            match self.slots().insert_many(rows).ordered(true).await {
                Ok(_) => {
                    if let Err(error) = self.store.insert(record, "duplicate").await {
                        self.release(record.id).await?;
                        return Err(error);
                    }
                    return Ok(true);
                }
                Err(e) if crate::db::duplicate_key(&e) => {
                    self.release(record.id).await?;
                    if !self.reclaim_stale(&ids).await? {
                        return Ok(false);
                    }
                }
                Err(e) => {
                    self.release(record.id).await?;
                    return Err(e.into());
                }
            }
        }
        Ok(false)
    }

    /// Deletes held slots among `ids` whose booking is missing (and old
    /// enough) or no longer SCHEDULED; true when any was deleted.
    async fn reclaim_stale(&self, ids: &[String]) -> DbResult<bool> {
        let held: Vec<Document> = self
            .slots()
            .find(doc! { "_id": { "$in": ids } })
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        let holders: Vec<ObjectId> = held
            .iter()
            .filter_map(|s| s.get_object_id("scheduleId").ok())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let live: HashMap<ObjectId, ScheduleStatus> = self
            .store
            .get_many(&holders)
            .await?
            .into_iter()
            .map(|s| (s.id, s.status))
            .collect();
        let now = DateTime::now().timestamp_millis();
        let mut reclaimed = false;
        for slot in &held {
            let (Ok(id), Ok(holder)) = (slot.get_str("_id"), slot.get_object_id("scheduleId"))
            else {
                continue;
            };
            let stale = match live.get(&holder) {
                Some(status) => *status != ScheduleStatus::Scheduled,
                None => slot
                    .get_datetime("at")
                    .map(|at| now - at.timestamp_millis() > SLOT_GRACE_MS)
                    .unwrap_or(true),
            };
            if stale {
                self.slots()
                    .delete_one(doc! { "_id": id, "scheduleId": holder })
                    .await?;
                reclaimed = true;
            }
        }
        Ok(reclaimed)
    }

    /// Frees a booking's slots (after it is cancelled, or to undo a claim).
    pub async fn release(&self, schedule: ObjectId) -> DbResult<()> {
        self.slots()
            .delete_many(doc! { "scheduleId": schedule })
            .await
            .map_err(DbError::from)?;
        Ok(())
    }
}

impl Db {
    /// The schedules collection's own operations.
    pub fn schedules(&self) -> Schedules {
        Schedules::new(self)
    }
}
