//! Every role against every clinical query and mutation (programmes,
//! beneficiaries, enrolments, sessions, bookings, the audit log and the
//! data-protection mutations): a table of what is allowed and what is
//! refused, with the code, and proof that a refused mutation wrote nothing.
//! Then the field rules: what USER and THERAPIST may read of a beneficiary
//! and of a session.

use std::collections::BTreeMap;

use bson::Document;
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::support::clinic::{RECORD, SET_STATUS, create_beneficiary, create_program, enroll, ok};
use crate::support::helpers::{PASSWORD, TestApp, error_code, spawn_app_with};

const ROLES: [&str; 4] = ["admin", "manager", "therapist", "user"];

const OK: Option<&str> = None;
const FORBIDDEN: Option<&str> = Some("FORBIDDEN");
const NOT_FOUND: Option<&str> = Some("NOT_FOUND");

/// What a case needs made fresh for each call (so a deletion, an erasure or
/// a cancellation does not affect the next call).
const PROGRAM: u8 = 1;
const BENEFICIARY: u8 = 2;
const PENDING: u8 = 4;
const SESSION: u8 = 8;
const BOOKINGS: u8 = 16;

struct Case {
    name: &'static str,
    query: &'static str,
    /// What to make fresh before the call (`PROGRAM | SESSION`, ...).
    needs: u8,
    variables: fn(&Fixture<'_>) -> Value,
    /// Expected outcome per role, in ROLES order: `None` allowed, or the error code.
    expect: [Option<&'static str>; 4],
}

/// What exists for the whole test: a programme, the seeded therapist's
/// beneficiary (ACTIVE enrolment, one session) and a second therapist's.
struct World {
    /// Access tokens in ROLES order.
    tokens: Vec<String>,
    therapist: String,
    program: String,
    own_beneficiary: String,
    own_national_id: String,
    own_enrollment: String,
    own_session: String,
    other_beneficiary: String,
    other_enrollment: String,
    other_session: String,
}

/// The world, plus what one call needs made fresh.
struct Fixture<'a> {
    w: &'a World,
    n: usize,
    serial: String,
    fresh_program: String,
    fresh_beneficiary: String,
    pending_enrollment: String,
    fresh_session: String,
    /// A room booked by ADMIN.
    room_booking: String,
    /// The seeded therapist booked by ADMIN.
    therapist_booking: String,
    /// A room booked by the caller.
    own_booking: String,
}

pub const CREATE_SCHEDULE: &str =
    "mutation($i: CreateScheduleInput!) { createSchedule(input: $i) { id } }";

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_string()
}

/// A half-hour slot of its own for call `n` (bookings must not overlap).
fn slot(n: usize) -> (String, String) {
    let base = chrono::DateTime::parse_from_rfc3339("2027-01-04T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let start = base + chrono::Duration::hours(i64::try_from(n).unwrap());
    let end = start + chrono::Duration::minutes(30);
    let f = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (f(start), f(end))
}

/// Books a resource; returns the booking's id.
async fn book(app: &TestApp, token: &str, kind: &str, resource: &str, n: usize) -> String {
    let (start, end) = slot(n);
    id_of(
        &ok(
            app,
            token,
            CREATE_SCHEDULE,
            json!({ "i": { "title": format!("Booking {n}"), "resourceType": kind, "resourceId": resource,
                           "startDate": start, "endDate": end } }),
            "createSchedule",
        )
        .await,
    )
}

/// A national id of letters and digits, unique in the test.
fn national_id(prefix: &str, n: usize) -> String {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_ascii_uppercase();
    format!("{prefix}{n:05}{tag}")
}

/// Creates a second THERAPIST who can sign in as `<who>@alawael.local`; returns their id.
async fn create_therapist(app: &TestApp, admin: &str, who: &str) -> String {
    id_of(
        &ok(
            app,
            admin,
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "i": { "email": format!("{who}@alawael.local"), "name": format!("Therapist {who}"),
                           "role": "THERAPIST", "password": PASSWORD } }),
            "createUser",
        )
        .await,
    )
}

/// Enrols and activates; returns the enrolment's id.
async fn active(
    app: &TestApp,
    admin: &str,
    beneficiary: &str,
    program: &str,
    therapist: &str,
) -> String {
    let body = enroll(app, admin, beneficiary, program, therapist).await;
    assert!(body["errors"].is_null(), "enrol failed: {body}");
    let enrollment = body["data"]["enrollBeneficiary"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        app,
        admin,
        SET_STATUS,
        json!({ "id": enrollment, "s": "ACTIVE" }),
        "setEnrollmentStatus",
    )
    .await;
    enrollment
}

/// Records a session as `token`; returns its id.
async fn session(app: &TestApp, token: &str, enrollment: &str, notes: &str) -> String {
    id_of(
        &ok(
            app,
            token,
            RECORD,
            json!({ "i": { "enrollmentId": enrollment, "startedAt": "2026-01-05T09:00:00Z", "durationMinutes": 45,
                           "attendance": "ATTENDED", "notes": notes, "progressScore": 60 } }),
            "recordTherapySession",
        )
        .await,
    )
}

/// An app whose access tokens outlive a long table of calls.
async fn spawn() -> TestApp {
    // No background workers: the write checks compare whole collections.
    spawn_app_with(|s| {
        s.auth.access_token_ttl_secs = 3600;
        s.server.background_workers = false;
    })
    .await
}

impl World {
    async fn build(app: &TestApp) -> Self {
        let mut tokens = Vec::new();
        for role in ROLES {
            tokens.push(app.login(role).await);
        }
        let admin = tokens[0].clone();
        let therapist = app.user_id("therapist").await;
        let therapist2 = create_therapist(app, &admin, "therapist2").await;
        let program = create_program(app, &admin, "Matrix programme", 1000).await;

        let own_national_id = national_id("OWN", 0);
        let own_beneficiary =
            create_beneficiary(app, &admin, "Own Beneficiary", &own_national_id).await;
        let own_enrollment = active(app, &admin, &own_beneficiary, &program, &therapist).await;
        let own_session = session(app, &tokens[2], &own_enrollment, "own session notes").await;

        let other_beneficiary =
            create_beneficiary(app, &admin, "Other Beneficiary", &national_id("OTH", 0)).await;
        let other_enrollment = active(app, &admin, &other_beneficiary, &program, &therapist2).await;
        let other_session = session(app, &admin, &other_enrollment, "other session notes").await;
        Self {
            tokens,
            therapist,
            program,
            own_beneficiary,
            own_national_id,
            own_enrollment,
            own_session,
            other_beneficiary,
            other_enrollment,
            other_session,
        }
    }

    /// What call `n` by `caller` needs made fresh.
    async fn fixture(&self, app: &TestApp, caller: &str, n: usize, needs: u8) -> Fixture<'_> {
        let admin = &self.tokens[0];
        let mut f = Fixture {
            w: self,
            n,
            serial: format!("{n}-{}", uuid::Uuid::new_v4().simple()),
            fresh_program: String::new(),
            fresh_beneficiary: String::new(),
            pending_enrollment: String::new(),
            fresh_session: String::new(),
            room_booking: String::new(),
            therapist_booking: String::new(),
            own_booking: String::new(),
        };
        if needs & PROGRAM != 0 {
            f.fresh_program = create_program(app, admin, &format!("Fresh programme {n}"), 10).await;
        }
        if needs & BENEFICIARY != 0 {
            f.fresh_beneficiary = create_beneficiary(
                app,
                admin,
                &format!("Fresh Person {n}"),
                &national_id("FR", n),
            )
            .await;
        }
        if needs & PENDING != 0 {
            let person = create_beneficiary(
                app,
                admin,
                &format!("Pending Person {n}"),
                &national_id("PE", n),
            )
            .await;
            let body = enroll(app, admin, &person, &self.program, &self.therapist).await;
            assert!(body["errors"].is_null(), "enrol failed: {body}");
            f.pending_enrollment = body["data"]["enrollBeneficiary"]["id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        if needs & SESSION != 0 {
            f.fresh_session = session(app, admin, &self.own_enrollment, "fresh notes").await;
        }
        if needs & BOOKINGS != 0 {
            f.room_booking = book(app, admin, "ROOM", &format!("RA-{n}"), n).await;
            f.therapist_booking = book(app, admin, "THERAPIST", &self.therapist, n).await;
            f.own_booking = book(app, caller, "ROOM", &format!("RO-{n}"), n).await;
        }
        f
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Programmes.
        Case {
            name: "list programmes",
            query: "{ disabilityPrograms(first: 5) { totalCount nodes { id name } } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "read a programme",
            query: "query($id: ID!) { disabilityProgram(id: $id) { id name capacity fee { amountMinor } } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.program }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "create a programme",
            query: "mutation($n: String!) { createDisabilityProgram(input: { name: $n, category: SPEECH, capacity: 5, durationWeeks: 4, fee: { amountMinor: 100, currency: \"SAR\" } }) { id } }",
            needs: 0,
            variables: |f| json!({ "n": format!("Created programme {}", f.serial) }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "update a programme",
            query: "mutation($id: ID!) { updateDisabilityProgram(id: $id, input: { description: \"Changed\" }) { id } }",
            needs: PROGRAM,
            variables: |f| json!({ "id": f.fresh_program }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "delete a programme",
            query: "mutation($id: ID!) { deleteDisabilityProgram(id: $id) }",
            needs: PROGRAM,
            variables: |f| json!({ "id": f.fresh_program }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        // Beneficiaries.
        Case {
            name: "list beneficiaries' names",
            query: "{ beneficiaries(first: 50) { totalCount nodes { id fullName } } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "list beneficiaries' national ids",
            query: "{ beneficiaries(first: 50) { nodes { nationalId medicalNotes } } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "find a beneficiary by national id",
            query: "query($n: String!) { beneficiaries(filter: { nationalId: $n }) { totalCount nodes { id } } }",
            needs: 0,
            variables: |f| json!({ "n": f.w.own_national_id }),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "read a beneficiary's name",
            query: "query($id: ID!) { beneficiary(id: $id) { id fullName } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.own_beneficiary }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "read a beneficiary's record",
            query: "query($id: ID!) { beneficiary(id: $id) { nationalId dateOfBirth medicalNotes guardian { name } } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.own_beneficiary }),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "read a beneficiary's enrolments and sessions",
            query: "query($id: ID!) { beneficiary(id: $id) { enrollments { totalCount } sessions { totalCount } } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.own_beneficiary }),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "read another therapist's beneficiary",
            query: "query($id: ID!) { beneficiary(id: $id) { id fullName } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.other_beneficiary }),
            expect: [OK, OK, NOT_FOUND, OK],
        },
        Case {
            name: "create a beneficiary",
            query: "mutation($n: String!) { createBeneficiary(input: { fullName: \"New Person\", nationalId: $n, dateOfBirth: \"2016-05-01\", gender: MALE, disabilityType: \"autism\", severity: MILD }) { id } }",
            needs: 0,
            variables: |f| json!({ "n": national_id("NEW", f.n) }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "update a beneficiary",
            query: "mutation($id: ID!) { updateBeneficiary(id: $id, input: { severity: SEVERE }) { id } }",
            needs: BENEFICIARY,
            variables: |f| json!({ "id": f.fresh_beneficiary }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "export a beneficiary's data",
            query: "mutation($id: ID!) { exportBeneficiaryData(id: $id) }",
            needs: 0,
            variables: |f| json!({ "id": f.w.own_beneficiary }),
            expect: [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "erase a beneficiary",
            query: "mutation($id: ID!) { eraseBeneficiary(id: $id) { id erasedAt } }",
            needs: BENEFICIARY,
            variables: |f| json!({ "id": f.fresh_beneficiary }),
            expect: [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        },
        // Enrolments.
        Case {
            name: "list enrolments",
            query: "{ enrollments(first: 50) { totalCount nodes { id status } } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "read own enrolment",
            query: "query($id: ID!) { enrollment(id: $id) { id status beneficiary { fullName } therapist { name } } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.own_enrollment }),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "read another therapist's enrolment",
            query: "query($id: ID!) { enrollment(id: $id) { id status } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.other_enrollment }),
            expect: [OK, OK, NOT_FOUND, FORBIDDEN],
        },
        Case {
            name: "list a programme's enrolments",
            query: "query($id: ID!) { disabilityProgram(id: $id) { enrollments { totalCount nodes { id } } } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.program }),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "enrol a beneficiary",
            query: crate::support::clinic::ENROLL,
            needs: BENEFICIARY,
            variables: |f| {
                json!({ "i": { "beneficiaryId": f.fresh_beneficiary, "programId": f.w.program,
                               "therapistId": f.w.therapist, "startDate": "2026-01-04" } })
            },
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "activate an enrolment",
            query: SET_STATUS,
            needs: PENDING,
            variables: |f| json!({ "id": f.pending_enrollment, "s": "ACTIVE" }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "change an enrolment's goals",
            query: "mutation($id: ID!) { updateEnrollment(id: $id, input: { goals: [{ description: \"Walk ten steps\" }] }) { id } }",
            needs: PENDING,
            variables: |f| json!({ "id": f.pending_enrollment }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        // Sessions.
        Case {
            name: "list sessions",
            query: "{ therapySessions(first: 50) { totalCount nodes { id } } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "read own session with its notes",
            query: "query($id: ID!) { therapySession(id: $id) { id notes attendance } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.own_session }),
            expect: [OK, OK, OK, FORBIDDEN],
        },
        Case {
            name: "read another therapist's session",
            query: "query($id: ID!) { therapySession(id: $id) { id } }",
            needs: 0,
            variables: |f| json!({ "id": f.w.other_session }),
            expect: [OK, OK, NOT_FOUND, FORBIDDEN],
        },
        Case {
            name: "record a session of own enrolment",
            query: RECORD,
            needs: 0,
            variables: |f| {
                json!({ "i": { "enrollmentId": f.w.own_enrollment, "startedAt": "2026-01-06T09:00:00Z",
                               "durationMinutes": 30, "attendance": "ATTENDED", "notes": "matrix" } })
            },
            expect: [OK, FORBIDDEN, OK, FORBIDDEN],
        },
        Case {
            name: "record a session of another therapist's enrolment",
            query: RECORD,
            needs: 0,
            variables: |f| {
                json!({ "i": { "enrollmentId": f.w.other_enrollment, "startedAt": "2026-01-06T09:00:00Z",
                               "durationMinutes": 30, "attendance": "ABSENT" } })
            },
            expect: [OK, FORBIDDEN, NOT_FOUND, FORBIDDEN],
        },
        Case {
            name: "correct own session",
            query: "mutation($id: ID!) { updateTherapySession(id: $id, input: { progressScore: 70 }) { id } }",
            needs: SESSION,
            variables: |f| json!({ "id": f.fresh_session }),
            expect: [OK, FORBIDDEN, OK, FORBIDDEN],
        },
        Case {
            name: "delete a session",
            query: "mutation($id: ID!) { deleteTherapySession(id: $id) }",
            needs: SESSION,
            variables: |f| json!({ "id": f.fresh_session }),
            expect: [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        },
        // Bookings.
        Case {
            name: "list bookings",
            query: "{ schedules(first: 50) { totalCount nodes { id title } } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "book a room",
            query: CREATE_SCHEDULE,
            needs: 0,
            variables: |f| {
                let (start, end) = slot(f.n);
                json!({ "i": { "title": "Matrix booking", "resourceType": "ROOM", "resourceId": format!("RC-{}", f.n),
                               "startDate": start, "endDate": end } })
            },
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "read own booking",
            query: "query($id: ID!) { schedule(id: $id) { id title createdBy { id } } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.own_booking }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "read a room booking someone else made",
            query: "query($id: ID!) { schedule(id: $id) { id title } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.room_booking }),
            expect: [OK, OK, NOT_FOUND, NOT_FOUND],
        },
        Case {
            name: "read a booking of the therapist",
            query: "query($id: ID!) { schedule(id: $id) { id title } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.therapist_booking }),
            expect: [OK, OK, OK, NOT_FOUND],
        },
        Case {
            name: "rename own booking",
            query: "mutation($id: ID!) { updateSchedule(id: $id, input: { title: \"Renamed\" }) { id } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.own_booking }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "rename a room booking someone else made",
            query: "mutation($id: ID!) { updateSchedule(id: $id, input: { title: \"Renamed\" }) { id } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.room_booking }),
            expect: [OK, OK, NOT_FOUND, NOT_FOUND],
        },
        Case {
            name: "rename a booking of the therapist",
            query: "mutation($id: ID!) { updateSchedule(id: $id, input: { title: \"Renamed\" }) { id } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.therapist_booking }),
            expect: [OK, OK, FORBIDDEN, NOT_FOUND],
        },
        Case {
            name: "cancel own booking",
            query: "mutation($id: ID!) { cancelSchedule(id: $id) { id status } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.own_booking }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "cancel a room booking someone else made",
            query: "mutation($id: ID!) { cancelSchedule(id: $id) { id status } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.room_booking }),
            expect: [OK, OK, NOT_FOUND, NOT_FOUND],
        },
        Case {
            name: "cancel a booking of the therapist",
            query: "mutation($id: ID!) { cancelSchedule(id: $id) { id status } }",
            needs: BOOKINGS,
            variables: |f| json!({ "id": f.therapist_booking }),
            expect: [OK, OK, FORBIDDEN, NOT_FOUND],
        },
        // The audit log.
        Case {
            name: "page the audit log",
            query: "{ auditLog(first: 5) { totalCount nodes { seq action } } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "verify the audit chain",
            query: "{ verifyAuditChain { ok checked } }",
            needs: 0,
            variables: |_| json!({}),
            expect: [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        },
    ]
}

fn is_mutation(query: &str) -> bool {
    query.trim_start().starts_with("mutation")
}

/// Every document of every collection, by collection and `_id`.
async fn snapshot(app: &TestApp) -> BTreeMap<String, Vec<Document>> {
    let database = app.state.db.database();
    let mut all = BTreeMap::new();
    for name in database.list_collection_names().await.unwrap() {
        let docs: Vec<Document> = database
            .collection::<Document>(&name)
            .find(bson::doc! {})
            .sort(bson::doc! { "_id": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        all.insert(name, docs);
    }
    all
}

async fn audit_count(app: &TestApp) -> u64 {
    app.state
        .db
        .collection("audit_logs")
        .count_documents(bson::doc! {})
        .await
        .unwrap()
}

/// The collections whose contents differ between two snapshots.
fn changed(
    before: &BTreeMap<String, Vec<Document>>,
    after: &BTreeMap<String, Vec<Document>>,
) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .cloned()
        .collect()
}

/// Whether `value` holds no value at all: only nulls, however nested (a
/// field refused inside a list leaves `nodes: [null, ...]`).
fn no_values(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().all(no_values),
        Value::Object(fields) => fields.values().all(no_values),
        _ => false,
    }
}

fn refused_without_data(body: &Value) -> bool {
    no_values(&body["data"])
}

#[tokio::test]
async fn every_role_is_allowed_or_refused_each_clinical_operation_and_refusals_write_nothing() {
    let app = spawn().await;
    let world = World::build(&app).await;
    let mut failures = Vec::new();
    let mut n = 0;
    for case in cases() {
        for (i, role) in ROLES.iter().enumerate() {
            n += 1;
            let token = &world.tokens[i];
            let f = world.fixture(&app, token, n, case.needs).await;
            let variables = (case.variables)(&f);
            let mutation = is_mutation(case.query);
            let before = if mutation {
                Some(snapshot(&app).await)
            } else {
                None
            };
            let audit_before = audit_count(&app).await;

            let body = app.gql(Some(token), case.query, variables).await;

            let got = if body["errors"].is_null() {
                None
            } else {
                Some(error_code(&body).to_string())
            };
            if got.as_deref() != case.expect[i] {
                failures.push(format!(
                    "{role} / {}: expected {:?}, got {body}",
                    case.name, case.expect[i]
                ));
                continue;
            }
            if case.expect[i].is_some() {
                if !refused_without_data(&body) {
                    failures.push(format!("{role} / {}: data on refusal: {body}", case.name));
                }
                if let Some(before) = before {
                    let after = snapshot(&app).await;
                    let differ = changed(&before, &after);
                    if !differ.is_empty() {
                        failures.push(format!(
                            "{role} / {}: refused, yet wrote to {differ:?}",
                            case.name
                        ));
                    }
                }
            } else if mutation && audit_count(&app).await <= audit_before {
                failures.push(format!(
                    "{role} / {}: allowed, yet no audit entry was written",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn anonymous_callers_are_unauthenticated_for_every_clinical_operation() {
    let app = spawn().await;
    let world = World::build(&app).await;
    let admin = world.tokens[0].clone();
    let f = world
        .fixture(
            &app,
            &admin,
            1,
            PROGRAM | BENEFICIARY | PENDING | SESSION | BOOKINGS,
        )
        .await;
    for case in cases() {
        let before = snapshot(&app).await;
        let body = app.gql(None, case.query, (case.variables)(&f)).await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "{}: {body}",
            case.name
        );
        assert!(refused_without_data(&body), "{}: {body}", case.name);
        let differ = changed(&before, &snapshot(&app).await);
        assert!(
            differ.is_empty(),
            "{}: anonymous, yet wrote to {differ:?}",
            case.name
        );
    }
}

const BENEFICIARY_FIELDS: &[&str] = &[
    "nationalId",
    "dateOfBirth",
    "gender",
    "disabilityType",
    "severity",
    "guardian { name phone relation }",
    "medicalNotes",
    "consent { dataProcessing recordedAt }",
    "status",
    "erasedAt",
    "enrollments { totalCount }",
    "sessions { totalCount }",
    "createdAt",
    "updatedAt",
];

#[tokio::test]
async fn a_user_reads_beneficiaries_names_and_nothing_else() {
    let app = spawn().await;
    let admin = app.login("admin").await;
    let user = app.login("user").await;
    let id = create_beneficiary(&app, &admin, "Nour Al-Harbi", "NH20160101").await;

    let list = ok(
        &app,
        &user,
        "{ beneficiaries(first: 50) { totalCount nodes { id fullName } } }",
        json!({}),
        "beneficiaries",
    )
    .await;
    assert!(
        list["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == id.as_str() && n["fullName"] == "Nour Al-Harbi"),
        "{list}"
    );
    let one = ok(
        &app,
        &user,
        "query($id: ID!) { beneficiary(id: $id) { id fullName } }",
        json!({ "id": id }),
        "beneficiary",
    )
    .await;
    assert_eq!(one["fullName"], "Nour Al-Harbi");

    let mut failures = Vec::new();
    for field in BENEFICIARY_FIELDS {
        for query in [
            format!("query($id: ID!) {{ beneficiary(id: $id) {{ id {field} }} }}"),
            format!(
                "query($id: ID!) {{ node(id: $id) {{ id ... on Beneficiary {{ {field} }} }} }}"
            ),
            format!("{{ beneficiaries(first: 50) {{ nodes {{ id {field} }} }} }}"),
        ] {
            let body = app.gql(Some(&user), &query, json!({ "id": id })).await;
            if error_code(&body) != "FORBIDDEN" {
                failures.push(format!("USER reading {field}: {body}"));
            }
            let text = body.to_string();
            assert!(
                !text.contains("NH20160101") && !text.contains("notes about"),
                "{text}"
            );
        }
    }
    let by_national_id = app
        .gql(
            Some(&user),
            "{ beneficiaries(filter: { nationalId: \"NH20160101\" }) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&by_national_id), "FORBIDDEN", "{by_national_id}");
    assert!(refused_without_data(&by_national_id));
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn a_therapist_reads_the_record_of_their_own_beneficiaries_and_cannot_find_the_others() {
    let app = spawn().await;
    let admin = app.login("admin").await;
    let therapist_token = app.login("therapist").await;
    let therapist = app.user_id("therapist").await;
    let therapist2 = create_therapist(&app, &admin, "colleague").await;
    let program = create_program(&app, &admin, "Speech", 50).await;
    let mine = create_beneficiary(&app, &admin, "Mine Person", "MINE12345").await;
    let theirs = create_beneficiary(&app, &admin, "Theirs Person", "THEIRS12345").await;
    active(&app, &admin, &mine, &program, &therapist).await;
    active(&app, &admin, &theirs, &program, &therapist2).await;

    let record = ok(
        &app,
        &therapist_token,
        "query($id: ID!) { beneficiary(id: $id) { fullName nationalId medicalNotes dateOfBirth guardian { name } } }",
        json!({ "id": mine }),
        "beneficiary",
    )
    .await;
    assert_eq!(record["nationalId"], "MINE12345");
    assert_eq!(record["medicalNotes"], "notes about Mine Person");
    assert_eq!(record["guardian"]["name"], "Guardian of Mine Person");

    let by_id = app
        .gql(
            Some(&therapist_token),
            "query($id: ID!) { beneficiary(id: $id) { id fullName nationalId } }",
            json!({ "id": theirs }),
        )
        .await;
    assert_eq!(error_code(&by_id), "NOT_FOUND", "{by_id}");
    assert!(by_id["data"].is_null(), "{by_id}");

    let node = app
        .gql(
            Some(&therapist_token),
            "query($id: ID!) { node(id: $id) { id ... on Beneficiary { fullName } } }",
            json!({ "id": theirs }),
        )
        .await;
    assert!(node["data"].is_null(), "{node}");
    assert_eq!(error_code(&node), "NOT_FOUND", "{node}");
    let nodes = ok(
        &app,
        &therapist_token,
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Beneficiary { fullName } } }",
        json!({ "ids": [theirs, mine] }),
        "nodes",
    )
    .await;
    assert_eq!(nodes[0], Value::Null, "{nodes}");
    assert_eq!(nodes[1]["fullName"], "Mine Person");

    let list = ok(
        &app,
        &therapist_token,
        "{ beneficiaries(first: 100) { totalCount nodes { id fullName nationalId } } }",
        json!({}),
        "beneficiaries",
    )
    .await;
    let ids: Vec<&str> = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.as_str()], "{list}");
    assert_eq!(list["totalCount"], 1, "{list}");
    for filter in [
        json!({ "search": "Theirs" }),
        json!({ "nationalId": "THEIRS12345" }),
    ] {
        let found = ok(
            &app,
            &therapist_token,
            "query($f: BeneficiaryFilter) { beneficiaries(filter: $f) { totalCount nodes { id } } }",
            json!({ "f": filter }),
            "beneficiaries",
        )
        .await;
        assert_eq!(found["totalCount"], 0, "{filter}: {found}");
        assert_eq!(found["nodes"], json!([]), "{filter}: {found}");
    }
    // ADMIN sees both, as a check that the list above was scoped, not empty.
    let all = ok(
        &app,
        &admin,
        "{ beneficiaries(first: 100) { totalCount } }",
        json!({}),
        "beneficiaries",
    )
    .await;
    assert!(all["totalCount"].as_i64().unwrap() >= 2, "{all}");
}

#[tokio::test]
async fn session_notes_are_read_by_the_session_s_therapist_and_managers_only() {
    let app = spawn().await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let user = app.login("user").await;
    let therapist_token = app.login("therapist").await;
    let therapist = app.user_id("therapist").await;
    let therapist2 = create_therapist(&app, &admin, "colleague").await;
    let speech = create_program(&app, &admin, "Speech", 50).await;
    let motor = create_program(&app, &admin, "Motor", 50).await;
    let person = create_beneficiary(&app, &admin, "Shared Person", "SHARED12345").await;
    let mine = active(&app, &admin, &person, &speech, &therapist).await;
    let theirs = active(&app, &admin, &person, &motor, &therapist2).await;
    let my_session = session(
        &app,
        &therapist_token,
        &mine,
        "notes by the first therapist",
    )
    .await;
    let their_session = session(&app, &admin, &theirs, "notes by the second therapist").await;

    // The therapist: their own session's notes, never the colleague's.
    let through_person = ok(
        &app,
        &therapist_token,
        "query($id: ID!) { beneficiary(id: $id) { sessions { totalCount nodes { id notes } } enrollments { totalCount } } }",
        json!({ "id": person }),
        "beneficiary",
    )
    .await;
    assert_eq!(
        through_person["sessions"]["totalCount"], 1,
        "{through_person}"
    );
    assert_eq!(
        through_person["sessions"]["nodes"][0]["notes"],
        "notes by the first therapist"
    );
    assert_eq!(
        through_person["enrollments"]["totalCount"], 1,
        "{through_person}"
    );
    let listed = ok(
        &app,
        &therapist_token,
        "{ therapySessions(first: 100) { totalCount nodes { id notes } } }",
        json!({}),
        "therapySessions",
    )
    .await;
    assert_eq!(listed["totalCount"], 1, "{listed}");
    assert_eq!(listed["nodes"][0]["id"], my_session.as_str());
    for query in [
        "query($id: ID!) { therapySession(id: $id) { notes } }",
        "query($id: ID!) { node(id: $id) { ... on TherapySession { notes } } }",
    ] {
        let body = app
            .gql(
                Some(&therapist_token),
                query,
                json!({ "id": their_session }),
            )
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
        assert!(!body.to_string().contains("second therapist"), "{body}");
    }

    // MANAGER reads both.
    let managed = ok(
        &app,
        &manager,
        "query($id: ID!) { beneficiary(id: $id) { sessions { nodes { notes } } } }",
        json!({ "id": person }),
        "beneficiary",
    )
    .await;
    let mut notes: Vec<&str> = managed["sessions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["notes"].as_str().unwrap())
        .collect();
    notes.sort_unstable();
    assert_eq!(
        notes,
        vec![
            "notes by the first therapist",
            "notes by the second therapist"
        ]
    );

    // USER reads none, by any road.
    for query in [
        "query($id: ID!) { therapySession(id: $id) { notes } }",
        "query($id: ID!) { node(id: $id) { ... on TherapySession { notes } } }",
        "query($id: ID!) { nodes(ids: [$id]) { ... on TherapySession { notes } } }",
        "{ therapySessions { nodes { notes } } }",
    ] {
        let body = app
            .gql(Some(&user), query, json!({ "id": my_session }))
            .await;
        assert!(!body.to_string().contains("notes by"), "{query}: {body}");
    }
    let direct = app
        .gql(
            Some(&user),
            "query($id: ID!) { therapySession(id: $id) { notes } }",
            json!({ "id": my_session }),
        )
        .await;
    assert_eq!(error_code(&direct), "FORBIDDEN", "{direct}");
    let through_person = app
        .gql(
            Some(&user),
            "query($id: ID!) { beneficiary(id: $id) { sessions { nodes { notes } } } }",
            json!({ "id": person }),
        )
        .await;
    assert_eq!(error_code(&through_person), "FORBIDDEN", "{through_person}");
    assert!(!through_person.to_string().contains("notes by"));
}

#[tokio::test]
async fn bookings_are_listed_to_their_maker_and_the_booked_therapist() {
    let app = spawn().await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let therapist_token = app.login("therapist").await;
    let user = app.login("user").await;
    let therapist = app.user_id("therapist").await;
    let admin_room = book(&app, &admin, "ROOM", "HALL-1", 1).await;
    let therapist_booked = book(&app, &admin, "THERAPIST", &therapist, 2).await;
    let by_therapist = book(&app, &therapist_token, "ROOM", "HALL-2", 3).await;
    let by_user = book(&app, &user, "ROOM", "HALL-3", 4).await;

    let seen = |token: String| {
        let app = &app;
        async move {
            let list = ok(
                app,
                &token,
                "{ schedules(first: 100) { totalCount nodes { id } } }",
                json!({}),
                "schedules",
            )
            .await;
            let mut ids: Vec<String> = list["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            assert_eq!(
                list["totalCount"].as_u64().unwrap(),
                ids.len() as u64,
                "{list}"
            );
            ids
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    let everything = sorted(vec![
        &admin_room,
        &therapist_booked,
        &by_therapist,
        &by_user,
    ]);
    assert_eq!(seen(admin.clone()).await, everything);
    assert_eq!(seen(manager).await, everything);
    assert_eq!(
        seen(therapist_token).await,
        sorted(vec![&therapist_booked, &by_therapist])
    );
    assert_eq!(seen(user).await, sorted(vec![&by_user]));
}

#[tokio::test]
async fn a_therapist_whose_enrolment_moved_to_a_colleague_no_longer_sees_the_person_and_gets_no_internal_error()
 {
    let app = spawn().await;
    let admin = app.login("admin").await;
    let first = app.login("therapist").await;
    let therapist = app.user_id("therapist").await;
    let colleague = create_therapist(&app, &admin, "colleague").await;
    let second = app.login("colleague").await;
    let program = create_program(&app, &admin, "Speech", 50).await;
    let person = create_beneficiary(&app, &admin, "Moved Person", "MOVED12345").await;
    let enrollment = active(&app, &admin, &person, &program, &therapist).await;
    let earlier = session(&app, &first, &enrollment, "notes before the move").await;
    ok(
        &app,
        &admin,
        "mutation($id: ID!, $t: ID!) { updateEnrollment(id: $id, input: { therapistId: $t }) { id } }",
        json!({ "id": enrollment, "t": colleague }),
        "updateEnrollment",
    )
    .await;

    // The new therapist reads the record; the former one no longer finds it.
    let record = ok(
        &app,
        &second,
        "query($id: ID!) { beneficiary(id: $id) { nationalId } }",
        json!({ "id": person }),
        "beneficiary",
    )
    .await;
    assert_eq!(record["nationalId"], "MOVED12345");
    let gone = app
        .gql(
            Some(&first),
            "query($id: ID!) { beneficiary(id: $id) { nationalId } }",
            json!({ "id": person }),
        )
        .await;
    assert_eq!(error_code(&gone), "NOT_FOUND", "{gone}");

    // Whatever the former therapist may still read of the session they ran,
    // following it to the person is refused as a client error, never INTERNAL,
    // and never shows the person's record.
    let body = app
        .gql(
            Some(&first),
            "query($id: ID!) { therapySession(id: $id) { id beneficiary { fullName nationalId } enrollment { id } } }",
            json!({ "id": earlier }),
        )
        .await;
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["extensions"]["code"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(!codes.contains(&"INTERNAL"), "{body}");
    assert!(!body.to_string().contains("MOVED12345"), "{body}");
}
