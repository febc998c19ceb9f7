//! The seeded enrolments: an enrolment record and the programme seat it claims.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use chrono::{Duration, NaiveDate};

use super::record::{EnrollmentRecord, Goal, closed_key, open_key};
use super::rules::EnrollmentStatus;
use crate::models::disability_program::record::DisabilityProgramRecord;

/// Who is placed in which programme, with which therapist, from when, in which status.
pub struct Placement<'a> {
    pub beneficiary_id: ObjectId,
    pub program: &'a DisabilityProgramRecord,
    pub therapist: ObjectId,
    pub status: EnrollmentStatus,
    pub start: NaiveDate,
}

/// The enrolment `enrolment_id` of a placement, working toward `goal`, and
/// while it holds a place the seat it claims: the next of its programme in
/// `open_seats` (seats taken per programme), refused past the capacity.
pub fn enrolment(
    enrolment_id: ObjectId,
    placement: Placement<'_>,
    goal: String,
    open_seats: &mut HashMap<ObjectId, usize>,
    created: DateTime,
) -> anyhow::Result<(EnrollmentRecord, Option<Document>)> {
    let Placement {
        beneficiary_id: id,
        program,
        therapist,
        status,
        start,
    } = placement;
    let ended = !status.holds_place();
    let record = EnrollmentRecord {
        id: enrolment_id,
        beneficiary_id: id,
        program_id: program.id,
        therapist_id: therapist,
        status,
        start_date: start.format("%Y-%m-%d").to_string(),
        end_date: ended.then(|| {
            (start + Duration::weeks(i64::from(program.duration_weeks)))
                .format("%Y-%m-%d")
                .to_string()
        }),
        goals: vec![Goal {
            description: goal,
            target_date: Some(
                (start + Duration::weeks(i64::from(program.duration_weeks)))
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            achieved: status == EnrollmentStatus::Completed,
        }],
        active_key: if ended {
            closed_key(enrolment_id)
        } else {
            open_key(id, program.id)
        },
        created_at: created,
        updated_at: created,
    };
    let mut seat = None;
    if !ended {
        let taken = open_seats.entry(program.id).or_default();
        anyhow::ensure!(
            (*taken as i32) < program.capacity,
            "the seed overfills {}",
            program.name
        );
        seat = Some(doc! {
            "_id": format!("{}:{}", program.id.to_hex(), taken),
            "programId": program.id, "enrollmentId": enrolment_id, "at": created,
        });
        *taken += 1;
    }
    Ok((record, seat))
}
