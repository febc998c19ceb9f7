//! PROGRAM_OCCUPANCY: per programme, its places and the PENDING and ACTIVE
//! enrolments holding them.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{Bson, doc};
use serde_json::json;

use super::compute::{Computed, Failure};
use super::reads::{find, grouped};
use super::values::{global, key, number, ratio, text, wire};
use crate::db::Db;
use crate::domain::NodeKind;
use crate::models::disability_program::record as programs;
use crate::models::enrollment::record as enrollments;
use crate::models::enrollment::rules::EnrollmentStatus;

/// PROGRAM_OCCUPANCY: per programme, its places and the enrolments holding them.
pub async fn compute(db: &Db, program: Option<ObjectId>) -> Computed {
    let mut which = doc! {};
    if let Some(id) = program {
        which.insert("_id", id);
    }
    let found = find(
        db,
        programs::COLLECTION,
        which,
        doc! { "name": 1, "capacity": 1, "status": 1 },
        doc! { "name": 1, "_id": 1 },
        None,
    )
    .await?;
    if program.is_some() && found.is_empty() {
        return Err(Failure::Invalid(
            "no programme has the id given in `programId`".into(),
        ));
    }
    let holding = [EnrollmentStatus::Pending, EnrollmentStatus::Active];
    let mut matched = doc! { "status": { "$in": bson::to_bson(&holding)? } };
    if let Some(id) = program {
        matched.insert("programId", id);
    }
    let counts = grouped(
        db,
        enrollments::COLLECTION,
        &matched,
        Bson::Document(doc! { "program": "$programId", "status": "$status" }),
        &[("count", Bson::Int32(1))],
    )
    .await?;
    let pending_name = wire(&EnrollmentStatus::Pending)?;
    let mut held: HashMap<ObjectId, (i64, i64)> = HashMap::new();
    for group in &counts {
        let Some(Bson::ObjectId(id)) = key(group, "program") else {
            continue;
        };
        let entry = held.entry(*id).or_default();
        if text(key(group, "status")) == pending_name {
            entry.0 += number(group, "count");
        } else {
            entry.1 += number(group, "count");
        }
    }
    let (mut capacity, mut pending, mut active) = (0, 0, 0);
    let mut rows = Vec::with_capacity(found.len());
    for row in &found {
        let Ok(id) = row.get_object_id("_id") else {
            continue;
        };
        let places = number(row, "capacity");
        let (p, a) = held.get(&id).copied().unwrap_or_default();
        capacity += places;
        pending += p;
        active += a;
        rows.push(json!({
            "programId": global(NodeKind::DisabilityProgram, id),
            "name": text(row.get("name")),
            "status": text(row.get("status")),
            "capacity": places,
            "pending": p,
            "active": a,
            "occupied": p + a,
            "occupancy": ratio(p + a, places),
        }));
    }
    Ok(json!({
        "programs": rows,
        "totals": {
            "capacity": capacity,
            "pending": pending,
            "active": active,
            "occupied": pending + active,
            "occupancy": ratio(pending + active, capacity),
        },
    }))
}
