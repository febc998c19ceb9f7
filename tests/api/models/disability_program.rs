//! Programmes end to end: what their declaration (`#[model]`, `#[filter]`)
//! writes out — the checked create and update inputs, defaults, clearing,
//! the refusals before a write, the filter — behaves as a client expects.

use serde_json::{Value, json};

use crate::support::clinic::{active_enrollment, create_program, ok};
use crate::support::helpers::{TestApp, error_code, spawn_app};

const CREATE: &str = "mutation($i: CreateDisabilityProgramInput!) { createDisabilityProgram(input: $i) { id name status description capacity durationWeeks fee { amountMinor currency } manager { name } therapists { name } } }";
const UPDATE: &str = "mutation($id: ID!, $i: UpdateDisabilityProgramInput!) { updateDisabilityProgram(id: $id, input: $i) { id name description capacity status manager { name } therapists { name } } }";
const LIST: &str = "query($f: DisabilityProgramFilter) { disabilityPrograms(first: 100, filter: $f) { totalCount edges { node { name } } } }";

fn minimal(name: &str) -> Value {
    json!({ "name": name, "category": "SPEECH", "capacity": 8, "durationWeeks": 10,
            "fee": { "amountMinor": 1500, "currency": "SAR" } })
}

async fn count(app: &TestApp, token: &str) -> i64 {
    let body = app.gql(Some(token), LIST, json!({})).await;
    body["data"]["disabilityPrograms"]["totalCount"]
        .as_i64()
        .unwrap_or(-1)
}

#[tokio::test]
async fn a_programme_is_created_from_the_required_fields_with_its_defaults() {
    let app = spawn_app().await;
    let token = app.login("manager").await;
    let made = ok(
        &app,
        &token,
        CREATE,
        json!({ "i": minimal("  Speech group  ") }),
        "createDisabilityProgram",
    )
    .await;
    assert_eq!(made["name"], "Speech group", "names are trimmed: {made}");
    assert_eq!(made["status"], "ACTIVE", "ACTIVE when absent: {made}");
    assert!(made["description"].is_null());
    assert!(made["manager"].is_null());
    assert_eq!(made["therapists"], json!([]));
    assert_eq!(
        made["fee"],
        json!({ "amountMinor": 1500, "currency": "SAR" })
    );
}

#[tokio::test]
async fn each_bad_field_is_bad_user_input_naming_it_and_creates_nothing() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let therapist = app.user_id("therapist").await;
    let manager = app.user_id("manager").await;
    let before = count(&app, &token).await;
    let cases = [
        ("name", json!("   "), "input.name"),
        ("capacity", json!(0), "input.capacity"),
        ("durationWeeks", json!(521), "input.durationWeeks"),
        (
            "fee",
            json!({ "amountMinor": 1, "currency": "XYZ" }),
            "input.fee",
        ),
        ("description", json!("x".repeat(2001)), "input.description"),
        // A therapist cannot manage, a manager is not a therapist.
        ("managerId", json!(therapist), "input.managerId"),
        ("therapistIds", json!([manager]), "input.therapistIds"),
        ("therapistIds", json!(["not an id"]), "input.therapistIds"),
    ];
    for (field, value, named) in cases {
        let mut input = minimal("Refused");
        input[field] = value;
        let body = app.gql(Some(&token), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], named, "{body}");
    }
    assert_eq!(count(&app, &token).await, before, "nothing was created");
}

#[tokio::test]
async fn an_update_keeps_absent_fields_clears_optional_ones_and_refuses_clearing_required_ones() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let manager = app.user_id("manager").await;
    let therapist = app.user_id("therapist").await;
    let mut input = minimal("Occupational group");
    input["description"] = json!("Everyday skills");
    input["managerId"] = json!(manager);
    input["therapistIds"] = json!([therapist, therapist]);
    let made = ok(
        &app,
        &token,
        CREATE,
        json!({ "i": input }),
        "createDisabilityProgram",
    )
    .await;
    assert_eq!(
        made["therapists"].as_array().map(Vec::len),
        Some(1),
        "ids are kept once"
    );
    let id = made["id"].clone();

    let changed = ok(
        &app,
        &token,
        UPDATE,
        json!({ "id": id, "i": { "capacity": 12, "description": null, "managerId": null, "status": "PAUSED" } }),
        "updateDisabilityProgram",
    )
    .await;
    assert_eq!(changed["capacity"], 12);
    assert_eq!(changed["status"], "PAUSED");
    assert!(changed["description"].is_null(), "null clears: {changed}");
    assert!(changed["manager"].is_null(), "null clears: {changed}");
    assert_eq!(changed["name"], "Occupational group", "absent stays");
    assert_eq!(changed["therapists"].as_array().map(Vec::len), Some(1));

    for field in ["name", "capacity", "status", "therapistIds", "fee"] {
        let body = app
            .gql(
                Some(&token),
                UPDATE,
                json!({ "id": id, "i": { field: null } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("cannot be cleared"), "{message}");
    }
    // A refused update changes nothing, even the fields before the bad one.
    let body = app
        .gql(
            Some(&token),
            UPDATE,
            json!({ "id": id, "i": { "name": "Renamed", "durationWeeks": 0 } }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "input.durationWeeks",
        "{body}"
    );
    let now = ok(
        &app,
        &token,
        UPDATE,
        json!({ "id": id, "i": {} }),
        "updateDisabilityProgram",
    )
    .await;
    assert_eq!(now["name"], "Occupational group");
}

#[tokio::test]
async fn places_taken_bound_the_capacity_and_enrolments_prevent_deletion() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.user_id("therapist").await;
    let program = create_program(&app, &admin, "Hydrotherapy", 3).await;
    active_enrollment(&app, &admin, &program, &therapist, "Salma", "1000000001").await;
    active_enrollment(&app, &admin, &program, &therapist, "Omar", "1000000002").await;

    let body = app
        .gql(
            Some(&admin),
            UPDATE,
            json!({ "id": program, "i": { "capacity": 1 } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let kept = ok(
        &app,
        &admin,
        UPDATE,
        json!({ "id": program, "i": { "capacity": 2 } }),
        "updateDisabilityProgram",
    )
    .await;
    assert_eq!(kept["capacity"], 2, "down to the places taken is allowed");

    let delete = "mutation($id: ID!) { deleteDisabilityProgram(id: $id) }";
    let body = app
        .gql(Some(&admin), delete, json!({ "id": program }))
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let empty = create_program(&app, &admin, "Empty", 3).await;
    let gone = ok(
        &app,
        &admin,
        delete,
        json!({ "id": empty }),
        "deleteDisabilityProgram",
    )
    .await;
    assert_eq!(gone, json!(empty));
}

#[tokio::test]
async fn the_filter_matches_each_field_it_declares() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let manager = app.user_id("manager").await;
    let therapist = app.user_id("therapist").await;
    let mut first = minimal("Alpha swim");
    first["managerId"] = json!(manager);
    first["description"] = json!("In the pool (warm)");
    let mut second = minimal("Beta talk");
    second["category"] = json!("BEHAVIORAL");
    second["status"] = json!("ARCHIVED");
    second["therapistIds"] = json!([therapist]);
    for input in [first, second] {
        ok(
            &app,
            &token,
            CREATE,
            json!({ "i": input }),
            "createDisabilityProgram",
        )
        .await;
    }
    let names = |body: &Value| -> Vec<String> {
        let edges = body["data"]["disabilityPrograms"]["edges"]
            .as_array()
            .cloned();
        let mut names: Vec<String> = edges
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["node"]["name"].as_str().map(str::to_string))
            .filter(|n| n == "Alpha swim" || n == "Beta talk")
            .collect();
        names.sort();
        names
    };
    let cases = [
        (json!({ "category": ["BEHAVIORAL"] }), vec!["Beta talk"]),
        (json!({ "status": ["ACTIVE"] }), vec!["Alpha swim"]),
        (json!({ "managerId": manager }), vec!["Alpha swim"]),
        (json!({ "therapistId": therapist }), vec!["Beta talk"]),
        (json!({ "search": "pool (WARM" }), vec!["Alpha swim"]),
        (
            json!({ "search": "talk", "status": ["ARCHIVED", "PAUSED"] }),
            vec!["Beta talk"],
        ),
    ];
    for (filter, expected) in cases {
        let body = app.gql(Some(&token), LIST, json!({ "f": filter })).await;
        assert!(body["errors"].is_null(), "{filter}: {body}");
        assert_eq!(names(&body), expected, "{filter}");
    }
    let body = app
        .gql(
            Some(&token),
            LIST,
            json!({ "f": { "managerId": "not an id" } }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "filter.managerId",
        "{body}"
    );
}
