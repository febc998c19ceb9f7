//! The five computations, from the data in the database. Counts and sums
//! are `$group` stages (`$sum`, one per stage: see `grouped`); the rows a report
//! lists, and one beneficiary's few sessions, come from projected finds read
//! in bounded batches. Every result is a JSON object whose lists hold rows
//! (no client value becomes a key); ids are global ids and instants RFC 3339
//! in UTC.

use std::collections::{BTreeMap, HashMap};

use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::TryStreamExt;
use serde_json::{Value, json};

use super::params::{self, Parameters, Window};
use crate::db::{Db, DbError, DbResult};
use crate::domain::{GlobalId, NodeKind, Role};
use crate::models::asset::rules::AssetCategory;
use crate::models::audit_log_entry::record as audit;
use crate::models::beneficiary::record as beneficiaries;
use crate::models::disability_program::record as programs;
use crate::models::enrollment::record as enrollments;
use crate::models::enrollment::rules::EnrollmentStatus;
use crate::models::report::rules::ReportType;
use crate::models::therapy_session::record as sessions;
use crate::models::therapy_session::rules::Attendance;

/// Rows per batch of a find or an aggregation's cursor.
const BATCH: u32 = 1000;
/// Scored sessions BENEFICIARY_PROGRESS lists, newest first.
const LATEST_SCORES: usize = 5;

/// Why a computation did not produce a result.
#[derive(Debug)]
pub enum Failure {
    /// The parameters do not fit: the report fails with this reason.
    Invalid(String),
    /// The database failed.
    Db(DbError),
}

impl From<DbError> for Failure {
    fn from(error: DbError) -> Self {
        Self::Db(error)
    }
}

impl From<mongodb::error::Error> for Failure {
    fn from(error: mongodb::error::Error) -> Self {
        Self::Db(error.into())
    }
}

impl From<bson::ser::Error> for Failure {
    fn from(error: bson::ser::Error) -> Self {
        Self::Db(error.into())
    }
}

type Computed = Result<Value, Failure>;

/// Computes a `kind` report from its stored parameter text.
pub async fn compute(db: &Db, kind: ReportType, parameters: &str) -> Computed {
    match params::parse(kind, parameters).map_err(Failure::Invalid)? {
        Parameters::AssetInventory { category } => asset_inventory(db, category).await,
        Parameters::ProgramOccupancy { program } => program_occupancy(db, program).await,
        Parameters::BeneficiaryProgress {
            beneficiary,
            window,
        } => beneficiary_progress(db, beneficiary, window).await,
        Parameters::TherapistWorkload { window } => therapist_workload(db, window).await,
        Parameters::AuditSummary { window } => audit_summary(db, window).await,
    }
}

async fn aggregate(db: &Db, collection: &str, pipeline: Vec<Document>) -> DbResult<Vec<Document>> {
    Ok(db
        .collection(collection)
        .aggregate(pipeline)
        .max_time(db.max_time())
        .batch_size(BATCH)
        .await?
        .try_collect()
        .await?)
}

/// Groups the rows matching `matched` by `id`, summing each `(name, value)`
/// (`1` counts). FerretDB 1.24 computes only the first accumulator of a
/// `$group` (the others read 0), so each sum is its own aggregation and the
/// groups are joined on `_id`.
async fn grouped(
    db: &Db,
    collection: &str,
    matched: &Document,
    id: Bson,
    sums: &[(&str, Bson)],
) -> DbResult<Vec<Document>> {
    let mut joined: Vec<Document> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for (name, value) in sums {
        let groups = aggregate(
            db,
            collection,
            vec![
                doc! { "$match": matched.clone() },
                doc! { "$group": { "_id": id.clone(), *name: { "$sum": value.clone() } } },
            ],
        )
        .await?;
        for group in groups {
            let key = group.get("_id").cloned().unwrap_or(Bson::Null);
            let at = *position.entry(key.to_string()).or_insert_with(|| {
                joined.push(doc! { "_id": key });
                joined.len() - 1
            });
            let sum = group.get(*name).cloned().unwrap_or(Bson::Int32(0));
            joined[at].insert(*name, sum);
        }
    }
    Ok(joined)
}

async fn find(
    db: &Db,
    collection: &str,
    filter: Document,
    projection: Document,
    sort: Document,
    limit: Option<i64>,
) -> DbResult<Vec<Document>> {
    let collection = db.collection(collection);
    let mut find = collection
        .find(filter)
        .projection(projection)
        .sort(sort)
        .batch_size(BATCH)
        .max_time(db.max_time());
    if let Some(limit) = limit {
        find = find.limit(limit);
    }
    Ok(find.await?.try_collect().await?)
}

/// A whole number a `$sum` produced (its type depends on the server and the size).
fn number(document: &Document, key: &str) -> i64 {
    match document.get(key) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}

/// A field of a group's compound `_id`.
fn key<'a>(document: &'a Document, field: &str) -> Option<&'a Bson> {
    document.get_document("_id").ok()?.get(field)
}

fn text(value: Option<&Bson>) -> String {
    match value {
        Some(Bson::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn wire<T: serde::Serialize>(value: &T) -> DbResult<String> {
    Ok(match bson::to_bson(value)? {
        Bson::String(s) => s,
        other => other.to_string(),
    })
}

fn global(kind: NodeKind, id: ObjectId) -> String {
    GlobalId::new(kind, id).encode()
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn stored_instant(at: &Bson) -> Value {
    match at {
        Bson::DateTime(at) => Value::String(instant(at.to_chrono())),
        _ => Value::Null,
    }
}

/// `part / whole` to four decimal places (0 when `whole` is 0).
fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// `from <= field < to` for a window's ends that are set.
fn window_filter(filter: &mut Document, field: &str, window: Window) {
    crate::db::filters::range(
        filter,
        field,
        window.from.map(bson::DateTime::from_chrono),
        window.to.map(bson::DateTime::from_chrono),
    );
}

fn window_json(window: Window) -> (Value, Value) {
    (
        window.from.map(instant).map_or(Value::Null, Value::String),
        window.to.map(instant).map_or(Value::Null, Value::String),
    )
}

/// Money per currency, as rows.
fn money(amounts: &BTreeMap<String, i64>) -> Value {
    Value::Array(
        amounts
            .iter()
            .map(|(currency, minor)| json!({ "currency": currency, "amountMinor": minor }))
            .collect(),
    )
}

/// ASSET_INVENTORY: assets and their value per category and status.
async fn asset_inventory(db: &Db, category: Option<AssetCategory>) -> Computed {
    let mut matched = doc! {};
    if let Some(category) = category {
        matched.insert("category", bson::to_bson(&category)?);
    }
    let groups = grouped(
        db,
        crate::models::asset::record::COLLECTION,
        &matched,
        Bson::Document(
            doc! { "category": "$category", "status": "$status", "currency": "$value.currency" },
        ),
        &[
            ("count", Bson::Int32(1)),
            ("amountMinor", "$value.amountMinor".into()),
        ],
    )
    .await?;
    type Group = (i64, BTreeMap<String, i64>);
    let mut by_group: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut total: Group = (0, BTreeMap::new());
    for group in &groups {
        let name = (text(key(group, "category")), text(key(group, "status")));
        let currency = text(key(group, "currency"));
        let (count, amount) = (number(group, "count"), number(group, "amountMinor"));
        let entry = by_group.entry(name).or_default();
        entry.0 += count;
        *entry.1.entry(currency.clone()).or_default() += amount;
        total.0 += count;
        *total.1.entry(currency).or_default() += amount;
    }
    let rows: Vec<Value> = by_group
        .iter()
        .map(|((category, status), (count, value))| {
            json!({ "category": category, "status": status, "count": count, "value": money(value) })
        })
        .collect();
    Ok(json!({
        "category": category.map(|c| wire(&c)).transpose()?,
        "count": total.0,
        "value": money(&total.1),
        "groups": rows,
    }))
}

/// PROGRAM_OCCUPANCY: per programme, its places and the enrolments holding them.
async fn program_occupancy(db: &Db, program: Option<ObjectId>) -> Computed {
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

/// BENEFICIARY_PROGRESS: one beneficiary's sessions in a window, their
/// progress scores, and their enrolments with goals. Session notes are left
/// out (a report outlives the erasure of the person's notes).
async fn beneficiary_progress(db: &Db, beneficiary: ObjectId, window: Window) -> Computed {
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

/// `name` of the rows with these ids.
async fn names_of(
    db: &Db,
    collection: &str,
    ids: &[ObjectId],
) -> DbResult<HashMap<ObjectId, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = find(
        db,
        collection,
        doc! { "_id": { "$in": ids } },
        doc! { "name": 1 },
        doc! { "_id": 1 },
        None,
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get_object_id("_id").ok()?, text(r.get("name")))))
        .collect())
}

/// THERAPIST_WORKLOAD: per therapist, the sessions in the window and the
/// enrolments they run that are ACTIVE now.
async fn therapist_workload(db: &Db, window: Window) -> Computed {
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

/// Groups `audit_logs` in the window by `field`; rows by count, most first.
async fn audit_counts(
    db: &Db,
    matched: &Document,
    field: &str,
    name: &str,
) -> DbResult<Vec<Value>> {
    let groups = grouped(
        db,
        audit::COLLECTION,
        matched,
        format!("${field}").into(),
        &[("count", Bson::Int32(1))],
    )
    .await?;
    let mut counted: Vec<(String, i64)> = groups
        .iter()
        .map(|g| (text(g.get("_id")), number(g, "count")))
        .collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(counted
        .into_iter()
        .map(|(value, count)| json!({ name: value, "count": count }))
        .collect())
}

/// AUDIT_SUMMARY: audit entries in the window per action and per entity type.
async fn audit_summary(db: &Db, window: Window) -> Computed {
    let mut matched = doc! {};
    window_filter(&mut matched, "at", window);
    let by_action = audit_counts(db, &matched, "action", "action").await?;
    let by_entity = audit_counts(db, &matched, "entityType", "entityType").await?;
    let entries: i64 = by_action.iter().filter_map(|r| r["count"].as_i64()).sum();
    let (from, to) = window_json(window);
    Ok(json!({
        "from": from,
        "to": to,
        "entries": entries,
        "byAction": by_action,
        "byEntityType": by_entity,
    }))
}
