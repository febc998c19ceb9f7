//! The seeded bookings: a booking record and the slot claims it holds.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use chrono::{Duration, Utc};

use super::record::{self as schedules, ScheduleRecord};
use super::rules::{BookingSpan, ScheduleResourceType, ScheduleStatus};
use crate::models::disability_program::record::DisabilityProgramRecord;
use crate::models::seeding::seed_id;

/// A booking to make: of which resource (and the account it books, for a
/// therapist), from when, and its position in its round (which names it
/// and picks its programme and who made it).
pub struct Booking {
    pub kind: ScheduleResourceType,
    pub resource: String,
    pub booked: Option<ObjectId>,
    pub start: chrono::DateTime<Utc>,
    pub position: usize,
}

/// The `n`-th booking row, 45 minutes long, in one of `programs`, made by
/// one of `bookers`; with the `schedule_slots` rows it claims.
pub fn booking(
    n: usize,
    booking: Booking,
    programs: &[DisabilityProgramRecord],
    bookers: &[ObjectId],
    created: DateTime,
) -> anyhow::Result<(ScheduleRecord, Vec<Document>)> {
    let Booking {
        kind,
        resource,
        booked,
        start,
        position: i,
    } = booking;
    let span =
        BookingSpan::new(start, start + Duration::minutes(45)).map_err(anyhow::Error::msg)?;
    let record = ScheduleRecord {
        id: seed_id("schedule", n),
        title: if kind == ScheduleResourceType::Room {
            format!("Group session {}", i + 1)
        } else {
            "Family meeting".into()
        },
        resource_type: kind,
        resource_id: resource,
        booked_user_id: booked,
        start_date: DateTime::from_millis(span.start.timestamp_millis()),
        end_date: DateTime::from_millis(span.end.timestamp_millis()),
        status: ScheduleStatus::Scheduled,
        program_id: programs.get(i % programs.len().max(1)).map(|p| p.id),
        created_by: bookers[i % bookers.len()],
        created_at: created,
        updated_at: created,
    };
    let mut slots = Vec::new();
    for slot in schedules::slot_ids(&record, &span) {
        slots.push(doc! { "_id": slot, "scheduleId": record.id, "at": created });
    }
    Ok((record, slots))
}
