//! THERAPIST_WORKLOAD: per therapist, the sessions in a window and the
//! enrolments they run that are ACTIVE now.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{Bson, doc};
use serde_json::json;

use super::compute::Computed;
use super::params::Window;
use super::reads::{find, grouped};
use super::values::{global, key, number, text, window_filter, window_json, wire};
use crate::db::Db;
use crate::domain::{NodeKind, Role};
use crate::models::enrollment::record as enrollments;
use crate::models::enrollment::rules::EnrollmentStatus;
use crate::models::therapy_session::record as sessions;
use crate::models::therapy_session::rules::Attendance;

/// THERAPIST_WORKLOAD: per therapist, the sessions in the window and the
/// enrolments they run that are ACTIVE now.
pub async fn compute(db: &Db, window: Window) -> Computed {
    let mut in_window = doc! {};
    window_filter(&mut in_window, "startedAt", window);
    let groups = grouped(
        db,
        sessions::COLLECTION,
        &in_window,
        Bson::Document(doc! { "therapist": "$therapistId", "attendance": "$attendance" }),
        &[
            ("count", Bson::Int32(1)),
            ("minutes", "$durationMinutes".into()),
        ],
    )
    .await?;
    let active = grouped(
        db,
        enrollments::COLLECTION,
        &doc! { "status": bson::to_bson(&EnrollmentStatus::Active)? },
        "$therapistId".into(),
        &[("count", Bson::Int32(1))],
    )
    .await?;
    #[derive(Default)]
    struct Load {
        sessions: i64,
        attended: i64,
        minutes: i64,
        attended_minutes: i64,
        active: i64,
    }
    let attended_name = wire(&Attendance::Attended)?;
    let mut loads: HashMap<ObjectId, Load> = HashMap::new();
    for group in &groups {
        let Some(Bson::ObjectId(id)) = key(group, "therapist") else {
            continue;
        };
        let load = loads.entry(*id).or_default();
        let (count, minutes) = (number(group, "count"), number(group, "minutes"));
        load.sessions += count;
        load.minutes += minutes;
        if text(key(group, "attendance")) == attended_name {
            load.attended += count;
            load.attended_minutes += minutes;
        }
    }
    for group in &active {
        if let Ok(id) = group.get_object_id("_id") {
            loads.entry(id).or_default().active += number(group, "count");
        }
    }
    let seen: Vec<ObjectId> = loads.keys().copied().collect();
    let people = find(
        db,
        crate::models::user::record::COLLECTION,
        doc! { "$or": [
            { "role": bson::to_bson(&Role::Therapist)? },
            { "_id": { "$in": seen } },
        ] },
        doc! { "name": 1 },
        doc! { "name": 1, "_id": 1 },
        None,
    )
    .await?;
    let mut total = Load::default();
    let mut rows = Vec::with_capacity(people.len());
    for person in &people {
        let Ok(id) = person.get_object_id("_id") else {
            continue;
        };
        let load = loads.remove(&id).unwrap_or_default();
        total.sessions += load.sessions;
        total.attended += load.attended;
        total.minutes += load.minutes;
        total.attended_minutes += load.attended_minutes;
        total.active += load.active;
        rows.push(json!({
            "therapistId": global(NodeKind::User, id),
            "name": text(person.get("name")),
            "sessions": load.sessions,
            "attendedSessions": load.attended,
            "minutes": load.minutes,
            "attendedMinutes": load.attended_minutes,
            "activeEnrollments": load.active,
        }));
    }
    let (from, to) = window_json(window);
    Ok(json!({
        "from": from,
        "to": to,
        "therapists": rows,
        "totals": {
            "sessions": total.sessions,
            "attendedSessions": total.attended,
            "minutes": total.minutes,
            "attendedMinutes": total.attended_minutes,
            "activeEnrollments": total.active,
        },
    }))
}
