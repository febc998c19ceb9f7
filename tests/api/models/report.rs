//! Reports computed in the background: each type reaches READY with the
//! figures the test works out itself from the stored rows, bad parameters
//! make a report FAILED with a reason, roles and row scope hold,
//! `reportUpdated` streams the status over a websocket, and a report whose
//! worker died (or whose workers raced) is computed exactly once more.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use alawael::domain::{GlobalId, NodeKind};
use alawael::models::report::record::{Lease, ReportRecord};
use alawael::models::report::rules::{ReportStatus, ReportType};
use bson::oid::ObjectId;
use bson::{Document, doc};
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::support::helpers::{TestApp, error_code, spawn_app_with, spawn_with_settings};
use crate::websockets::{init, next, send};

const REQUEST: &str = "mutation($t: ReportType!, $p: JSON) { requestReport(type: $t, parameters: $p) { id type status parameters requestedBy { email } } }";
const READ: &str = "query($id: ID!) { report(id: $id) { id type status result error attempts startedAt generatedAt } }";

/// The app with its report worker on (the test configuration turns it off).
async fn spawn_with_worker() -> TestApp {
    spawn_app_with(|s| s.reports.worker = true).await
}

async fn seed_all(app: &TestApp) {
    let (db, seed) = (&app.state.db, &app.state.settings.seed);
    alawael::seed::load(db, seed).await.expect("assets seed");
    alawael::seed::clinic::load(db, &app.state.vault, seed, 1, |_| {})
        .await
        .expect("clinic seed");
}

async fn rows(app: &TestApp, collection: &str, filter: Document) -> Vec<Document> {
    app.state
        .db
        .collection(collection)
        .find(filter)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("rows")
}

/// Requests a report; returns its id.
pub async fn request(app: &TestApp, token: &str, kind: &str, parameters: Value) -> String {
    let body = app
        .gql(Some(token), REQUEST, json!({ "t": kind, "p": parameters }))
        .await;
    assert!(body["errors"].is_null(), "requestReport failed: {body}");
    let report = &body["data"]["requestReport"];
    assert_eq!(report["status"], "QUEUED");
    report["id"].as_str().expect("id").to_string()
}

/// Reads the report until it is READY or FAILED.
pub async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = app.gql(Some(token), READ, json!({ "id": id })).await;
        assert!(body["errors"].is_null(), "report failed: {body}");
        let report = body["data"]["report"].clone();
        if matches!(report["status"].as_str(), Some("READY" | "FAILED")) {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the report finishes: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests a report and returns its result once READY.
async fn ready(app: &TestApp, token: &str, kind: &str, parameters: Value) -> Value {
    let id = request(app, token, kind, parameters).await;
    let report = finished(app, token, &id).await;
    assert_eq!(report["status"], "READY", "{report}");
    assert_eq!(report["attempts"], 1);
    assert!(report["generatedAt"].is_string() && report["startedAt"].is_string());
    report["result"].clone()
}

fn int(document: &Document, key: &str) -> i64 {
    match document.get(key) {
        Some(bson::Bson::Int32(n)) => i64::from(*n),
        Some(bson::Bson::Int64(n)) => *n,
        other => panic!("{key} is not a whole number: {other:?}"),
    }
}

fn global(kind: NodeKind, id: ObjectId) -> String {
    GlobalId::new(kind, id).encode()
}

#[tokio::test]
async fn asset_inventory_counts_and_values_assets_per_category_and_status() {
    let app = spawn_with_worker().await;
    seed_all(&app).await;
    let token = app.login("manager").await;

    let assets = rows(&app, "assets", doc! {}).await;
    let mut expected: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for asset in &assets {
        let value = asset.get_document("value").unwrap();
        assert_eq!(value.get_str("currency").unwrap(), "SAR");
        let group = expected
            .entry((
                asset.get_str("category").unwrap().to_string(),
                asset.get_str("status").unwrap().to_string(),
            ))
            .or_default();
        group.0 += 1;
        group.1 += int(value, "amountMinor");
    }
    let result = ready(&app, &token, "ASSET_INVENTORY", json!({})).await;
    assert_eq!(result["count"], assets.len() as i64);
    let total: i64 = expected.values().map(|g| g.1).sum();
    assert_eq!(
        result["value"],
        json!([{ "currency": "SAR", "amountMinor": total }])
    );
    let got: BTreeMap<(String, String), (i64, i64)> = result["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert_eq!(g["value"].as_array().unwrap().len(), 1, "{g}");
            (
                (
                    g["category"].as_str().unwrap().to_string(),
                    g["status"].as_str().unwrap().to_string(),
                ),
                (
                    g["count"].as_i64().unwrap(),
                    g["value"][0]["amountMinor"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(got, expected);

    let medical = ready(
        &app,
        &token,
        "ASSET_INVENTORY",
        json!({ "category": "MEDICAL" }),
    )
    .await;
    let medical_count: i64 = expected
        .iter()
        .filter(|((category, _), _)| category == "MEDICAL")
        .map(|(_, g)| g.0)
        .sum();
    assert!(medical_count > 0);
    assert_eq!(medical["category"], "MEDICAL");
    assert_eq!(medical["count"], medical_count);
    assert!(
        medical["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["category"] == "MEDICAL")
    );
}

#[tokio::test]
async fn program_occupancy_counts_the_enrolments_holding_places() {
    let app = spawn_with_worker().await;
    seed_all(&app).await;
    let token = app.login("admin").await;

    let programs = rows(&app, "disability_programs", doc! {}).await;
    let enrolments = rows(&app, "enrollments", doc! {}).await;
    let held = |program: ObjectId, status: &str| {
        enrolments
            .iter()
            .filter(|e| {
                e.get_object_id("programId").unwrap() == program
                    && e.get_str("status").unwrap() == status
            })
            .count() as i64
    };
    let result = ready(&app, &token, "PROGRAM_OCCUPANCY", json!({})).await;
    let listed = result["programs"].as_array().unwrap();
    assert_eq!(listed.len(), programs.len());
    let (mut capacity, mut occupied) = (0, 0);
    for program in &programs {
        let id = program.get_object_id("_id").unwrap();
        let row = listed
            .iter()
            .find(|r| r["programId"] == global(NodeKind::DisabilityProgram, id))
            .expect("every programme is listed");
        let (pending, active) = (held(id, "PENDING"), held(id, "ACTIVE"));
        let places = int(program, "capacity");
        assert_eq!(row["name"], program.get_str("name").unwrap());
        assert_eq!(row["capacity"], places);
        assert_eq!(row["pending"], pending, "{row}");
        assert_eq!(row["active"], active, "{row}");
        assert_eq!(row["occupied"], pending + active);
        let ratio = row["occupancy"].as_f64().unwrap();
        assert!((ratio - (pending + active) as f64 / places as f64).abs() < 0.0001);
        capacity += places;
        occupied += pending + active;
    }
    assert!(occupied > 0, "the seed enrols beneficiaries");
    assert_eq!(result["totals"]["capacity"], capacity);
    assert_eq!(result["totals"]["occupied"], occupied);

    let one = programs[0].get_object_id("_id").unwrap();
    let single = ready(
        &app,
        &token,
        "PROGRAM_OCCUPANCY",
        json!({ "programId": global(NodeKind::DisabilityProgram, one) }),
    )
    .await;
    assert_eq!(single["programs"].as_array().unwrap().len(), 1);
    assert_eq!(
        single["programs"][0]["occupied"],
        held(one, "PENDING") + held(one, "ACTIVE")
    );
}

#[tokio::test]
async fn beneficiary_progress_reports_sessions_scores_and_goals_in_the_window() {
    let app = spawn_with_worker().await;
    seed_all(&app).await;
    let token = app.login("manager").await;

    // The beneficiary with the most sessions, and a window over the middle of them.
    let sessions = rows(&app, "therapy_sessions", doc! {}).await;
    let mut per: HashMap<ObjectId, Vec<&Document>> = HashMap::new();
    for s in &sessions {
        per.entry(s.get_object_id("beneficiaryId").unwrap())
            .or_default()
            .push(s);
    }
    let (&beneficiary, theirs) = per.iter().max_by_key(|(_, s)| s.len()).unwrap();
    let mut times: Vec<bson::DateTime> = theirs
        .iter()
        .map(|s| *s.get_datetime("startedAt").unwrap())
        .collect();
    times.sort();
    assert!(times.len() >= 3, "the seed gives someone several sessions");
    let (from, to) = (times[1], times[times.len() - 1]);
    let inside: Vec<&&Document> = theirs
        .iter()
        .filter(|s| {
            let at = *s.get_datetime("startedAt").unwrap();
            from <= at && at < to
        })
        .collect();

    let result = ready(
        &app,
        &token,
        "BENEFICIARY_PROGRESS",
        json!({ "beneficiaryId": global(NodeKind::Beneficiary, beneficiary),
                "from": from.try_to_rfc3339_string().unwrap(), "to": to.try_to_rfc3339_string().unwrap() }),
    )
    .await;
    assert_eq!(result["sessions"]["count"], inside.len() as i64);
    let minutes: i64 = inside.iter().map(|s| int(s, "durationMinutes")).sum();
    assert_eq!(result["sessions"]["minutes"], minutes);
    for row in result["sessions"]["byAttendance"].as_array().unwrap() {
        let of: Vec<&&&Document> = inside
            .iter()
            .filter(|s| s.get_str("attendance").unwrap() == row["attendance"])
            .collect();
        assert_eq!(row["count"], of.len() as i64, "{row}");
        assert_eq!(
            row["minutes"],
            of.iter().map(|s| int(s, "durationMinutes")).sum::<i64>()
        );
    }
    let mut scored: Vec<(bson::DateTime, i64)> = inside
        .iter()
        .filter_map(|s| {
            s.get_i32("progressScore")
                .ok()
                .map(|p| (*s.get_datetime("startedAt").unwrap(), i64::from(p)))
        })
        .collect();
    scored.sort();
    let progress = &result["progress"];
    assert_eq!(progress["scoredSessions"], scored.len() as i64);
    if let Some((at, score)) = scored.first() {
        let average = scored.iter().map(|s| s.1).sum::<i64>() as f64 / scored.len() as f64;
        assert!((progress["averageScore"].as_f64().unwrap() - average).abs() < 0.01);
        assert_eq!(progress["first"]["score"], *score);
        let first_at = progress["first"]["startedAt"].as_str().unwrap();
        let first_at = chrono::DateTime::parse_from_rfc3339(first_at).unwrap();
        assert_eq!(first_at.timestamp_millis(), at.timestamp_millis());
        let newest = scored.last().unwrap();
        assert_eq!(progress["latest"][0]["score"], newest.1);
        assert_eq!(
            progress["latest"].as_array().unwrap().len(),
            scored.len().min(5)
        );
    } else {
        assert!(progress["averageScore"].is_null());
    }

    let enrolments = rows(&app, "enrollments", doc! { "beneficiaryId": beneficiary }).await;
    let listed = result["enrollments"].as_array().unwrap();
    assert_eq!(listed.len(), enrolments.len());
    for e in &enrolments {
        let row = listed
            .iter()
            .find(|r| {
                r["enrollmentId"] == global(NodeKind::Enrollment, e.get_object_id("_id").unwrap())
            })
            .expect("every enrolment is listed");
        let goals = e.get_array("goals").unwrap();
        assert_eq!(row["goalsTotal"], goals.len() as i64);
        assert_eq!(row["status"], e.get_str("status").unwrap());
        assert_eq!(row["goals"].as_array().unwrap().len(), goals.len());
        assert!(row["programName"].as_str().is_some_and(|n| !n.is_empty()));
    }
    assert!(
        !result.to_string().contains("\"notes\""),
        "session notes stay out of reports"
    );
}

#[tokio::test]
async fn therapist_workload_counts_sessions_minutes_and_active_enrolments() {
    let app = spawn_with_worker().await;
    seed_all(&app).await;
    let token = app.login("manager").await;

    let sessions = rows(&app, "therapy_sessions", doc! {}).await;
    let mut times: Vec<bson::DateTime> = sessions
        .iter()
        .map(|s| *s.get_datetime("startedAt").unwrap())
        .collect();
    times.sort();
    let (from, to) = (times[times.len() / 4], times[times.len() * 3 / 4]);
    let enrolments = rows(&app, "enrollments", doc! { "status": "ACTIVE" }).await;
    let therapists = rows(&app, "users", doc! { "role": "THERAPIST" }).await;
    assert!(therapists.len() >= 4);

    let result = ready(
        &app,
        &token,
        "THERAPIST_WORKLOAD",
        json!({ "from": from.try_to_rfc3339_string().unwrap(), "to": to.try_to_rfc3339_string().unwrap() }),
    )
    .await;
    let listed = result["therapists"].as_array().unwrap();
    assert_eq!(listed.len(), therapists.len());
    let mut all_sessions = 0;
    for therapist in &therapists {
        let id = therapist.get_object_id("_id").unwrap();
        let row = listed
            .iter()
            .find(|r| r["therapistId"] == global(NodeKind::User, id))
            .expect("every therapist is listed");
        let theirs: Vec<&Document> = sessions
            .iter()
            .filter(|s| {
                let at = *s.get_datetime("startedAt").unwrap();
                s.get_object_id("therapistId").unwrap() == id && from <= at && at < to
            })
            .collect();
        let attended: Vec<&&Document> = theirs
            .iter()
            .filter(|s| s.get_str("attendance").unwrap() == "ATTENDED")
            .collect();
        assert_eq!(row["name"], therapist.get_str("name").unwrap());
        assert_eq!(row["sessions"], theirs.len() as i64, "{row}");
        assert_eq!(row["attendedSessions"], attended.len() as i64);
        assert_eq!(
            row["minutes"],
            theirs
                .iter()
                .map(|s| int(s, "durationMinutes"))
                .sum::<i64>()
        );
        assert_eq!(
            row["attendedMinutes"],
            attended
                .iter()
                .map(|s| int(s, "durationMinutes"))
                .sum::<i64>()
        );
        let active = enrolments
            .iter()
            .filter(|e| e.get_object_id("therapistId").unwrap() == id)
            .count() as i64;
        assert_eq!(row["activeEnrollments"], active);
        all_sessions += theirs.len() as i64;
    }
    assert!(all_sessions > 0, "the window holds sessions");
    assert_eq!(result["totals"]["sessions"], all_sessions);
}

#[tokio::test]
async fn audit_summary_counts_entries_per_action_and_entity_type() {
    let app = spawn_with_worker().await;
    let admin = app.login("admin").await;
    let from = chrono::Utc::now() - chrono::Duration::seconds(1);
    let asset = app.create_asset(&admin, "Standing frame", None).await;
    app.create_asset(&admin, "Walker", None).await;
    let renamed = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateAsset(id: $id, input: { name: \"Standing frame XL\" }) { id } }",
            json!({ "id": asset }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    let to = chrono::Utc::now() + chrono::Duration::hours(1);

    let result = ready(
        &app,
        &admin,
        "AUDIT_SUMMARY",
        json!({ "from": from.to_rfc3339(), "to": to.to_rfc3339() }),
    )
    .await;
    let entries = rows(
        &app,
        "audit_logs",
        doc! { "at": { "$gte": bson::DateTime::from_chrono(from), "$lt": bson::DateTime::from_chrono(to) } },
    )
    .await;
    let mut by_action: HashMap<String, i64> = HashMap::new();
    let mut by_entity: HashMap<String, i64> = HashMap::new();
    for entry in &entries {
        *by_action
            .entry(entry.get_str("action").unwrap().to_string())
            .or_default() += 1;
        *by_entity
            .entry(entry.get_str("entityType").unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(by_action["asset.create"], 2);
    assert_eq!(by_action["asset.update"], 1);
    assert_eq!(by_action["report.request"], 1);
    assert_eq!(result["entries"], entries.len() as i64);
    let listed = |field: &str, name: &str| -> HashMap<String, i64> {
        result[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[name].as_str().unwrap().to_string(),
                    r["count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(listed("byAction", "action"), by_action);
    assert_eq!(listed("byEntityType", "entityType"), by_entity);
    let counts: Vec<i64> = result["byAction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most first: {counts:?}"
    );
}

#[tokio::test]
async fn parameters_that_do_not_fit_make_the_report_fail_with_a_reason() {
    let app = spawn_with_worker().await;
    let admin = app.login("admin").await;
    let asset_id = app.create_asset(&admin, "Hoist", None).await;
    let missing = global(NodeKind::Beneficiary, ObjectId::new());
    let cases = [
        (
            "ASSET_INVENTORY",
            json!({ "colour": "red" }),
            "unknown parameter `colour`: ASSET_INVENTORY takes category",
        ),
        (
            "ASSET_INVENTORY",
            json!({ "category": 3 }),
            "`category` must be one of OFFICE, EQUIPMENT, MEDICAL, IT, VEHICLE, FURNITURE",
        ),
        (
            "PROGRAM_OCCUPANCY",
            json!({ "programId": asset_id }),
            "`programId` is not the id of a DisabilityProgram",
        ),
        (
            "BENEFICIARY_PROGRESS",
            json!({}),
            "`beneficiaryId` is required",
        ),
        (
            "BENEFICIARY_PROGRESS",
            json!({ "beneficiaryId": missing }),
            "no beneficiary has the id given in `beneficiaryId`",
        ),
        (
            "THERAPIST_WORKLOAD",
            json!({ "from": "2026-03-01T00:00:00Z", "to": "2026-02-01T00:00:00Z" }),
            "`from` is after `to`",
        ),
        (
            "AUDIT_SUMMARY",
            json!({ "from": "last week", "to": "2026-02-01T00:00:00Z" }),
            "`from` must be an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z, not `last week`",
        ),
        (
            "AUDIT_SUMMARY",
            json!({ "from": { "$gt": "" }, "to": "2026-02-01T00:00:00Z" }),
            "`from` must be an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z",
        ),
    ];
    let mut requested = Vec::new();
    for (kind, parameters, _) in &cases {
        requested.push(request(&app, &admin, kind, parameters.clone()).await);
    }
    for (id, (kind, parameters, reason)) in requested.iter().zip(&cases) {
        let report = finished(&app, &admin, id).await;
        assert_eq!(report["status"], "FAILED", "{kind} {parameters}: {report}");
        assert_eq!(report["error"], *reason, "{kind} {parameters}");
        assert!(report["result"].is_null());
    }
    let stored = app
        .gql(Some(&admin), READ, json!({ "id": requested[7] }))
        .await;
    assert_eq!(stored["data"]["report"]["type"], "AUDIT_SUMMARY");

    for (parameters, field) in [(json!([1, 2]), "parameters"), (json!("x"), "parameters")] {
        let body = app
            .gql(
                Some(&admin),
                REQUEST,
                json!({ "t": "ASSET_INVENTORY", "p": parameters }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    let huge = json!({ "category": "x".repeat(5000) });
    let body = app
        .gql(
            Some(&admin),
            REQUEST,
            json!({ "t": "ASSET_INVENTORY", "p": huge }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn managers_see_their_own_reports_and_other_roles_none() {
    let app = spawn_with_worker().await;
    seed_all(&app).await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let colleague = app.login("manager.education").await;
    let therapist = app.login("therapist").await;
    let user = app.login("user").await;

    for token in [&therapist, &user] {
        let body = app
            .gql(
                Some(token),
                REQUEST,
                json!({ "t": "ASSET_INVENTORY", "p": {} }),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        let body = app
            .gql(Some(token), "{ reports { totalCount } }", json!({}))
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let body = app
        .gql(
            Some(&manager),
            REQUEST,
            json!({ "t": "AUDIT_SUMMARY", "p": { "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "managers cannot read the audit log: {body}"
    );

    let body = app
        .gql(
            Some(&manager),
            REQUEST,
            json!({ "t": "ASSET_INVENTORY", "p": null }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let report = &body["data"]["requestReport"];
    assert_eq!(report["requestedBy"]["email"], "manager@alawael.local");
    assert_eq!(report["parameters"], json!({}));
    assert_eq!(report["type"], "ASSET_INVENTORY");
    let mine = report["id"].as_str().unwrap().to_string();
    let theirs = request(&app, &colleague, "PROGRAM_OCCUPANCY", json!({})).await;
    let admins = request(
        &app,
        &admin,
        "AUDIT_SUMMARY",
        json!({ "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z" }),
    )
    .await;
    finished(&app, &manager, &mine).await;
    finished(&app, &colleague, &theirs).await;
    finished(&app, &admin, &admins).await;

    let list = "{ reports(orderBy: { field: CREATED_AT, direction: DESC }) { totalCount edges { node { id requestedBy { email } } } } }";
    let ids = |body: Value| -> Vec<String> {
        body["data"]["reports"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(app.gql(Some(&manager), list, json!({})).await),
        vec![mine.clone()]
    );
    assert_eq!(
        ids(app.gql(Some(&admin), list, json!({})).await),
        vec![admins.clone(), theirs.clone(), mine.clone()]
    );
    let filtered = app
        .gql(
            Some(&admin),
            "{ reports(filter: { type: [PROGRAM_OCCUPANCY, AUDIT_SUMMARY], status: [READY] }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(filtered["data"]["reports"]["totalCount"], 2, "{filtered}");

    let hidden = app.gql(Some(&manager), READ, json!({ "id": theirs })).await;
    assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");
    assert!(hidden["data"]["report"].is_null());
    let node = app
        .gql(
            Some(&manager),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Report { status } } }",
            json!({ "ids": [mine, theirs] }),
        )
        .await;
    assert_eq!(node["data"]["nodes"][0]["status"], "READY", "{node}");
    assert!(node["data"]["nodes"][1].is_null());
    let body = app.gql(Some(&therapist), READ, json!({ "id": mine })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let seen = app.gql(Some(&admin), READ, json!({ "id": mine })).await;
    assert_eq!(seen["data"]["report"]["status"], "READY");

    let audit = app
        .audit_for("Report", GlobalId::decode(&mine).unwrap().id)
        .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "report.request");
}

const SUBSCRIBE: &str = "subscription($id: ID!) { reportUpdated(id: $id) { id status attempts result requestedBy { email } } }";

#[tokio::test]
async fn report_updated_streams_each_status_over_a_websocket() {
    // No worker of its own: the test starts one once the subscriber listens.
    let app = spawn_app_with(|s| s.reports.worker = false).await;
    let manager = app.login("manager").await;
    let id = request(&app, &manager, "ASSET_INVENTORY", json!({})).await;

    let colleague_token = {
        alawael::seed::clinic::load(
            &app.state.db,
            &app.state.vault,
            &app.state.settings.seed,
            1,
            |_| {},
        )
        .await
        .unwrap();
        app.login("manager.education").await
    };
    for (token, code) in [
        (colleague_token, "NOT_FOUND"),
        (app.login("therapist").await, "FORBIDDEN"),
    ] {
        let mut socket = init(&app, &token).await;
        send(&mut socket, json!({ "id": "x", "type": "subscribe", "payload": { "query": SUBSCRIBE, "variables": { "id": id } } })).await;
        let reply = next(&mut socket).await.unwrap();
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["payload"][0]["extensions"]["code"], code);
    }

    let mut socket = init(&app, &manager).await;
    send(&mut socket, json!({ "id": "r", "type": "subscribe", "payload": { "query": SUBSCRIBE, "variables": { "id": id } } })).await;
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    loop {
        let message = next(&mut socket).await.unwrap();
        if message["type"] == "complete" {
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], "r");
        last = message["payload"]["data"]["reportUpdated"].clone();
        assert_eq!(last["requestedBy"]["email"], "manager@alawael.local");
        statuses.push(last["status"].as_str().unwrap().to_string());
        if statuses.len() == 1 {
            assert_eq!(statuses[0], "QUEUED");
            alawael::reports::spawn(app.state.clone());
        }
    }
    assert_eq!(statuses, ["QUEUED", "RUNNING", "READY"]);
    assert_eq!(last["attempts"], 1);
    assert_eq!(last["result"]["count"], 0);

    // A finished report: its state, then the stream completes.
    send(&mut socket, json!({ "id": "again", "type": "subscribe", "payload": { "query": SUBSCRIBE, "variables": { "id": id } } })).await;
    let message = next(&mut socket).await.unwrap();
    assert_eq!(
        message["payload"]["data"]["reportUpdated"]["status"],
        "READY"
    );
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
}

fn stale_report(requested_by: ObjectId, attempts: i32) -> ReportRecord {
    let mut report = ReportRecord::new(ReportType::AssetInventory, "{}".into(), requested_by);
    report.status = ReportStatus::Running;
    report.attempts = attempts;
    report.started_at = Some(bson::DateTime::from_millis(
        report.created_at.timestamp_millis() - 120_000,
    ));
    report.lease = Some(Lease {
        owner: "worker-that-died".into(),
        until: bson::DateTime::from_millis(report.created_at.timestamp_millis() - 60_000),
    });
    report
}

#[tokio::test]
async fn a_report_whose_worker_died_is_computed_again_after_a_restart() {
    // A process claimed two reports and died: one after its first attempt,
    // one on its last allowed attempt. The database is prepared before the
    // next process starts.
    let mut settings = crate::support::helpers::test_settings(alawael::config::Environment::Test);
    settings.reports.worker = true;
    let db = alawael::db::Db::connect(&settings.database).await.unwrap();
    alawael::db::migrations::up(&db, &alawael::models::registry::indexes())
        .await
        .unwrap();
    alawael::seed::load_parts(&db, &settings.seed, false)
        .await
        .unwrap();
    let admin_id = rows_of(&db, "users", doc! { "email": "admin@alawael.local" }).await[0]
        .get_object_id("_id")
        .unwrap();
    let max = settings.reports.max_attempts;
    let again = stale_report(admin_id, 1);
    let exhausted = stale_report(admin_id, max);
    let reports = db.database().collection::<ReportRecord>("reports");
    reports.insert_many([&again, &exhausted]).await.unwrap();

    let app = spawn_with_settings(settings).await;
    let admin = app.login("admin").await;
    let id = global(NodeKind::Report, again.id);
    let report = finished(&app, &admin, &id).await;
    assert_eq!(report["status"], "READY", "{report}");
    assert_eq!(report["attempts"], 2);
    assert_eq!(report["result"]["count"], 0);

    let report = finished(&app, &admin, &global(NodeKind::Report, exhausted.id)).await;
    assert_eq!(report["status"], "FAILED", "{report}");
    assert_eq!(
        report["error"],
        format!("the worker stopped {max} times while computing this report")
    );
    assert!(
        rows(&app, "report_claims", doc! {}).await.is_empty(),
        "finished reports leave no claims behind"
    );
}

async fn rows_of(db: &alawael::db::Db, collection: &str, filter: Document) -> Vec<Document> {
    db.collection(collection)
        .find(filter)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn two_workers_never_compute_the_same_attempt() {
    let first = spawn_with_worker().await;
    let second = spawn_with_settings(first.state.settings.as_ref().clone()).await;
    assert_eq!(first.state.db.name(), second.state.db.name());
    let mut events = [first.state.bus.subscribe(), second.state.bus.subscribe()];

    // Written straight to the database: no process is woken, both find them at their next poll.
    let admin_id = rows(&first, "users", doc! { "email": "admin@alawael.local" }).await[0]
        .get_object_id("_id")
        .unwrap();
    let queued: Vec<ReportRecord> = (0..24)
        .map(|_| ReportRecord::new(ReportType::AssetInventory, "{}".into(), admin_id))
        .collect();
    first
        .state
        .db
        .database()
        .collection::<ReportRecord>("reports")
        .insert_many(&queued)
        .await
        .unwrap();

    let admin = first.login("admin").await;
    for report in &queued {
        let done = finished(&first, &admin, &global(NodeKind::Report, report.id)).await;
        assert_eq!(done["status"], "READY", "{done}");
        assert_eq!(done["attempts"], 1, "{done}");
    }
    // Every report went RUNNING exactly once, in one process or the other.
    // Both buses carry both processes' events (through Redis when it is
    // configured), so each RUNNING is counted once per distinct worker
    // lease, whichever bus it arrived on.
    let mut seen: HashSet<(ObjectId, String)> = HashSet::new();
    let mut running: HashMap<ObjectId, usize> = HashMap::new();
    let mut owners: HashSet<String> = HashSet::new();
    for receiver in events.iter_mut() {
        while let Ok(event) = receiver.try_recv() {
            if let Some((_, snapshot)) = event.of_entity("Report") {
                let report = snapshot.get::<ReportRecord>().unwrap();
                let owner = report
                    .lease
                    .as_ref()
                    .map(|l| l.owner.clone())
                    .unwrap_or_default();
                if report.status == ReportStatus::Running && seen.insert((report.id, owner.clone()))
                {
                    *running.entry(report.id).or_default() += 1;
                    owners.insert(owner);
                }
            }
        }
    }
    let ids: HashSet<ObjectId> = queued.iter().map(|r| r.id).collect();
    assert_eq!(running.keys().copied().collect::<HashSet<_>>(), ids);
    assert!(
        running.values().all(|n| *n == 1),
        "a report computed twice: {running:?}"
    );
    assert!(!owners.is_empty());
}

#[tokio::test]
async fn a_claim_holds_its_report_until_it_is_handed_back_or_its_row_goes_stale() {
    use alawael::models::report::record::{Claim, ReportQueue};
    // No worker: the test is the only one claiming.
    let app = spawn_app_with(|s| s.reports.worker = false).await;
    let queue = ReportQueue::new(&app.state.db);
    let lease = Duration::from_secs(60);
    let admin_id = rows(&app, "users", doc! { "email": "admin@alawael.local" }).await[0]
        .get_object_id("_id")
        .unwrap();
    let report = ReportRecord::new(ReportType::AuditSummary, "{}".into(), admin_id);
    let reports = app
        .state
        .db
        .database()
        .collection::<ReportRecord>("reports");
    reports.insert_one(&report).await.unwrap();

    let seen = queue.claimable(10).await.unwrap();
    assert_eq!(seen.len(), 1);
    let Claim::Running(held) = queue.claim(&seen[0], "a", lease, 3).await.unwrap() else {
        panic!("the first claim wins");
    };
    assert_eq!((held.status, held.attempts), (ReportStatus::Running, 1));
    assert!(matches!(
        queue.claim(&seen[0], "b", lease, 3).await.unwrap(),
        Claim::Lost
    ));
    assert!(
        queue.claimable(10).await.unwrap().is_empty(),
        "a live lease hides it"
    );
    assert!(queue.renew(&held, "a", lease).await.unwrap());
    assert!(
        !queue.renew(&held, "b", lease).await.unwrap(),
        "only its owner renews"
    );

    // Handed back (shutdown): QUEUED, and the next claim is attempt 2.
    let back = queue.release(&held, "a").await.unwrap().unwrap();
    assert_eq!((back.status, back.attempts), (ReportStatus::Queued, 1));
    assert!(
        queue.complete(&held, "a", doc! {}).await.unwrap().is_none(),
        "a released claim stores nothing"
    );

    // A worker that wrote its claim row and stopped before the update: once
    // a lease's time has passed, that attempt counts and the next one is taken.
    let stale_at = bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - 120_000);
    app.state
        .db
        .collection("report_claims")
        .insert_one(doc! { "_id": format!("{}:2", report.id.to_hex()), "reportId": report.id, "owner": "gone", "at": stale_at })
        .await
        .unwrap();
    let Claim::Running(again) = queue.claim(&back, "b", lease, 3).await.unwrap() else {
        panic!("a stale claim row does not block the report");
    };
    assert_eq!(again.attempts, 3);
    let done = queue
        .complete(&again, "b", doc! { "entries": 0 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ReportStatus::Ready);
    assert!(done.lease.is_none() && done.generated_at.is_some());
}
