//! The clinic's business rules through the API: bookings never overlap and
//! sit on the five-minute grid, programmes never take more than their
//! capacity, enrolments move only along their lifecycle, sessions are
//! recorded only where they belong — also when requests race — and a deep
//! query costs a fixed number of database commands however many rows it
//! returns. A refused mutation leaves nothing behind.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::support::clinic::{
    RECORD, SET_STATUS, active_enrollment, create_beneficiary, create_program, enroll, ok,
    record_session,
};
use crate::support::helpers::{PASSWORD, TestApp, error_code, spawn_app};

const BOOK: &str = "mutation($i: CreateScheduleInput!) { createSchedule(input: $i) { id status resourceId startDate endDate } }";
const CANCEL: &str = "mutation($id: ID!) { cancelSchedule(id: $id) { id status } }";
const ENROLLMENT: &str = "query($id: ID!) { enrollment(id: $id) { id status } }";

/// Sends `createSchedule` for a ROOM; returns the raw body.
async fn book(app: &TestApp, token: &str, room: &str, start: &str, end: &str) -> Value {
    app.gql(
        Some(token),
        BOOK,
        json!({ "i": { "title": "Group session", "resourceType": "ROOM", "resourceId": room,
                       "startDate": start, "endDate": end } }),
    )
    .await
}

/// The id of a booking that must succeed.
fn booked(body: &Value) -> String {
    assert!(body["errors"].is_null(), "createSchedule failed: {body}");
    body["data"]["createSchedule"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// How many bookings of `room` exist, and how many of them are SCHEDULED.
async fn bookings_of(app: &TestApp, admin: &str, room: &str) -> (u64, u64) {
    let count = |status: Option<&str>| {
        let filter = match status {
            Some(s) => json!({ "resourceId": room, "status": [s] }),
            None => json!({ "resourceId": room }),
        };
        async move {
            ok(
                app,
                admin,
                "query($f: ScheduleFilter) { schedules(filter: $f) { totalCount } }",
                json!({ "f": filter }),
                "schedules",
            )
            .await["totalCount"]
                .as_u64()
                .expect("totalCount")
        }
    };
    (count(None).await, count(Some("SCHEDULED")).await)
}

/// `HH:MM` on 2 March 2026, UTC, `minutes` after 10:00.
fn at(minutes: i64) -> String {
    let total = 10 * 60 + minutes;
    format!("2026-03-02T{:02}:{:02}:00Z", total / 60, total % 60)
}

/// The codes of a batch of responses: `"OK"` for a success.
fn outcomes(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| {
            if b["errors"].is_null() {
                "OK".to_string()
            } else {
                error_code(b).to_string()
            }
        })
        .collect()
}

fn tally(codes: &[String], code: &str) -> usize {
    codes.iter().filter(|c| c.as_str() == code).count()
}

/// An enrolment's current status as the API reports it.
async fn status_of(app: &TestApp, admin: &str, enrollment: &str) -> String {
    ok(
        app,
        admin,
        ENROLLMENT,
        json!({ "id": enrollment }),
        "enrollment",
    )
    .await["status"]
        .as_str()
        .expect("status")
        .to_string()
}

/// Moves an enrolment; returns the raw body.
async fn set_status(app: &TestApp, admin: &str, enrollment: &str, status: &str) -> Value {
    app.gql(
        Some(admin),
        SET_STATUS,
        json!({ "id": enrollment, "s": status }),
    )
    .await
}

/// The id of an enrolment that must succeed.
fn enrolled(body: &Value) -> String {
    assert!(body["errors"].is_null(), "enrollBeneficiary failed: {body}");
    body["data"]["enrollBeneficiary"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// How many enrolments a programme has (any status).
async fn enrollments_of(app: &TestApp, admin: &str, program: &str) -> u64 {
    ok(
        app,
        admin,
        "query($p: ID!) { enrollments(filter: { programId: $p }) { totalCount } }",
        json!({ "p": program }),
        "enrollments",
    )
    .await["totalCount"]
        .as_u64()
        .expect("totalCount")
}

/// How many sessions an enrolment has.
async fn sessions_of(app: &TestApp, admin: &str, enrollment: &str) -> u64 {
    ok(
        app,
        admin,
        "query($e: ID!) { therapySessions(filter: { enrollmentId: $e }) { totalCount } }",
        json!({ "e": enrollment }),
        "therapySessions",
    )
    .await["totalCount"]
        .as_u64()
        .expect("totalCount")
}

/// A new active THERAPIST account, created by ADMIN; returns (id, token).
async fn second_therapist(app: &TestApp, admin: &str, who: &str) -> (String, String) {
    let user = ok(
        app,
        admin,
        "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
        json!({ "i": { "email": format!("{who}@alawael.local"), "name": "Huda Al-Qahtani",
                       "role": "THERAPIST", "password": PASSWORD, "department": "Physio" } }),
        "createUser",
    )
    .await;
    let id = user["id"].as_str().expect("id").to_string();
    (id, app.login(who).await)
}

// ---------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ten_simultaneous_overlapping_bookings_yield_exactly_one() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.login("therapist").await;
    // Every span is one hour, shifted by 0 to 25 minutes from 10:00: some are
    // identical, all of them cover 10:25–11:00.
    let spans: Vec<(String, String)> = (0..10)
        .map(|i| {
            let shift = (i % 6) * 5;
            (at(shift), at(shift + 60))
        })
        .collect();
    for round in 0..3 {
        let room = format!("RACE-{round}");
        let attempts = spans.iter().enumerate().map(|(i, (start, end))| {
            // Bookers of both roles, each request on its own.
            let token = if i % 2 == 0 { &admin } else { &therapist };
            book(&app, token, &room, start, end)
        });
        let bodies = join_all(attempts).await;
        let codes = outcomes(&bodies);
        assert_eq!(tally(&codes, "OK"), 1, "round {round}: {codes:?}");
        assert_eq!(tally(&codes, "CONFLICT"), 9, "round {round}: {codes:?}");
        let winner_index = codes.iter().position(|c| c == "OK").unwrap();
        let winner = booked(&bodies[winner_index]);
        assert_eq!(
            bookings_of(&app, &admin, &room).await,
            (1, 1),
            "round {round}: only the winner is stored"
        );

        // Cancelling the winner frees its time: the same span books again.
        let cancelled = ok(
            &app,
            &admin,
            CANCEL,
            json!({ "id": winner }),
            "cancelSchedule",
        )
        .await;
        assert_eq!(cancelled["status"], "CANCELLED");
        let (start, end) = &spans[winner_index];
        let again = booked(&book(&app, &therapist, &room, start, end).await);
        // No loser left a slot behind: once that one is cancelled too, the
        // union of all ten spans (10:00–11:25) is free.
        ok(
            &app,
            &admin,
            CANCEL,
            json!({ "id": again }),
            "cancelSchedule",
        )
        .await;
        booked(&book(&app, &admin, &room, &at(0), &at(85)).await);
        assert_eq!(bookings_of(&app, &admin, &room).await, (3, 1));
    }
}

#[tokio::test]
async fn ten_simultaneous_enrolments_into_three_free_places_yield_exactly_three() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.user_id("therapist").await;
    let mut last_round = None;
    for round in 0..3 {
        let program = create_program(&app, &admin, &format!("Hydrotherapy {round}"), 3).await;
        let mut people = Vec::new();
        for i in 0..10 {
            people.push(
                create_beneficiary(
                    &app,
                    &admin,
                    &format!("Child {round}-{i}"),
                    &format!("R{round}N{i:04}"),
                )
                .await,
            );
        }
        let bodies = join_all(
            people
                .iter()
                .map(|b| enroll(&app, &admin, b, &program, &therapist)),
        )
        .await;
        let codes = outcomes(&bodies);
        assert_eq!(tally(&codes, "OK"), 3, "round {round}: {codes:?}");
        assert_eq!(tally(&codes, "CONFLICT"), 7, "round {round}: {codes:?}");
        assert_eq!(enrollments_of(&app, &admin, &program).await, 3);
        let winners: Vec<String> = bodies
            .iter()
            .filter(|b| b["errors"].is_null())
            .map(enrolled)
            .collect();
        let losers: Vec<String> = people
            .iter()
            .zip(&codes)
            .filter(|(_, c)| c.as_str() == "CONFLICT")
            .map(|(b, _)| b.clone())
            .collect();
        last_round = Some((program, winners, losers));
    }

    // Withdrawing one frees exactly one place.
    let (program, winners, losers) = last_round.unwrap();
    let withdrawn = ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": winners[0], "s": "WITHDRAWN" }),
        "setEnrollmentStatus",
    )
    .await;
    assert_eq!(withdrawn["status"], "WITHDRAWN");
    enrolled(&enroll(&app, &admin, &losers[0], &program, &therapist).await);
    let full = enroll(&app, &admin, &losers[1], &program, &therapist).await;
    assert_eq!(error_code(&full), "CONFLICT", "{full}");
    // Three holding places plus the withdrawn one.
    assert_eq!(enrollments_of(&app, &admin, &program).await, 4);
}

// ---------------------------------------------------------------------------
// Bookings
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_booking_off_the_grid_backwards_or_over_twelve_hours_is_bad_user_input_and_writes_nothing()
 {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let cases = [
        ("ends before it starts", at(60), at(0)),
        ("ends when it starts", at(0), at(0)),
        ("starts off the grid", at(3), at(60)),
        ("ends off the grid", at(0), at(62)),
        (
            "starts on a seconds value",
            "2026-03-02T10:00:30Z".to_string(),
            at(60),
        ),
        (
            "ends on a fraction of a second",
            at(0),
            "2026-03-02T11:00:00.500Z".to_string(),
        ),
        (
            "lasts twelve hours and five minutes",
            at(0),
            "2026-03-02T22:05:00Z".to_string(),
        ),
        ("lasts two days", at(0), "2026-03-04T10:00:00Z".to_string()),
    ];
    for (name, start, end) in &cases {
        let body = book(&app, &admin, "R-101", start, end).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
        assert!(body["data"].is_null(), "{name}: {body}");
    }
    assert_eq!(bookings_of(&app, &admin, "R-101").await, (0, 0));
    let audited = ok(
        &app,
        &admin,
        "{ auditLog(filter: { action: \"schedule.create\" }) { totalCount } }",
        json!({}),
        "auditLog",
    )
    .await;
    assert_eq!(audited["totalCount"], 0, "nothing was audited either");

    // Exactly twelve hours is allowed, and nothing the refusals did holds its time.
    let long = book(&app, &admin, "R-101", &at(0), "2026-03-02T22:00:00Z").await;
    booked(&long);
    assert_eq!(
        long["data"]["createSchedule"]["endDate"],
        "2026-03-02T22:00:00.000Z"
    );
    assert_eq!(bookings_of(&app, &admin, "R-101").await, (1, 1));
}

#[tokio::test]
async fn back_to_back_bookings_fit_and_any_overlap_of_one_room_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.login("therapist").await;
    booked(&book(&app, &admin, "R-101", &at(0), &at(60)).await);
    booked(&book(&app, &therapist, "R-101", &at(60), &at(120)).await);
    booked(&book(&app, &admin, "R-101", &at(-60), &at(0)).await);

    for (name, start, end) in [
        ("the same span", at(0), at(60)),
        ("five minutes across the join", at(55), at(65)),
        ("the last five minutes", at(115), at(125)),
        ("inside one booking", at(10), at(20)),
        ("around all three", at(-90), at(150)),
        ("ends five minutes into it", at(-65), at(-55)),
    ] {
        let body = book(&app, &therapist, "R-101", &start, &end).await;
        assert_eq!(error_code(&body), "CONFLICT", "{name}: {body}");
    }
    // A room code is matched in any case.
    let lower = book(&app, &admin, "r-101", &at(30), &at(40)).await;
    assert_eq!(error_code(&lower), "CONFLICT", "{lower}");
    assert_eq!(bookings_of(&app, &admin, "R-101").await, (3, 3));

    // Another room at the same time is free, and so is the time next to the bookings.
    booked(&book(&app, &therapist, "R-102", &at(0), &at(60)).await);
    booked(&book(&app, &therapist, "R-101", &at(120), &at(125)).await);
    assert_eq!(bookings_of(&app, &admin, "R-101").await, (4, 4));
    assert_eq!(bookings_of(&app, &admin, "R-102").await, (1, 1));
}

#[tokio::test]
async fn a_cancelled_booking_does_not_block_its_time() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.login("therapist").await;
    let first = booked(&book(&app, &therapist, "GYM-1", &at(0), &at(90)).await);
    let blocked = book(&app, &admin, "GYM-1", &at(30), &at(60)).await;
    assert_eq!(error_code(&blocked), "CONFLICT", "{blocked}");

    // The maker cancels; the time is free for any span within it.
    let cancelled = ok(
        &app,
        &therapist,
        CANCEL,
        json!({ "id": first }),
        "cancelSchedule",
    )
    .await;
    assert_eq!(cancelled["status"], "CANCELLED");
    let second = booked(&book(&app, &admin, "GYM-1", &at(30), &at(60)).await);
    booked(&book(&app, &admin, "GYM-1", &at(0), &at(30)).await);
    // A cancelled booking cannot be cancelled again, and the live one still blocks.
    let twice = app.gql(Some(&admin), CANCEL, json!({ "id": first })).await;
    assert_eq!(error_code(&twice), "CONFLICT", "{twice}");
    let overlap = book(&app, &therapist, "GYM-1", &at(55), &at(90)).await;
    assert_eq!(error_code(&overlap), "CONFLICT", "{overlap}");
    assert_eq!(bookings_of(&app, &admin, "GYM-1").await, (3, 2));
    let listed = ok(
        &app,
        &admin,
        "query($id: ID!) { schedule(id: $id) { status } }",
        json!({ "id": second }),
        "schedule",
    )
    .await;
    assert_eq!(listed["status"], "SCHEDULED");
}

// ---------------------------------------------------------------------------
// Enrolments
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_second_open_enrolment_of_the_same_pair_is_a_conflict_until_the_first_is_withdrawn() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.user_id("therapist").await;
    let program = create_program(&app, &admin, "Speech therapy", 2).await;
    let child = create_beneficiary(&app, &admin, "Lama Al-Harbi", "NID10001").await;

    let first = enrolled(&enroll(&app, &admin, &child, &program, &therapist).await);
    let pending_again = enroll(&app, &admin, &child, &program, &therapist).await;
    assert_eq!(error_code(&pending_again), "CONFLICT", "{pending_again}");
    ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": first, "s": "ACTIVE" }),
        "setEnrollmentStatus",
    )
    .await;
    let active_again = enroll(&app, &admin, &child, &program, &therapist).await;
    assert_eq!(error_code(&active_again), "CONFLICT", "{active_again}");
    assert_eq!(enrollments_of(&app, &admin, &program).await, 1);

    // The refused attempts held no place: a second child still fits.
    let other = create_beneficiary(&app, &admin, "Omar Al-Shehri", "NID10002").await;
    let second = enrolled(&enroll(&app, &admin, &other, &program, &therapist).await);
    let third = create_beneficiary(&app, &admin, "Noura Al-Dosari", "NID10003").await;
    let full = enroll(&app, &admin, &third, &program, &therapist).await;
    assert_eq!(error_code(&full), "CONFLICT", "{full}");

    // After WITHDRAWN the same pair enrols again, in the place it freed.
    let withdrawn = ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": first, "s": "WITHDRAWN" }),
        "setEnrollmentStatus",
    )
    .await;
    assert_eq!(withdrawn["status"], "WITHDRAWN");
    let again = enroll(&app, &admin, &child, &program, &therapist).await;
    let again_id = enrolled(&again);
    assert_ne!(again_id, first);
    assert_eq!(again["data"]["enrollBeneficiary"]["status"], "PENDING");
    assert_eq!(status_of(&app, &admin, &first).await, "WITHDRAWN");
    assert_eq!(status_of(&app, &admin, &second).await, "PENDING");
    assert_eq!(enrollments_of(&app, &admin, &program).await, 3);
}

#[tokio::test]
async fn completing_or_withdrawing_frees_the_place() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.user_id("therapist").await;
    let program = create_program(&app, &admin, "Occupational therapy", 1).await;
    let (_, first) = active_enrollment(
        &app,
        &admin,
        &program,
        &therapist,
        "Reem Al-Otaibi",
        "NID20001",
    )
    .await;
    let waiting = create_beneficiary(&app, &admin, "Faisal Al-Zahrani", "NID20002").await;
    let full = enroll(&app, &admin, &waiting, &program, &therapist).await;
    assert_eq!(error_code(&full), "CONFLICT", "{full}");

    ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": first, "s": "COMPLETED" }),
        "setEnrollmentStatus",
    )
    .await;
    let second = enrolled(&enroll(&app, &admin, &waiting, &program, &therapist).await);
    let third_child = create_beneficiary(&app, &admin, "Sultan Al-Ghamdi", "NID20003").await;
    let full = enroll(&app, &admin, &third_child, &program, &therapist).await;
    assert_eq!(error_code(&full), "CONFLICT", "{full}");

    // PENDING → WITHDRAWN frees it too.
    ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": second, "s": "WITHDRAWN" }),
        "setEnrollmentStatus",
    )
    .await;
    enrolled(&enroll(&app, &admin, &third_child, &program, &therapist).await);
}

#[tokio::test]
async fn moves_outside_the_enrolment_lifecycle_are_conflicts_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.user_id("therapist").await;
    let program = create_program(&app, &admin, "Behavioural therapy", 10).await;

    let pending_child = create_beneficiary(&app, &admin, "Yara Al-Subaie", "NID30001").await;
    let pending = enrolled(&enroll(&app, &admin, &pending_child, &program, &therapist).await);
    let (_, completed) = active_enrollment(
        &app,
        &admin,
        &program,
        &therapist,
        "Ziad Al-Anazi",
        "NID30002",
    )
    .await;
    ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": completed, "s": "COMPLETED" }),
        "setEnrollmentStatus",
    )
    .await;
    let (_, withdrawn) = active_enrollment(
        &app,
        &admin,
        &program,
        &therapist,
        "Hind Al-Malki",
        "NID30003",
    )
    .await;
    ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": withdrawn, "s": "WITHDRAWN" }),
        "setEnrollmentStatus",
    )
    .await;
    let (_, active) = active_enrollment(
        &app,
        &admin,
        &program,
        &therapist,
        "Majed Al-Juhani",
        "NID30004",
    )
    .await;

    let cases = [
        (&pending, "PENDING", "COMPLETED"),
        (&pending, "PENDING", "PENDING"),
        (&active, "ACTIVE", "PENDING"),
        (&active, "ACTIVE", "ACTIVE"),
        (&completed, "COMPLETED", "ACTIVE"),
        (&completed, "COMPLETED", "WITHDRAWN"),
        (&completed, "COMPLETED", "PENDING"),
        (&withdrawn, "WITHDRAWN", "ACTIVE"),
        (&withdrawn, "WITHDRAWN", "COMPLETED"),
        (&withdrawn, "WITHDRAWN", "PENDING"),
    ];
    for (id, from, to) in cases {
        let body = set_status(&app, &admin, id, to).await;
        assert_eq!(error_code(&body), "CONFLICT", "{from} → {to}: {body}");
        assert_eq!(status_of(&app, &admin, id).await, from, "{from} → {to}");
    }
    // The refused moves did not spoil the allowed ones.
    let moved = set_status(&app, &admin, &pending, "ACTIVE").await;
    assert_eq!(
        moved["data"]["setEnrollmentStatus"]["status"], "ACTIVE",
        "{moved}"
    );
    let moved = set_status(&app, &admin, &active, "COMPLETED").await;
    assert_eq!(
        moved["data"]["setEnrollmentStatus"]["status"], "COMPLETED",
        "{moved}"
    );
}

#[tokio::test]
async fn two_simultaneous_status_changes_of_one_active_enrolment_let_exactly_one_win() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let therapist = app.user_id("therapist").await;
    let rounds = 4;
    let program = create_program(&app, &admin, "Vocational training", rounds).await;
    for round in 0..rounds {
        let (_, enrollment) = active_enrollment(
            &app,
            &admin,
            &program,
            &therapist,
            &format!("Racer {round}"),
            &format!("RACE{round:04}"),
        )
        .await;
        let bodies = join_all([
            set_status(&app, &admin, &enrollment, "COMPLETED"),
            set_status(&app, &manager, &enrollment, "WITHDRAWN"),
        ])
        .await;
        let codes = outcomes(&bodies);
        assert_eq!(tally(&codes, "OK"), 1, "round {round}: {codes:?}");
        assert_eq!(tally(&codes, "CONFLICT"), 1, "round {round}: {codes:?}");
        let winner = &bodies[codes.iter().position(|c| c == "OK").unwrap()];
        let status = winner["data"]["setEnrollmentStatus"]["status"]
            .as_str()
            .unwrap();
        assert_eq!(
            status_of(&app, &admin, &enrollment).await,
            status,
            "round {round}"
        );
    }
    // Each race freed its place exactly once: all places are free again.
    let mut placed = 0;
    for i in 0..=rounds {
        let child =
            create_beneficiary(&app, &admin, &format!("After {i}"), &format!("AFTR{i:04}")).await;
        let body = enroll(&app, &admin, &child, &program, &therapist).await;
        if body["errors"].is_null() {
            placed += 1;
        } else {
            assert_eq!(error_code(&body), "CONFLICT", "{body}");
        }
    }
    assert_eq!(placed, rounds, "the programme holds exactly its capacity");
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_session_is_recorded_only_on_an_active_enrolment_by_its_therapist_or_an_admin() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let user = app.login("user").await;
    let therapist = app.login("therapist").await;
    let therapist_id = app.user_id("therapist").await;
    let (_, other_token) = second_therapist(&app, &admin, "therapist2").await;
    let program = create_program(&app, &admin, "Physiotherapy", 10).await;

    // A PENDING enrolment takes no sessions, from anyone.
    let waiting = create_beneficiary(&app, &admin, "Dana Al-Shammari", "NID40001").await;
    let pending = enrolled(&enroll(&app, &admin, &waiting, &program, &therapist_id).await);
    for token in [&admin, &therapist] {
        let body = record_session(&app, token, &pending, "too early").await;
        assert_eq!(error_code(&body), "CONFLICT", "{body}");
    }
    assert_eq!(sessions_of(&app, &admin, &pending).await, 0);

    let (_, active) = active_enrollment(
        &app,
        &admin,
        &program,
        &therapist_id,
        "Salem Al-Mutlaq",
        "NID40002",
    )
    .await;
    // Another therapist may not record on it. The enrolment is outside their
    // scope, so it answers as a row that does not exist (docs/errors.md:
    // "a row the caller may not see ... NOT_FOUND, so existence never leaks").
    let body = record_session(&app, &other_token, &active, "not mine").await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // A MANAGER sees the enrolment but may not write sessions; USER neither.
    for token in [&manager, &user] {
        let body = record_session(&app, token, &active, "not mine").await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }

    // Out-of-range values are BAD_USER_INPUT, also for its own therapist.
    let session = |duration: i64, score: Option<i64>| {
        json!({ "i": { "enrollmentId": active, "startedAt": "2026-01-05T09:00:00Z",
                       "durationMinutes": duration, "attendance": "ATTENDED",
                       "notes": "range check", "progressScore": score } })
    };
    for (name, vars, field) in [
        ("score 101", session(45, Some(101)), "input.progressScore"),
        ("score -1", session(45, Some(-1)), "input.progressScore"),
        ("0 minutes", session(0, Some(50)), "input.durationMinutes"),
        (
            "481 minutes",
            session(481, Some(50)),
            "input.durationMinutes",
        ),
    ] {
        let body = app.gql(Some(&therapist), RECORD, vars).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{name}");
    }
    assert_eq!(
        sessions_of(&app, &admin, &active).await,
        0,
        "nothing was written"
    );

    // Its therapist and ADMIN succeed, at the edges of the ranges too.
    let by_therapist = record_session(&app, &therapist, &active, "walked ten steps").await;
    assert!(by_therapist["errors"].is_null(), "{by_therapist}");
    let by_admin = record_session(&app, &admin, &active, "recorded by the office").await;
    assert!(by_admin["errors"].is_null(), "{by_admin}");
    for vars in [
        session(1, Some(0)),
        session(480, Some(100)),
        session(60, None),
    ] {
        let body = app.gql(Some(&therapist), RECORD, vars).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    assert_eq!(sessions_of(&app, &admin, &active).await, 5);
    // Recorded by ADMIN, the session still belongs to the enrolment's therapist.
    let by_admin_id = by_admin["data"]["recordTherapySession"]["id"].clone();
    let read = ok(
        &app,
        &therapist,
        "query($id: ID!) { therapySession(id: $id) { therapist { id } enrollment { id } } }",
        json!({ "id": by_admin_id }),
        "therapySession",
    )
    .await;
    assert_eq!(read["therapist"]["id"], therapist_id.as_str());
    assert_eq!(read["enrollment"]["id"], active.as_str());

    // Once the enrolment is COMPLETED it takes no more sessions.
    ok(
        &app,
        &admin,
        SET_STATUS,
        json!({ "id": active, "s": "COMPLETED" }),
        "setEnrollmentStatus",
    )
    .await;
    let late = record_session(&app, &therapist, &active, "too late").await;
    assert_eq!(error_code(&late), "CONFLICT", "{late}");
    assert_eq!(sessions_of(&app, &admin, &active).await, 5);
}

// ---------------------------------------------------------------------------
// Cost of a deep query
// ---------------------------------------------------------------------------

const DEEP: &str = "{ disabilityPrograms(first: 10) { nodes { id enrollments(first: 10) { nodes { id beneficiary { id fullName sessions(first: 5) { nodes { id therapist { id name } } } } } } } } }";

/// Adds `programs` programmes with `per_program` ACTIVE enrolments each and
/// `sessions` sessions per enrolment, alternating two therapists.
async fn build_clinic(
    app: &TestApp,
    admin: &str,
    therapists: &[String],
    tag: &str,
    programs: usize,
    per_program: usize,
    sessions: usize,
) {
    for p in 0..programs {
        let program = create_program(app, admin, &format!("{tag} programme {p}"), 20).await;
        for e in 0..per_program {
            let therapist = &therapists[(p + e) % therapists.len()];
            let (_, enrollment) = active_enrollment(
                app,
                admin,
                &program,
                therapist,
                &format!("{tag} child {p}-{e}"),
                &format!("{tag}{p:02}{e:02}"),
            )
            .await;
            for s in 0..sessions {
                let body = record_session(app, admin, &enrollment, &format!("session {s}")).await;
                assert!(body["errors"].is_null(), "{body}");
            }
        }
    }
}

/// Runs the deep query and returns the commands it cost and the body.
async fn deep_query_cost(app: &TestApp, token: &str) -> (u64, Value) {
    let before = app.db_commands();
    let body = app.gql(Some(token), DEEP, json!({})).await;
    let used = app.db_commands() - before;
    assert!(body["errors"].is_null(), "{body}");
    (used, body)
}

/// (programmes, enrolments, sessions) in the deep query's answer.
fn shape(body: &Value) -> (usize, usize, usize) {
    let programs = body["data"]["disabilityPrograms"]["nodes"]
        .as_array()
        .unwrap();
    let mut enrollments = 0;
    let mut sessions = 0;
    for p in programs {
        for e in p["enrollments"]["nodes"].as_array().unwrap() {
            enrollments += 1;
            let s = e["beneficiary"]["sessions"]["nodes"].as_array().unwrap();
            assert!(s.iter().all(|s| s["therapist"]["name"].is_string()));
            sessions += s.len();
        }
    }
    (programs.len(), enrollments, sessions)
}

#[tokio::test]
async fn the_deep_query_costs_a_fixed_number_of_database_commands() {
    let app =
        crate::support::helpers::spawn_app_with(|s| s.server.background_workers = false).await;
    let admin = app.login("admin").await;
    let (second, _) = second_therapist(&app, &admin, "therapist2").await;
    let therapists = vec![app.user_id("therapist").await, second];
    build_clinic(&app, &admin, &therapists, "A", 3, 3, 2).await;
    // Warm-up: the first request of a connection may carry driver set-up.
    app.gql(Some(&admin), DEEP, json!({})).await;

    // The commands, whatever the number of rows (the caller's account comes
    // from the account cache):
    //   1. find one page of programmes
    //   2. find the keys (id, programmeId, sort key) of every programme's enrolments
    //   3. find the selected enrolments by id
    //   4. find the beneficiaries of those enrolments by id
    //   5. find the keys of every beneficiary's sessions
    //   6. find the selected sessions by id
    //   7. find the therapists of those sessions by id
    const EXPECTED: u64 = 7;
    let (used, body) = deep_query_cost(&app, &admin).await;
    assert_eq!(
        used, EXPECTED,
        "commands for 3 programmes × 3 enrolments × 2 sessions"
    );
    assert_eq!(shape(&body), (3, 9, 18));

    // More rows at every level: the same number of commands.
    build_clinic(&app, &admin, &therapists, "B", 4, 4, 4).await;
    for run in 0..5 {
        let (used, body) = deep_query_cost(&app, &admin).await;
        assert_eq!(
            used, EXPECTED,
            "run {run}: 7 programmes × up to 4 × up to 4"
        );
        // 7 programmes; 3×3 + 4×4 enrolments; 9×2 + 16×4 sessions.
        assert_eq!(shape(&body), (7, 25, 82), "run {run}");
    }

    // One beneficiary with many sessions: still one page of five of them, and
    // still the same commands. The sessions of the beneficiaries on the page
    // now number 107, more than the first batch of a `find` (101 rows): the
    // keys query of step 6 must not need a `getMore` for them.
    build_clinic(&app, &admin, &therapists, "C", 1, 1, 25).await;
    for run in 0..5 {
        let (used, body) = deep_query_cost(&app, &admin).await;
        assert_eq!(shape(&body), (8, 26, 87), "run {run}");
        assert_eq!(
            used, EXPECTED,
            "run {run}: 8 programmes, one beneficiary with 25 sessions"
        );
    }
}

#[tokio::test]
async fn a_nested_list_over_many_parents_returns_every_row_it_counts() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist = app.user_id("therapist").await;
    let program = create_program(&app, &admin, "Intensive programme", 5).await;
    // Two beneficiaries with 51 sessions each: one level of the query selects
    // 102 sessions, loaded in one batch.
    for (name, national_id) in [("Busy One", "BUSY0001"), ("Busy Two", "BUSY0002")] {
        let (_, enrollment) =
            active_enrollment(&app, &admin, &program, &therapist, name, national_id).await;
        for s in 0..51 {
            let body = record_session(&app, &admin, &enrollment, &format!("session {s}")).await;
            assert!(body["errors"].is_null(), "{body}");
        }
    }
    let body = ok(
        &app,
        &admin,
        "{ beneficiaries(first: 10) { nodes { fullName sessions(first: 100) { totalCount pageInfo { hasNextPage } nodes { id } } } } }",
        json!({}),
        "beneficiaries",
    )
    .await;
    for beneficiary in body["nodes"].as_array().unwrap() {
        let sessions = &beneficiary["sessions"];
        assert_eq!(sessions["totalCount"], 51);
        assert_eq!(sessions["pageInfo"]["hasNextPage"], false);
        assert_eq!(
            sessions["nodes"].as_array().unwrap().len(),
            51,
            "{}: every session the list counts is in it",
            beneficiary["fullName"]
        );
    }
}
