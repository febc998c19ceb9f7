//! Fixtures for the clinical models: programmes, beneficiaries, enrolments
//! and sessions created through the API as a real client would.

use serde_json::{Value, json};

use crate::support::helpers::TestApp;

/// Runs an operation that must succeed and returns `data.<field>`.
pub async fn ok(app: &TestApp, token: &str, query: &str, variables: Value, field: &str) -> Value {
    let body = app.gql(Some(token), query, variables).await;
    assert!(body["errors"].is_null(), "{field} failed: {body}");
    body["data"][field].clone()
}

/// A programme with `capacity` places; returns its id.
pub async fn create_program(app: &TestApp, token: &str, name: &str, capacity: i32) -> String {
    ok(
        app,
        token,
        "mutation($i: CreateDisabilityProgramInput!) { createDisabilityProgram(input: $i) { id } }",
        json!({ "i": { "name": name, "category": "PHYSICAL", "capacity": capacity, "durationWeeks": 12,
                       "fee": { "amountMinor": 50000, "currency": "SAR" } } }),
        "createDisabilityProgram",
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// A beneficiary with medical notes; returns its id.
pub async fn create_beneficiary(
    app: &TestApp,
    token: &str,
    name: &str,
    national_id: &str,
) -> String {
    ok(
        app,
        token,
        "mutation($i: CreateBeneficiaryInput!) { createBeneficiary(input: $i) { id } }",
        json!({ "i": { "fullName": name, "nationalId": national_id, "dateOfBirth": "2015-03-02",
                       "gender": "FEMALE", "disabilityType": "cerebral palsy", "severity": "MODERATE",
                       "guardian": { "name": "Guardian of ".to_string() + name, "phone": "+966 50 000 0000", "relation": "mother" },
                       "medicalNotes": "notes about ".to_string() + name,
                       "consent": { "dataProcessing": true } } }),
        "createBeneficiary",
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

pub const ENROLL: &str =
    "mutation($i: EnrollBeneficiaryInput!) { enrollBeneficiary(input: $i) { id status } }";

/// Enrols a beneficiary (PENDING); returns the raw response body.
pub async fn enroll(
    app: &TestApp,
    token: &str,
    beneficiary: &str,
    program: &str,
    therapist: &str,
) -> Value {
    app.gql(
        Some(token),
        ENROLL,
        json!({ "i": { "beneficiaryId": beneficiary, "programId": program, "therapistId": therapist, "startDate": "2026-01-04" } }),
    )
    .await
}

pub const SET_STATUS: &str = "mutation($id: ID!, $s: EnrollmentStatus!) { setEnrollmentStatus(id: $id, status: $s) { id status } }";

/// An ACTIVE enrolment of a new beneficiary with `therapist`; returns (beneficiary, enrolment).
pub async fn active_enrollment(
    app: &TestApp,
    admin: &str,
    program: &str,
    therapist: &str,
    name: &str,
    national_id: &str,
) -> (String, String) {
    let beneficiary = create_beneficiary(app, admin, name, national_id).await;
    let body = enroll(app, admin, &beneficiary, program, therapist).await;
    assert!(body["errors"].is_null(), "enrol failed: {body}");
    let enrollment = body["data"]["enrollBeneficiary"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    ok(
        app,
        admin,
        SET_STATUS,
        json!({ "id": enrollment, "s": "ACTIVE" }),
        "setEnrollmentStatus",
    )
    .await;
    (beneficiary, enrollment)
}

pub const RECORD: &str =
    "mutation($i: RecordTherapySessionInput!) { recordTherapySession(input: $i) { id } }";

/// Records a session on an enrolment; returns the raw response body.
pub async fn record_session(app: &TestApp, token: &str, enrollment: &str, notes: &str) -> Value {
    app.gql(
        Some(token),
        RECORD,
        json!({ "i": { "enrollmentId": enrollment, "startedAt": "2026-01-05T09:00:00Z", "durationMinutes": 45,
                       "attendance": "ATTENDED", "notes": notes, "progressScore": 60 } }),
    )
    .await
}
