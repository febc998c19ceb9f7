//! BENEFICIARY_PROGRESS: one beneficiary's sessions in a window, their
//! progress scores, and their enrolments with goals.

use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use serde_json::{Value, json};

use super::compute::{Computed, Failure};
use super::params::Window;
use super::reads::{find, names_of};
use super::values::{global, number, stored_instant, text, window_filter, window_json, wire};
use crate::db::{Db, DbError};
use crate::domain::NodeKind;
use crate::models::beneficiary::record as beneficiaries;
use crate::models::disability_program::record as programs;
use crate::models::enrollment::record as enrollments;
use crate::models::therapy_session::record as sessions;
use crate::models::therapy_session::rules::Attendance;

/// Scored sessions the report lists, newest first.
const LATEST_SCORES: usize = 5;

/// BENEFICIARY_PROGRESS: one beneficiary's sessions in a window, their
/// progress scores, and their enrolments with goals. Session notes are left
/// out (a report outlives the erasure of the person's notes).
pub async fn compute(db: &Db, beneficiary: ObjectId, window: Window) -> Computed {
    let exists = find(
        db,
        beneficiaries::COLLECTION,
        doc! { "_id": beneficiary },
        doc! { "_id": 1 },
        doc! { "_id": 1 },
        Some(1),
    )
    .await?;
    if exists.is_empty() {
        return Err(Failure::Invalid(
            "no beneficiary has the id given in `beneficiaryId`".into(),
        ));
    }
    // One person's sessions are few: one projected read, counted here,
    // costs less than an aggregation per figure.
    let mut in_window = doc! { "beneficiaryId": beneficiary };
    window_filter(&mut in_window, "startedAt", window);
    let held = find(
        db,
        sessions::COLLECTION,
        in_window,
        doc! { "startedAt": 1, "attendance": 1, "durationMinutes": 1, "progressScore": 1 },
        doc! { "startedAt": 1, "_id": 1 },
        None,
    )
    .await?;
    let (mut count, mut minutes) = (0, 0);
    let mut attendance_rows = Vec::new();
    for attendance in Attendance::ALL {
        let name = wire(attendance)?;
        let of: Vec<&Document> = held
            .iter()
            .filter(|s| s.get_str("attendance").ok() == Some(name.as_str()))
            .collect();
        let (c, m) = (
            of.len() as i64,
            of.iter().map(|s| number(s, "durationMinutes")).sum::<i64>(),
        );
        count += c;
        minutes += m;
        attendance_rows.push(json!({ "attendance": name, "count": c, "minutes": m }));
    }
    // Oldest first, as read.
    let scored: Vec<(Value, i64)> = held
        .iter()
        .filter(|s| {
            matches!(
                s.get("progressScore"),
                Some(Bson::Int32(_) | Bson::Int64(_))
            )
        })
        .map(|s| {
            let at = s.get("startedAt").map_or(Value::Null, stored_instant);
            (at, number(s, "progressScore"))
        })
        .collect();
    let score_row = |(at, score): &(Value, i64)| json!({ "startedAt": at, "score": score });
    let average = if scored.is_empty() {
        Value::Null
    } else {
        let total: i64 = scored.iter().map(|(_, s)| s).sum();
        json!((total as f64 / scored.len() as f64 * 100.0).round() / 100.0)
    };
    let latest: Vec<Value> = scored
        .iter()
        .rev()
        .take(LATEST_SCORES)
        .map(score_row)
        .collect();

    let enrolled = find(
        db,
        enrollments::COLLECTION,
        doc! { "beneficiaryId": beneficiary },
        doc! { "programId": 1, "therapistId": 1, "status": 1, "startDate": 1, "endDate": 1, "goals": 1 },
        doc! { "startDate": 1, "_id": 1 },
        None,
    )
    .await?;
    let program_ids: Vec<ObjectId> = enrolled
        .iter()
        .filter_map(|e| e.get_object_id("programId").ok())
        .collect();
    let names = names_of(db, programs::COLLECTION, &program_ids).await?;
    let mut enrollment_rows = Vec::with_capacity(enrolled.len());
    for e in &enrolled {
        let (Ok(id), Ok(program), Ok(therapist)) = (
            e.get_object_id("_id"),
            e.get_object_id("programId"),
            e.get_object_id("therapistId"),
        ) else {
            continue;
        };
        let goals: Vec<enrollments::Goal> = match e.get("goals") {
            Some(goals @ Bson::Array(_)) => {
                bson::from_bson(goals.clone()).map_err(DbError::from)?
            }
            _ => Vec::new(),
        };
        let achieved = goals.iter().filter(|g| g.achieved).count();
        enrollment_rows.push(json!({
            "enrollmentId": global(NodeKind::Enrollment, id),
            "programId": global(NodeKind::DisabilityProgram, program),
            "programName": names.get(&program).cloned().unwrap_or_default(),
            "therapistId": global(NodeKind::User, therapist),
            "status": text(e.get("status")),
            "startDate": text(e.get("startDate")),
            "endDate": e.get_str("endDate").ok(),
            "goalsTotal": goals.len(),
            "goalsAchieved": achieved,
            "goals": goals.iter().map(|g| json!({
                "description": g.description,
                "targetDate": g.target_date,
                "achieved": g.achieved,
            })).collect::<Vec<_>>(),
        }));
    }
    let (from, to) = window_json(window);
    Ok(json!({
        "beneficiaryId": global(NodeKind::Beneficiary, beneficiary),
        "from": from,
        "to": to,
        "sessions": { "count": count, "minutes": minutes, "byAttendance": attendance_rows },
        "progress": {
            "scoredSessions": scored.len(),
            "averageScore": average,
            "first": scored.first().map(score_row),
            "latest": latest,
        },
        "enrollments": enrollment_rows,
    }))
}
