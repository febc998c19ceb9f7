//! The seeded sessions: the five weekly sessions of an enrolment.

use bson::DateTime;
use chrono::{Duration, NaiveDate};

use super::record::TherapySessionRecord;
use super::rules::Attendance;
use crate::models::enrollment::record::EnrollmentRecord;
use crate::models::seeding::{at, pick, seed_id};
use crate::vault::DataKey;

/// The weekly sessions of `enrolment` from `start`: the `index`-th
/// enrolment of the seed (of the `k`-th beneficiary of its round), working
/// on `goal`; the notes sealed with `key` (the beneficiary's).
pub fn weekly(
    enrolment: &EnrollmentRecord,
    start: NaiveDate,
    index: usize,
    k: usize,
    goal: &str,
    created: DateTime,
    key: &DataKey,
) -> anyhow::Result<Vec<TherapySessionRecord>> {
    let mut sessions = Vec::new();
    for week in 0..5usize {
        let started = at(start + Duration::weeks(week as i64), 9 + (k % 6) as u32, 0)?;
        sessions.push(TherapySessionRecord {
            id: seed_id("session", index * 5 + week),
            enrollment_id: enrolment.id,
            beneficiary_id: enrolment.beneficiary_id,
            therapist_id: enrolment.therapist_id,
            program_id: enrolment.program_id,
            schedule_id: None,
            started_at: DateTime::from_millis(started.timestamp_millis()),
            duration_minutes: crate::models::therapy_session::rules::session_minutes(45)
                .map_err(anyhow::Error::msg)?,
            attendance: *pick(
                &[
                    Attendance::Attended,
                    Attendance::Attended,
                    Attendance::Attended,
                    Attendance::Absent,
                    Attendance::Cancelled,
                ],
                week + k,
            )?,
            notes: Some(key.seal(&format!("Week {}: worked on \"{goal}\".", week + 1))),
            progress_score: Some(
                crate::models::therapy_session::rules::progress_score(
                    ((30 + week * 12 + k % 10) % 101) as i32,
                )
                .map_err(anyhow::Error::msg)?,
            ),
            created_at: created,
            updated_at: created,
        });
    }
    Ok(sessions)
}
