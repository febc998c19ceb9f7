//! The clinic in `seeds/clinic.json`, generated into a coherent data set:
//! programmes with managers and therapists, beneficiaries with Arabic and
//! English names, enrolments (with the programme seats they hold),
//! sessions, and room and therapist bookings that never overlap (with their
//! slot claims). `therapist@alawael.local` runs some enrolments, not all.
//!
//! `--scale N` repeats the set N times. Every row's id is derived from its
//! kind and position, so loading again inserts nothing twice (bulk inserts,
//! duplicates skipped). Values go through the same domain rules as the API.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::auth::password;
use crate::config::SeedSettings;
use crate::db::money::StoredMoney;
use crate::db::store::Record;
use crate::db::{Db, duplicate_key};
use crate::domain::{Email, GlobalId, Money, NodeKind, Role};
use crate::models::beneficiary::record::{BeneficiaryRecord, Consent, Guardian};
use crate::models::beneficiary::rules::{BeneficiaryStatus, Gender, Severity};
use crate::models::disability_program::record::DisabilityProgramRecord;
use crate::models::disability_program::rules::{ProgramCategory, ProgramStatus};
use crate::models::enrollment::record::{
    self as enrollments, EnrollmentRecord, Goal, closed_key, open_key,
};
use crate::models::enrollment::rules::EnrollmentStatus;
use crate::models::schedule::record::{self as schedules, ScheduleRecord};
use crate::models::schedule::rules::{BookingSpan, ScheduleResourceType, ScheduleStatus};
use crate::models::therapy_session::record::TherapySessionRecord;
use crate::models::therapy_session::rules::Attendance;
use crate::models::user::record::UserForCreate;
use secrecy::ExposeSecret;

const CLINIC: &str = include_str!("../../seeds/clinic.json");
/// Beneficiaries per repetition of the set.
const BENEFICIARIES: usize = 64;
/// Bookings of rooms per repetition.
const ROOM_BOOKINGS: usize = 48;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Staff {
    email: String,
    name: String,
    role: Role,
    department: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Program {
    name: String,
    category: ProgramCategory,
    capacity: i32,
    duration_weeks: i32,
    fee_minor: i64,
    description: String,
}

#[derive(Deserialize)]
struct Names {
    female: Vec<String>,
    male: Vec<String>,
}

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

/// A stable id for the `index`-th row of `kind`.
fn seed_id(kind: &str, index: usize) -> ObjectId {
    let digest = Sha256::digest(format!("alawael-seed:{kind}:{index}").as_bytes());
    let mut bytes = [0u8; 12];
    bytes.copy_from_slice(&digest[..12]);
    ObjectId::from_bytes(bytes)
}

fn pick<T>(items: &[T], index: usize) -> anyhow::Result<&T> {
    anyhow::ensure!(!items.is_empty(), "a seed list is empty");
    Ok(&items[index % items.len()])
}

fn at(day: NaiveDate, hour: u32, minute: u32) -> anyhow::Result<chrono::DateTime<Utc>> {
    let naive = day
        .and_hms_opt(hour, minute, 0)
        .ok_or_else(|| anyhow::anyhow!("bad seed time"))?;
    Ok(Utc.from_utc_datetime(&naive))
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
    settings: &SeedSettings,
    scale: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<ClinicReport> {
    let clinic: Clinic = serde_json::from_str(CLINIC)?;
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
            .create(UserForCreate {
                email,
                name: person.name.clone(),
                role: person.role,
                department: Some(person.department.clone()),
                phone: None,
                password_hash: hash.clone(),
            })
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

    for round in 0..scale {
        // Programmes.
        let first_program = programs.len();
        for (i, p) in clinic.programs.iter().enumerate() {
            let index = round * clinic.programs.len() + i;
            let fee = Money::parse(p.fee_minor, "SAR").map_err(anyhow::Error::msg)?;
            programs.push(DisabilityProgramRecord {
                id: seed_id("program", index),
                name: if round == 0 {
                    p.name.clone()
                } else {
                    format!("{} ({})", p.name, round + 1)
                },
                category: p.category,
                description: Some(p.description.clone()),
                capacity: crate::models::disability_program::rules::capacity(p.capacity)
                    .map_err(anyhow::Error::msg)?,
                duration_weeks: crate::models::disability_program::rules::duration_weeks(
                    p.duration_weeks,
                )
                .map_err(anyhow::Error::msg)?,
                fee: StoredMoney::from(&fee),
                status: ProgramStatus::Active,
                manager_id: Some(managers[i % managers.len()]),
                therapist_ids: vec![therapists[i % 4], therapists[(i + 1) % 4]],
                created_at: created,
                updated_at: created,
            });
        }
        let round_programs: Vec<DisabilityProgramRecord> = programs[first_program..].to_vec();
        let mut open_seats: HashMap<ObjectId, usize> = HashMap::new();

        for k in 0..BENEFICIARIES {
            let g = round * BENEFICIARIES + k;
            let female = g.is_multiple_of(2);
            let given = pick(
                if female {
                    &clinic.given_names.female
                } else {
                    &clinic.given_names.male
                },
                g / 2,
            )?;
            let family = pick(&clinic.family_names, g * 7 + g / 16)?;
            let id = seed_id("beneficiary", g);
            let national = crate::models::beneficiary::rules::national_id(&format!(
                "{}{:09}",
                if female { 2 } else { 1 },
                100_000_000 + g
            ))
            .map_err(anyhow::Error::msg)?;
            let born = crate::models::beneficiary::rules::date_of_birth(
                base - Duration::days(900 + ((g * 97) % 6000) as i64),
                Utc::now().date_naive(),
            )
            .map_err(anyhow::Error::msg)?;
            let guardian_given = pick(
                if female {
                    &clinic.given_names.male
                } else {
                    &clinic.given_names.female
                },
                g + 3,
            )?;
            people.push(BeneficiaryRecord {
                id,
                full_name: format!("{given} {family}"),
                national_id: Some(national.clone()),
                national_id_key: national,
                date_of_birth: Some(born.format("%Y-%m-%d").to_string()),
                gender: if female { Gender::Female } else { Gender::Male },
                disability_type: pick(&clinic.disability_types, g)?.clone(),
                severity: *pick(Severity::ALL, g / 3)?,
                guardian: Some(Guardian {
                    name: format!("{guardian_given} {family}"),
                    phone: Some(
                        crate::models::beneficiary::rules::phone(&format!(
                            "+966 5{} {:03} {:04}",
                            g % 10,
                            g % 1000,
                            (g * 37) % 10_000
                        ))
                        .map_err(anyhow::Error::msg)?,
                    ),
                    relation: Some(pick(&clinic.relations, g)?.clone()),
                }),
                medical_notes: Some(format!(
                    "Assessed {}; follow the {} plan.",
                    base.format("%Y-%m-%d"),
                    pick(&clinic.disability_types, g)?
                )),
                consent: Some(Consent {
                    data_processing: true,
                    recorded_at: created,
                }),
                status: BeneficiaryStatus::Active,
                erased_at: None,
                created_at: created,
                updated_at: created,
            });

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
                let ended = !status.holds_place();
                enrolments.push(EnrollmentRecord {
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
                        description: pick(&clinic.goals, g + slot)?.clone(),
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
                });
                if !ended {
                    let taken = open_seats.entry(program.id).or_default();
                    anyhow::ensure!(
                        (*taken as i32) < program.capacity,
                        "the seed overfills {}",
                        program.name
                    );
                    seats.push(doc! {
                        "_id": format!("{}:{}", program.id.to_hex(), taken),
                        "programId": program.id, "enrollmentId": enrolment_id, "at": created,
                    });
                    *taken += 1;
                }
                if matches!(
                    status,
                    EnrollmentStatus::Active | EnrollmentStatus::Completed
                ) {
                    for week in 0..5usize {
                        let started =
                            at(start + Duration::weeks(week as i64), 9 + (k % 6) as u32, 0)?;
                        sessions.push(TherapySessionRecord {
                            id: seed_id("session", (g * 2 + slot) * 5 + week),
                            enrollment_id: enrolment_id,
                            beneficiary_id: id,
                            therapist_id: therapist,
                            program_id: program.id,
                            schedule_id: None,
                            started_at: DateTime::from_millis(started.timestamp_millis()),
                            duration_minutes:
                                crate::models::therapy_session::rules::session_minutes(45)
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
                            notes: Some(format!(
                                "Week {}: worked on \"{}\".",
                                week + 1,
                                pick(&clinic.goals, g + slot)?
                            )),
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
                }
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
            bookings.push((ScheduleResourceType::Room, room, None, start, i));
        }
        for (t, therapist) in therapists.iter().enumerate() {
            let start = at(day + Duration::days(2), 10 + t as u32, 30)?;
            let global = GlobalId::new(NodeKind::User, *therapist).encode();
            bookings.push((
                ScheduleResourceType::Therapist,
                global,
                Some(*therapist),
                start,
                ROOM_BOOKINGS + t,
            ));
        }
        let _ = round_programs;
    }

    let mut schedule_rows = Vec::new();
    for (n, (kind, resource, booked, start, i)) in bookings.into_iter().enumerate() {
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
        for slot in schedules::slot_ids(&record, &span) {
            slots.push(doc! { "_id": slot, "scheduleId": record.id, "at": created });
        }
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
