//! The clinic in `seeds/clinic.json`, generated into a coherent data set:
//! programmes with managers and therapists, beneficiaries with Arabic and
//! English names, enrolments (with the programme seats they hold),
//! sessions, and room and therapist bookings that never overlap (with their
//! slot claims). `therapist@alawael.local` runs some enrolments, not all.
//!
//! `--scale N` repeats the set N times. Every row's id is derived from its
//! kind and position, so loading again inserts nothing twice (bulk inserts,
//! duplicates skipped). Values go through the same domain rules as the API.
//! This module walks the rounds; each model's `seed.rs` builds its rows.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{DateTime, Document};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::{at, pick, seed_id};
use crate::auth::password;
use crate::config::SeedSettings;
use crate::db::store::Record;
use crate::db::{Db, duplicate_key};
use crate::domain::{Email, GlobalId, NodeKind};
use crate::models::beneficiary::record::BeneficiaryRecord;
use crate::models::beneficiary::seed::{self as beneficiary_seed, Lists, Names};
use crate::models::disability_program::record::DisabilityProgramRecord;
use crate::models::disability_program::seed::{self as program_seed, Program};
use crate::models::enrollment::record::{self as enrollments, EnrollmentRecord};
use crate::models::enrollment::rules::EnrollmentStatus;
use crate::models::enrollment::seed::{self as enrollment_seed, Placement};
use crate::models::schedule::record::{self as schedules, ScheduleRecord};
use crate::models::schedule::rules::ScheduleResourceType;
use crate::models::schedule::seed::{self as schedule_seed, Booking};
use crate::models::therapy_session::record::TherapySessionRecord;
use crate::models::therapy_session::seed as session_seed;
use crate::models::user::seed::{self as user_seed, Staff};
use crate::vault::Vault;
use secrecy::ExposeSecret;

const CLINIC: &str = include_str!("../../seeds/clinic.json");
/// Beneficiaries per repetition of the set.
const BENEFICIARIES: usize = 64;
/// Bookings of rooms per repetition.
const ROOM_BOOKINGS: usize = 48;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Clinic {
    staff: Vec<Staff>,
    programs: Vec<Program>,
    given_names: Names,
    family_names: Vec<String>,
    disability_types: Vec<String>,
    relations: Vec<String>,
    goals: Vec<String>,
    rooms: Vec<String>,
}

/// Rows added and already present, per collection, in loading order.
#[derive(Debug, Default)]
pub struct ClinicReport {
    pub collections: Vec<(&'static str, u64, u64)>,
}

/// Inserts rows in bulk, skipping those present; returns (added, present).
async fn insert_all(db: &Db, collection: &str, rows: Vec<Document>) -> anyhow::Result<(u64, u64)> {
    let (mut added, mut present) = (0, 0);
    for chunk in rows.chunks(500) {
        let size = chunk.len() as u64;
        match db
            .collection(collection)
            .insert_many(chunk.to_vec())
            .ordered(false)
            .await
        {
            Ok(_) => added += size,
            Err(error) => {
                let duplicates = match &*error.kind {
                    mongodb::error::ErrorKind::InsertMany(e) => {
                        let all = e.write_errors.as_deref().unwrap_or_default();
                        anyhow::ensure!(
                            all.iter().all(|w| w.code == 11000) && e.write_concern_error.is_none(),
                            "seeding {collection} failed: {error}"
                        );
                        all.len() as u64
                    }
                    _ if duplicate_key(&error) => size,
                    _ => anyhow::bail!("seeding {collection} failed: {error}"),
                };
                added += size - duplicates.min(size);
                present += duplicates.min(size);
            }
        }
    }
    Ok((added, present))
}

fn docs<T: serde::Serialize>(rows: &[T]) -> anyhow::Result<Vec<Document>> {
    rows.iter()
        .map(|r| bson::to_document(r).map_err(anyhow::Error::from))
        .collect()
}

/// Loads the clinic `scale` times; `progress` receives a line per collection.
pub async fn load(
    db: &Db,
    vault: &Vault,
    settings: &SeedSettings,
    scale: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<ClinicReport> {
    let clinic: Clinic = serde_json::from_str(CLINIC)?;
    let index = vault.indexer().await?;
    let mut report = ClinicReport::default();
    let mut note = |name: &'static str, (added, present): (u64, u64)| {
        progress(&format!("{name}: {added} added, {present} already present"));
        report.collections.push((name, added, present));
    };

    // Staff beyond the four development accounts.
    let hash = password::hash(settings.password.expose_secret().to_string()).await?;
    let mut staff_added = (0, 0);
    for person in &clinic.staff {
        let email = Email::parse(&person.email).map_err(anyhow::Error::msg)?;
        if db.users().find_by_email(&email).await?.is_some() {
            staff_added.1 += 1;
            continue;
        }
        db.users()
            .create(user_seed::staff_account(person, email, hash.clone()))
            .await?;
        staff_added.0 += 1;
    }
    note("users", staff_added);
    let mut ids: HashMap<String, ObjectId> = HashMap::new();
    for email in [
        "admin@alawael.local",
        "manager@alawael.local",
        "therapist@alawael.local",
        "user@alawael.local",
    ]
    .into_iter()
    .map(str::to_string)
    .chain(clinic.staff.iter().map(|s| s.email.clone()))
    {
        let parsed = Email::parse(&email).map_err(anyhow::Error::msg)?;
        let user = db.users().find_by_email(&parsed).await?.ok_or_else(|| {
            anyhow::anyhow!("seed account {email} is missing; run the seed without --skip")
        })?;
        ids.insert(email, user.id);
    }
    let id_of = |email: &str| {
        ids.get(email)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no {email}"))
    };
    let therapists = [
        id_of("therapist@alawael.local")?,
        id_of("therapist.speech@alawael.local")?,
        id_of("therapist.ot@alawael.local")?,
        id_of("therapist.behaviour@alawael.local")?,
    ];
    let managers = [
        id_of("manager@alawael.local")?,
        id_of("manager.education@alawael.local")?,
    ];
    let bookers = [
        managers[0],
        id_of("user@alawael.local")?,
        therapists[0],
        id_of("admin@alawael.local")?,
    ];

    let base =
        NaiveDate::from_ymd_opt(2026, 1, 4).ok_or_else(|| anyhow::anyhow!("bad base date"))?;
    let created = DateTime::from_millis(Utc::now().timestamp_millis());
    let (mut programs, mut people, mut enrolments, mut sessions, mut bookings) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seats: Vec<Document> = Vec::new();
    let mut slots: Vec<Document> = Vec::new();
    let lists = Lists {
        given_names: &clinic.given_names,
        family_names: &clinic.family_names,
        disability_types: &clinic.disability_types,
        relations: &clinic.relations,
    };

    for round in 0..scale {
        // Programmes.
        let first_program = programs.len();
        for (i, p) in clinic.programs.iter().enumerate() {
            let index = round * clinic.programs.len() + i;
            programs.push(program_seed::program(
                p,
                index,
                round,
                managers[i % managers.len()],
                vec![therapists[i % 4], therapists[(i + 1) % 4]],
                created,
            )?);
        }
        let round_programs: Vec<DisabilityProgramRecord> = programs[first_program..].to_vec();
        let mut open_seats: HashMap<ObjectId, usize> = HashMap::new();

        let subjects: Vec<ObjectId> = (0..BENEFICIARIES)
            .map(|k| beneficiary_seed::person_id(round * BENEFICIARIES + k))
            .collect();
        let keys = vault.create_keys(&subjects).await?;
        for k in 0..BENEFICIARIES {
            let g = round * BENEFICIARIES + k;
            let key = keys
                .get(&beneficiary_seed::person_id(g))
                .ok_or_else(|| anyhow::anyhow!("a seeded person has no data key"))?;
            let person = beneficiary_seed::person(g, &lists, base, created, key, &index)?;
            let id = person.id;
            people.push(person);

            // One enrolment each, a second for every third beneficiary.
            let mut placements = vec![(
                k % round_programs.len(),
                *pick(
                    &[
                        EnrollmentStatus::Active,
                        EnrollmentStatus::Active,
                        EnrollmentStatus::Active,
                        EnrollmentStatus::Pending,
                        EnrollmentStatus::Completed,
                    ],
                    k,
                )?,
            )];
            if k.is_multiple_of(3) {
                let status = if k.is_multiple_of(2) {
                    EnrollmentStatus::Withdrawn
                } else {
                    EnrollmentStatus::Active
                };
                placements.push(((k + 3) % round_programs.len(), status));
            }
            for (slot, (program_index, status)) in placements.into_iter().enumerate() {
                let program = &round_programs[program_index];
                let therapist =
                    program.therapist_ids[(k / round_programs.len()) % program.therapist_ids.len()];
                let enrolment_id = seed_id("enrollment", g * 2 + slot);
                let start = base + Duration::weeks((k % 4) as i64);
                let goal = pick(&clinic.goals, g + slot)?;
                let (enrolment, seat) = enrollment_seed::enrolment(
                    enrolment_id,
                    Placement {
                        beneficiary_id: id,
                        program,
                        therapist,
                        status,
                        start,
                    },
                    goal.clone(),
                    &mut open_seats,
                    created,
                )?;
                seats.extend(seat);
                if matches!(
                    status,
                    EnrollmentStatus::Active | EnrollmentStatus::Completed
                ) {
                    sessions.extend(session_seed::weekly(
                        &enrolment,
                        start,
                        g * 2 + slot,
                        k,
                        goal,
                        created,
                        key,
                    )?);
                }
                enrolments.push(enrolment);
            }
        }

        // Room bookings: one room, one hour, never two at once.
        let day = base + Duration::weeks(6 + round as i64);
        for i in 0..ROOM_BOOKINGS {
            let room = pick(&clinic.rooms, i)?.clone();
            let start = at(
                day + Duration::days((i / (clinic.rooms.len() * 8)) as i64),
                8 + ((i / clinic.rooms.len()) % 8) as u32,
                0,
            )?;
            bookings.push(Booking {
                kind: ScheduleResourceType::Room,
                resource: room,
                booked: None,
                start,
                position: i,
            });
        }
        for (t, therapist) in therapists.iter().enumerate() {
            let start = at(day + Duration::days(2), 10 + t as u32, 30)?;
            let global = GlobalId::new(NodeKind::User, *therapist).encode();
            bookings.push(Booking {
                kind: ScheduleResourceType::Therapist,
                resource: global,
                booked: Some(*therapist),
                start,
                position: ROOM_BOOKINGS + t,
            });
        }
        let _ = round_programs;
    }

    let mut schedule_rows = Vec::new();
    for (n, booking) in bookings.into_iter().enumerate() {
        let (record, claims) = schedule_seed::booking(n, booking, &programs, &bookers, created)?;
        slots.extend(claims);
        schedule_rows.push(record);
    }

    note(
        DisabilityProgramRecord::COLLECTION,
        insert_all(db, DisabilityProgramRecord::COLLECTION, docs(&programs)?).await?,
    );
    note(
        BeneficiaryRecord::COLLECTION,
        insert_all(db, BeneficiaryRecord::COLLECTION, docs(&people)?).await?,
    );
    // Seats before enrolments, slots before bookings: the same order as the API.
    note(
        enrollments::SEATS,
        insert_all(db, enrollments::SEATS, seats).await?,
    );
    note(
        EnrollmentRecord::COLLECTION,
        insert_all(db, EnrollmentRecord::COLLECTION, docs(&enrolments)?).await?,
    );
    note(
        TherapySessionRecord::COLLECTION,
        insert_all(db, TherapySessionRecord::COLLECTION, docs(&sessions)?).await?,
    );
    note(
        schedules::SLOTS,
        insert_all(db, schedules::SLOTS, slots).await?,
    );
    note(
        ScheduleRecord::COLLECTION,
        insert_all(db, ScheduleRecord::COLLECTION, docs(&schedule_rows)?).await?,
    );
    Ok(report)
}
