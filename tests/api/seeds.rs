//! The clinic seed: coherent (seats match open enrolments, bookings never
//! overlap, the development therapist runs some enrolments but not all),
//! and loading it again adds nothing.

use std::collections::HashMap;

use bson::{Document, doc};
use futures::TryStreamExt;
use serde_json::json;

use crate::support::helpers::spawn_app;

async fn all(app: &crate::support::helpers::TestApp, collection: &str) -> Vec<Document> {
    app.state
        .db
        .collection(collection)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_clinic_seed_is_coherent_and_loads_once() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let settings = &app.state.settings.seed;
    let first = alawael::seed::clinic::load(db, &app.state.vault, settings, 2, |_| {})
        .await
        .unwrap();
    let added: HashMap<&str, u64> = first.collections.iter().map(|(c, a, _)| (*c, *a)).collect();
    assert_eq!(added["disability_programs"], 16);
    assert_eq!(added["beneficiaries"], 128);
    let second = alawael::seed::clinic::load(db, &app.state.vault, settings, 2, |_| {})
        .await
        .unwrap();
    assert!(
        second.collections.iter().all(|(_, added, _)| *added == 0),
        "a second load adds nothing: {:?}",
        second.collections
    );

    // Every open enrolment holds exactly one seat, within its programme's capacity.
    let enrolments = all(&app, "enrollments").await;
    let open: Vec<&Document> = enrolments
        .iter()
        .filter(|e| matches!(e.get_str("status"), Ok("PENDING" | "ACTIVE")))
        .collect();
    let seats = all(&app, "enrollment_seats").await;
    assert_eq!(seats.len(), open.len());
    for program in all(&app, "disability_programs").await {
        let id = program.get_object_id("_id").unwrap();
        let held = open
            .iter()
            .filter(|e| e.get_object_id("programId").unwrap() == id)
            .count();
        assert!(held as i32 <= program.get_i32("capacity").unwrap());
    }

    // No two SCHEDULED bookings of one resource overlap.
    let bookings = all(&app, "schedules").await;
    for (i, a) in bookings.iter().enumerate() {
        for b in &bookings[i + 1..] {
            if a.get_str("resourceId").unwrap() != b.get_str("resourceId").unwrap() {
                continue;
            }
            let (a0, a1) = (
                a.get_datetime("startDate").unwrap(),
                a.get_datetime("endDate").unwrap(),
            );
            let (b0, b1) = (
                b.get_datetime("startDate").unwrap(),
                b.get_datetime("endDate").unwrap(),
            );
            assert!(a1 <= b0 || b1 <= a0, "overlapping seed bookings: {a} {b}");
        }
    }

    // The development therapist sees some beneficiaries, not all, and the
    // seeded slots keep a new overlapping booking out.
    let therapist = app.login("therapist").await;
    let admin = app.login("admin").await;
    let count = |body: serde_json::Value| {
        body["data"]["beneficiaries"]["totalCount"]
            .as_u64()
            .unwrap()
    };
    let query = "{ beneficiaries { totalCount } }";
    let theirs = count(app.gql(Some(&therapist), query, json!({})).await);
    let everyone = count(app.gql(Some(&admin), query, json!({})).await);
    assert!(theirs > 0 && theirs < everyone, "{theirs} of {everyone}");
    let booked = &bookings[0];
    let clash = app
        .gql(
            Some(&admin),
            "mutation($i: CreateScheduleInput!) { createSchedule(input: $i) { id } }",
            json!({ "i": {
                "title": "Clash", "resourceType": booked.get_str("resourceType").unwrap(),
                "resourceId": booked.get_str("resourceId").unwrap(),
                "startDate": booked.get_datetime("startDate").unwrap().try_to_rfc3339_string().unwrap(),
                "endDate": booked.get_datetime("endDate").unwrap().try_to_rfc3339_string().unwrap(),
            } }),
        )
        .await;
    assert_eq!(
        crate::support::helpers::error_code(&clash),
        "CONFLICT",
        "{clash}"
    );
}
