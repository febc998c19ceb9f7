//! The list contract every model keeps, checked by one routine over a table
//! keyed by `NodeKind` (so every model of `with_models!` has its row): Relay
//! paging both ways in every order, `totalCount`, a filter, tampered
//! cursors, `node`/`nodes` and the singular query, ids of another type —
//! and the row scope of a THERAPIST, which must hold alike in lists,
//! counts, single reads, `node`/`nodes` and nested lists.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use alawael::config::Settings;
use alawael::domain::{GlobalId, NodeKind};
use bson::oid::ObjectId;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::models::report::{finished as finished_report, request as request_report};
use crate::models::webhook::{Receiver, create_webhook};
use crate::support::clinic::{
    ENROLL, RECORD, SET_STATUS, active_enrollment, create_beneficiary, create_program, ok,
    record_session,
};
use crate::support::helpers::{PASSWORD, TestApp, error_code, spawn_app, spawn_app_with};

/// How many rows each model's list gets.
const ROWS: usize = 7;

/// What a seeder made: every row of the list, a filter, and the rows it matches.
struct Seeded {
    ids: Vec<String>,
    filter: Value,
    matching: Vec<String>,
    /// Merged into every filter the check sends, for lists that also hold
    /// rows the app makes by itself (sign-ins, audit entries, events).
    scope: Option<Value>,
    /// The parent row of a child list.
    parent: Option<String>,
}

impl Seeded {
    fn new(ids: Vec<String>, filter: Value, matching: Vec<String>) -> Self {
        Self {
            ids,
            filter,
            matching,
            scope: None,
            parent: None,
        }
    }

    /// Every read of the list keeps to the rows `scope` matches.
    fn within(self, scope: Value) -> Self {
        Self {
            scope: Some(scope),
            ..self
        }
    }

    /// The list is the one of this parent row.
    fn under(self, parent: String) -> Self {
        Self {
            parent: Some(parent),
            ..self
        }
    }
}

/// Creates the rows of one list through the API as ADMIN.
type Seeder = for<'a> fn(&'a TestApp, &'a str) -> BoxFuture<'a, Seeded>;

/// An order field: its SDL name (for a fixed order, the field it sorts
/// by), the node fields that show its sort key, and where the key sits in
/// a node (a JSON pointer).
struct OrderKey {
    field: &'static str,
    select: &'static str,
    pointer: &'static str,
}

const fn key(field: &'static str, select: &'static str, pointer: &'static str) -> OrderKey {
    OrderKey {
        field,
        select,
        pointer,
    }
}

/// Where a model's list is.
enum List {
    /// A field of `Query`.
    Root(&'static str),
    /// A field of one parent row, read through the parent's singular query.
    Child {
        parent: NodeKind,
        field: &'static str,
    },
}

/// How a list is ordered.
enum Orders {
    /// `orderBy: <Type>Order` over each of these `<Type>OrderField`s
    /// (all of them, in the SDL's order), both ways.
    By(&'static [OrderKey]),
    /// No `orderBy`: always by this key, in this direction.
    Fixed(OrderKey, &'static str),
}

/// The argument that narrows a list.
enum Filter {
    /// `filter: <Type>Filter`.
    Typed,
    /// `filter: <input>`, an input of another name.
    Input(&'static str),
    /// A plain argument (name, type) instead of an input.
    Argument(&'static str, &'static str),
}

/// The singular query, `Query.<field>(id: ID!)`.
struct Single {
    field: &'static str,
    /// Whether it answers `null` beside its `NOT_FOUND` (rather than no
    /// `data` at all).
    nullable: bool,
}

const fn single(field: &'static str) -> Option<Single> {
    Some(Single {
        field,
        nullable: false,
    })
}

const fn nullable_single(field: &'static str) -> Option<Single> {
    Some(Single {
        field,
        nullable: true,
    })
}

/// The app as every test runs it.
fn as_tested(_: &mut Settings) {}

/// With the report worker on (the test configuration turns it off).
fn with_report_worker(settings: &mut Settings) {
    settings.reports.worker = true;
}

/// One model as the contract sees it. `kind.name()` is its type and also
/// names its `<Type>Connection`, `<Type>Filter`, `<Type>Order` and
/// `<Type>OrderField` in the SDL.
struct ModelContract {
    kind: NodeKind,
    list: List,
    /// `None`: the type has no singular query (its rows are read through
    /// `node`/`nodes` only), and the SDL test holds it to that.
    single: Option<Single>,
    orders: Orders,
    /// Whether the list pages backwards too (`last`/`before`).
    backward: bool,
    filter: Filter,
    /// What the app needs for these rows to come about.
    settings: fn(&mut Settings),
    seed: Seeder,
}

/// Every model's contract, one per `NodeKind` (the SDL test fails naming a
/// kind without one). Where a row says a check cannot be made, the SDL test
/// holds the type to that shape, so the row must change when the type does.
const CONTRACTS: &[ModelContract] = &[
    // Users: the seeded staff accounts are listed too, so the rows made
    // here carry a marker in their address and every read searches for it.
    ModelContract {
        kind: NodeKind::User,
        list: List::Root("users"),
        single: single("user"),
        orders: Orders::By(&[
            key("NAME", "name", "/name"),
            key("CREATED_AT", "createdAt", "/createdAt"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_users,
    },
    ModelContract {
        kind: NodeKind::Asset,
        list: List::Root("assets"),
        single: single("asset"),
        orders: Orders::By(&[
            key("NAME", "name", "/name"),
            key("CREATED_AT", "createdAt", "/createdAt"),
            key("UPDATED_AT", "updatedAt", "/updatedAt"),
            key("VALUE", "value { amountMinor }", "/value/amountMinor"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_assets,
    },
    ModelContract {
        kind: NodeKind::DisabilityProgram,
        list: List::Root("disabilityPrograms"),
        single: single("disabilityProgram"),
        orders: Orders::By(&[
            key("NAME", "name", "/name"),
            key("CREATED_AT", "createdAt", "/createdAt"),
            key("UPDATED_AT", "updatedAt", "/updatedAt"),
            key("CAPACITY", "capacity", "/capacity"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_programs,
    },
    ModelContract {
        kind: NodeKind::Beneficiary,
        list: List::Root("beneficiaries"),
        single: single("beneficiary"),
        orders: Orders::By(&[
            key("FULL_NAME", "fullName", "/fullName"),
            key("CREATED_AT", "createdAt", "/createdAt"),
            key("UPDATED_AT", "updatedAt", "/updatedAt"),
            key("BIRTH_YEAR", "birthYear", "/birthYear"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_beneficiaries,
    },
    ModelContract {
        kind: NodeKind::Enrollment,
        list: List::Root("enrollments"),
        single: single("enrollment"),
        orders: Orders::By(&[
            key("START_DATE", "startDate", "/startDate"),
            key("CREATED_AT", "createdAt", "/createdAt"),
            key("UPDATED_AT", "updatedAt", "/updatedAt"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_enrollments,
    },
    ModelContract {
        kind: NodeKind::TherapySession,
        list: List::Root("therapySessions"),
        single: single("therapySession"),
        orders: Orders::By(&[
            key("STARTED_AT", "startedAt", "/startedAt"),
            key("CREATED_AT", "createdAt", "/createdAt"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_sessions,
    },
    ModelContract {
        kind: NodeKind::Schedule,
        list: List::Root("schedules"),
        single: single("schedule"),
        orders: Orders::By(&[
            key("START_DATE", "startDate", "/startDate"),
            key("CREATED_AT", "createdAt", "/createdAt"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_schedules,
    },
    // The audit log: every mutation and sign-in writes entries, so every
    // read keeps to entries about assets, which only the seeder changes.
    // Cannot check: paging backwards and a cursor of another ordering (the
    // list takes only `first`/`after` and no `orderBy`: newest first, by
    // chain position); the singular query (there is none: `node`/`nodes`
    // read entries, and ids of another type are checked through `node`).
    ModelContract {
        kind: NodeKind::AuditLogEntry,
        list: List::Root("auditLog"),
        single: None,
        orders: Orders::Fixed(key("seq", "seq", "/seq"), "DESC"),
        backward: false,
        filter: Filter::Input("AuditLogFilter"),
        settings: as_tested,
        seed: seed_audit_entries,
    },
    // Analytics events: domain changes raise events of their own, so every
    // read keeps to two names only the seeder records. Cannot check: a
    // cursor of another ordering (AT is the only order field; a cursor
    // names its field, not its direction); the singular query (there is
    // none: `node`/`nodes` read events, and ids of another type are checked
    // through `node`).
    ModelContract {
        kind: NodeKind::AnalyticsEvent,
        list: List::Root("analyticsEvents"),
        single: None,
        orders: Orders::By(&[key("AT", "at", "/at")]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_analytics_events,
    },
    // Webhooks: filtered by the `active` argument (there is no
    // `WebhookFilter`). Cannot check: order fields or a cursor of another
    // ordering (no `orderBy`: always oldest first).
    ModelContract {
        kind: NodeKind::Webhook,
        list: List::Root("webhooks"),
        single: nullable_single("webhook"),
        orders: Orders::Fixed(key("createdAt", "createdAt", "/createdAt"), "ASC"),
        backward: true,
        filter: Filter::Argument("active", "Boolean"),
        settings: as_tested,
        seed: seed_webhooks,
    },
    // Deliveries: a child list, `Webhook.deliveries`, of one webhook whose
    // deliveries have all SUCCEEDED (nothing the list orders by changes
    // while it is read). Cannot check: the singular query (there is none:
    // `node`/`nodes` read deliveries, and ids of another type are checked
    // through `node`).
    ModelContract {
        kind: NodeKind::WebhookDelivery,
        list: List::Child {
            parent: NodeKind::Webhook,
            field: "deliveries",
        },
        single: None,
        orders: Orders::By(&[
            key("CREATED_AT", "createdAt", "/createdAt"),
            key("NEXT_ATTEMPT_AT", "nextAttemptAt", "/nextAttemptAt"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: as_tested,
        seed: seed_deliveries,
    },
    // Reports: computed by the worker, and read once every one is READY
    // or FAILED (nothing the list orders by changes while it is read).
    ModelContract {
        kind: NodeKind::Report,
        list: List::Root("reports"),
        single: nullable_single("report"),
        orders: Orders::By(&[
            key("CREATED_AT", "createdAt", "/createdAt"),
            key("UPDATED_AT", "updatedAt", "/updatedAt"),
        ]),
        backward: true,
        filter: Filter::Typed,
        settings: with_report_worker,
        seed: seed_reports,
    },
];

/// The contract of one node kind.
fn contract(kind: NodeKind) -> Option<&'static ModelContract> {
    CONTRACTS.iter().find(|c| c.kind == kind)
}

// ---------------------------------------------------------------------------
// Seeders: ROWS rows each, with repeated sort keys so ties are ordered by id,
// and one row changed after creation so UPDATED_AT differs from CREATED_AT.
// ---------------------------------------------------------------------------

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("id").to_string()
}

/// The ids at the positions where `pick` holds.
fn pick(ids: &[String], pick: impl Fn(usize) -> bool) -> Vec<String> {
    ids.iter()
        .enumerate()
        .filter(|(i, _)| pick(*i))
        .map(|(_, id)| id.clone())
        .collect()
}

fn seed_programs<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let names = [
            "Speech", "Hydro", "Autism", "Hydro", "Music", "Speech", "Braille",
        ];
        let capacities = [5, 3, 8, 3, 5, 12, 1];
        let mut ids = Vec::new();
        for i in 0..ROWS {
            let category = if i % 3 == 0 { "SPEECH" } else { "PHYSICAL" };
            let created = ok(
                app,
                admin,
                "mutation($i: CreateDisabilityProgramInput!) { createDisabilityProgram(input: $i) { id } }",
                json!({ "i": { "name": names[i], "category": category, "capacity": capacities[i],
                               "durationWeeks": 8, "fee": { "amountMinor": 1000, "currency": "SAR" } } }),
                "createDisabilityProgram",
            )
            .await;
            ids.push(id_of(&created));
        }
        ok(
            app,
            admin,
            "mutation($id: ID!) { updateDisabilityProgram(id: $id, input: { description: \"Now with a pool\" }) { id } }",
            json!({ "id": ids[1] }),
            "updateDisabilityProgram",
        )
        .await;
        let matching = pick(&ids, |i| i % 3 == 0);
        Seeded::new(ids, json!({ "category": ["SPEECH"] }), matching)
    })
}

fn seed_beneficiaries<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let names = ["Noura", "Amal", "Khalid", "Amal", "Zaid", "Noura", "Lama"];
        let births = [
            "2015-03-02",
            "2012-01-20",
            "2015-03-02",
            "2018-07-11",
            "2010-12-01",
            "2012-01-20",
            "2016-05-05",
        ];
        let mut ids = Vec::new();
        for i in 0..ROWS {
            let severity = if i % 3 == 0 { "SEVERE" } else { "MILD" };
            let created = ok(
                app,
                admin,
                "mutation($i: CreateBeneficiaryInput!) { createBeneficiary(input: $i) { id } }",
                json!({ "i": { "fullName": names[i], "nationalId": format!("CNB{i:04}"),
                               "dateOfBirth": births[i], "gender": "MALE",
                               "disabilityType": "autism", "severity": severity } }),
                "createBeneficiary",
            )
            .await;
            ids.push(id_of(&created));
        }
        ok(
            app,
            admin,
            "mutation($id: ID!) { updateBeneficiary(id: $id, input: { medicalNotes: \"reviewed\" }) { id } }",
            json!({ "id": ids[2] }),
            "updateBeneficiary",
        )
        .await;
        let matching = pick(&ids, |i| i % 3 == 0);
        Seeded::new(ids, json!({ "severity": ["SEVERE"] }), matching)
    })
}

fn seed_enrollments<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let therapist = app.user_id("therapist").await;
        let program = create_program(app, admin, "Contract programme", 20).await;
        let starts = [
            "2026-02-01",
            "2026-01-15",
            "2026-02-01",
            "2026-03-10",
            "2026-01-15",
            "2026-01-01",
            "2026-02-01",
        ];
        let mut ids = Vec::new();
        for (i, start) in starts.iter().enumerate() {
            let child =
                create_beneficiary(app, admin, &format!("Enrolled {i}"), &format!("CNE{i:04}"))
                    .await;
            let created = ok(
                app,
                admin,
                ENROLL,
                json!({ "i": { "beneficiaryId": child, "programId": program,
                               "therapistId": therapist, "startDate": start } }),
                "enrollBeneficiary",
            )
            .await;
            ids.push(id_of(&created));
        }
        // Activated in reverse: UPDATED_AT differs from CREATED_AT.
        for id in ids.iter().rev().step_by(2) {
            ok(
                app,
                admin,
                SET_STATUS,
                json!({ "id": id, "s": "ACTIVE" }),
                "setEnrollmentStatus",
            )
            .await;
        }
        let matching = pick(&ids, |i| i % 2 == 0);
        Seeded::new(ids, json!({ "status": ["ACTIVE"] }), matching)
    })
}

fn seed_sessions<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let therapist = app.user_id("therapist").await;
        let program = create_program(app, admin, "Session programme", 20).await;
        let (_, first) =
            active_enrollment(app, admin, &program, &therapist, "Sessions A", "CNS0001").await;
        let (_, second) =
            active_enrollment(app, admin, &program, &therapist, "Sessions B", "CNS0002").await;
        let starts = [
            "2026-01-05T09:00:00Z",
            "2026-01-03T09:00:00Z",
            "2026-01-05T09:00:00Z",
            "2026-01-09T14:30:00Z",
            "2026-01-03T09:00:00Z",
            "2026-01-01T08:00:00Z",
            "2026-01-05T09:00:00Z",
        ];
        let mut ids = Vec::new();
        for (i, start) in starts.iter().enumerate() {
            let enrollment = if i % 2 == 0 { &first } else { &second };
            let attendance = if i % 3 == 0 { "ABSENT" } else { "ATTENDED" };
            let created = ok(
                app,
                admin,
                RECORD,
                json!({ "i": { "enrollmentId": enrollment, "startedAt": start, "durationMinutes": 30,
                               "attendance": attendance, "progressScore": 50 } }),
                "recordTherapySession",
            )
            .await;
            ids.push(id_of(&created));
        }
        let matching = pick(&ids, |i| i % 3 == 0);
        Seeded::new(ids, json!({ "attendance": ["ABSENT"] }), matching)
    })
}

fn seed_schedules<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let starts = [
            "09:00", "09:00", "11:00", "08:00", "10:00", "11:00", "07:00",
        ];
        let mut ids = Vec::new();
        for (i, start) in starts.iter().enumerate() {
            let room = if i % 2 == 0 { "ROOM-A" } else { "ROOM-B" };
            let created = ok(
                app,
                admin,
                "mutation($i: CreateScheduleInput!) { createSchedule(input: $i) { id } }",
                json!({ "i": { "title": format!("Booking {i}"), "resourceType": "ROOM", "resourceId": room,
                               "startDate": format!("2026-04-01T{start}:00Z"),
                               "endDate": format!("2026-04-01T{start}:00Z").replace(":00:00Z", ":30:00Z") } }),
                "createSchedule",
            )
            .await;
            ids.push(id_of(&created));
        }
        let matching = pick(&ids, |i| i % 2 == 1);
        Seeded::new(ids, json!({ "resourceId": "ROOM-B" }), matching)
    })
}

fn seed_assets<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let names = [
            "Wheelchair",
            "Laptop",
            "Hoist",
            "Laptop",
            "Bed",
            "Wheelchair",
            "Tablet",
        ];
        let values = [150_000, 90_000, 150_000, 40_000, 90_000, 220_000, 150_000];
        let mut ids = Vec::new();
        for i in 0..ROWS {
            let category = if i % 3 == 0 { "IT" } else { "MEDICAL" };
            let created = ok(
                app,
                admin,
                "mutation($i: CreateAssetInput!) { createAsset(input: $i) { id } }",
                json!({ "i": { "name": names[i], "category": category,
                               "value": { "amountMinor": values[i], "currency": "SAR" } } }),
                "createAsset",
            )
            .await;
            ids.push(id_of(&created));
        }
        ok(
            app,
            admin,
            "mutation($id: ID!) { updateAsset(id: $id, input: { location: \"Store room\" }) { id } }",
            json!({ "id": ids[0] }),
            "updateAsset",
        )
        .await;
        let matching = pick(&ids, |i| i % 3 == 0);
        Seeded::new(ids, json!({ "category": ["IT"] }), matching)
    })
}

fn seed_users<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let names = ["Sara", "Omar", "Sara", "Huda", "Ali", "Omar", "Basma"];
        let mut ids = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let role = if i % 3 == 0 { "THERAPIST" } else { "USER" };
            let created = ok(
                app,
                admin,
                "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                json!({ "i": { "email": format!("contract{i}@alawael.local"), "name": name,
                               "role": role, "password": PASSWORD } }),
                "createUser",
            )
            .await;
            ids.push(id_of(&created));
        }
        ok(
            app,
            admin,
            "mutation($id: ID!) { updateUser(id: $id, input: { department: \"Front desk\" }) { id } }",
            json!({ "id": ids[1] }),
            "updateUser",
        )
        .await;
        let matching = pick(&ids, |i| i % 3 == 0);
        // No seeded staff address has the marker.
        Seeded::new(ids, json!({ "role": ["THERAPIST"] }), matching)
            .within(json!({ "search": "contract" }))
    })
}

const UPDATE_LOCATION: &str =
    "mutation($id: ID!, $l: String!) { updateAsset(id: $id, input: { location: $l }) { id } }";

fn seed_audit_entries<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        // Four creations and three updates: seven entries about assets.
        let mut assets = Vec::new();
        for name in ["Hoist", "Walker", "Bed", "Tablet"] {
            assets.push(app.create_asset(admin, name, None).await);
        }
        for (i, asset) in assets.iter().take(3).enumerate() {
            ok(
                app,
                admin,
                UPDATE_LOCATION,
                json!({ "id": asset, "l": format!("Store room {i}") }),
                "updateAsset",
            )
            .await;
        }
        // The entries as stored, read beside the API.
        let (mut ids, mut matching) = (Vec::new(), Vec::new());
        for asset in &assets {
            for entry in app.audit_for("Asset", object_id(asset)).await {
                let id = GlobalId::new(NodeKind::AuditLogEntry, entry.id).encode();
                if entry.action == "asset.update" {
                    matching.push(id.clone());
                }
                ids.push(id);
            }
        }
        Seeded::new(ids, json!({ "action": "asset.update" }), matching)
            .within(json!({ "entityType": "Asset" }))
    })
}

const RECORD_EVENT: &str = "mutation($i: RecordEventInput!) { recordEvent(input: $i) { id } }";

fn seed_analytics_events<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let manager = app.login("manager").await;
        let manager_id = app.user_id("manager").await;
        let mut ids = Vec::new();
        for i in 0..ROWS {
            let token = if i % 3 == 0 { manager.as_str() } else { admin };
            let name = if i % 2 == 0 {
                "contract.opened"
            } else {
                "contract.closed"
            };
            let recorded = ok(
                app,
                token,
                RECORD_EVENT,
                json!({ "i": { "name": name, "value": i as f64, "dimensions": { "seat": format!("{i}") } } }),
                "recordEvent",
            )
            .await;
            ids.push(id_of(&recorded));
        }
        let matching = pick(&ids, |i| i % 3 == 0);
        Seeded::new(ids, json!({ "userId": manager_id }), matching)
            .within(json!({ "names": ["contract.opened", "contract.closed"] }))
    })
}

fn seed_webhooks<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let mut ids = Vec::new();
        for i in 0..ROWS {
            // Nothing listens there, and no programme is deleted: no deliveries.
            let (id, _) = create_webhook(
                app,
                admin,
                &format!("http://127.0.0.1:9/contract/{i}"),
                &["program.deleted"],
            )
            .await;
            ids.push(id);
        }
        let matching = pick(&ids, |i| i % 3 == 0);
        for id in &matching {
            ok(
                app,
                admin,
                "mutation($id: ID!) { updateWebhook(id: $id, input: { active: false }) { id } }",
                json!({ "id": id }),
                "updateWebhook",
            )
            .await;
        }
        Seeded::new(ids, json!(false), matching)
    })
}

/// How long a background job (a delivery, a report) may take to settle.
const SETTLE: Duration = Duration::from_secs(30);

fn seed_deliveries<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let receiver = Receiver::always(200).await;
        let (hook, _) = create_webhook(
            app,
            admin,
            &receiver.url(),
            &["asset.created", "asset.updated"],
        )
        .await;
        // Four creations and three updates: seven deliveries.
        let mut assets = Vec::new();
        for name in ["Hoist", "Walker", "Bed", "Tablet"] {
            assets.push(app.create_asset(admin, name, None).await);
        }
        for (i, asset) in assets.iter().take(3).enumerate() {
            ok(
                app,
                admin,
                UPDATE_LOCATION,
                json!({ "id": asset, "l": format!("Store room {i}") }),
                "updateAsset",
            )
            .await;
        }
        // The deliveries as the receiver got them: `webhook-id` is `msg_<hex id>`.
        let (mut ids, mut matching) = (Vec::new(), Vec::new());
        for request in receiver.wait_requests(ROWS).await {
            let hex = request
                .id()
                .strip_prefix("msg_")
                .expect("a webhook-id is msg_<hex id>");
            let oid = ObjectId::parse_str(hex).expect("a webhook-id holds an object id");
            let id = GlobalId::new(NodeKind::WebhookDelivery, oid).encode();
            if request.json()["type"] == "asset.updated" {
                matching.push(id.clone());
            }
            ids.push(id);
        }
        // Settled: every delivery SUCCEEDED, so none changes while the list is read.
        let deadline = Instant::now() + SETTLE;
        loop {
            let hook = ok(
                app,
                admin,
                "query($id: ID!) { webhook(id: $id) { deliveries(first: 100) { nodes { status } } } }",
                json!({ "id": hook }),
                "webhook",
            )
            .await;
            let statuses = hook["deliveries"]["nodes"]
                .as_array()
                .expect("a list of deliveries")
                .clone();
            if statuses.len() == ROWS && statuses.iter().all(|d| d["status"] == "SUCCEEDED") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "every delivery succeeds: {statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Seeded::new(ids, json!({ "events": ["asset.updated"] }), matching).under(hook)
    })
}

fn seed_reports<'a>(app: &'a TestApp, admin: &'a str) -> BoxFuture<'a, Seeded> {
    Box::pin(async move {
        let mut ids = Vec::new();
        for i in 0..ROWS {
            let id = if i % 3 == 0 {
                // Bad parameters: the worker marks it FAILED.
                let parameters = json!({ "from": "last week", "to": "2026-02-01T00:00:00Z" });
                request_report(app, admin, "AUDIT_SUMMARY", parameters).await
            } else {
                request_report(app, admin, "ASSET_INVENTORY", json!({})).await
            };
            ids.push(id);
        }
        // Settled: every report is READY or FAILED, so none changes while the list is read.
        for (i, id) in ids.iter().enumerate() {
            let report = finished_report(app, admin, id).await;
            let wanted = if i % 3 == 0 { "FAILED" } else { "READY" };
            assert_eq!(report["status"], wanted, "{report}");
        }
        let matching = pick(&ids, |i| i % 3 == 0);
        Seeded::new(ids, json!({ "status": ["FAILED"] }), matching)
    })
}

// ---------------------------------------------------------------------------
// The routine
// ---------------------------------------------------------------------------

impl ModelContract {
    /// The list as messages name it: `users`, `Webhook.deliveries`.
    fn label(&self) -> String {
        match self.list {
            List::Root(field) => field.to_string(),
            List::Child { parent, field } => format!("{}.{field}", parent.name()),
        }
    }

    /// The order keys a page selects, and walks.
    fn keys(&self) -> Vec<&OrderKey> {
        match &self.orders {
            Orders::By(keys) => keys.iter().collect(),
            Orders::Fixed(key, _) => vec![key],
        }
    }

    /// The filter argument and its type.
    fn filter_argument(&self) -> (&'static str, String) {
        match self.filter {
            Filter::Typed => ("filter", format!("{}Filter", self.kind.name())),
            Filter::Input(input) => ("filter", input.to_string()),
            Filter::Argument(name, ty) => (name, ty.to_string()),
        }
    }

    /// The singular query of a child list's parent.
    fn parent_single(parent: NodeKind) -> &'static str {
        contract(parent)
            .and_then(|c| c.single.as_ref())
            .map(|s| s.field)
            .unwrap_or_else(|| panic!("the parent {} has a singular query", parent.name()))
    }

    /// The list query with every sort key selected, with the arguments the
    /// list takes.
    fn page_query(&self) -> String {
        let mut params = vec!["$first: Int".to_string(), "$after: String".to_string()];
        let mut args = vec!["first: $first", "after: $after"];
        if self.backward {
            params.extend(["$last: Int".to_string(), "$before: String".to_string()]);
            args.extend(["last: $last", "before: $before"]);
        }
        if let Orders::By(_) = self.orders {
            params.push(format!("$order: {}Order", self.kind.name()));
            args.push("orderBy: $order");
        }
        let (filter, filter_type) = self.filter_argument();
        params.push(format!("$filter: {filter_type}"));
        let filter_arg = format!("{filter}: $filter");
        args.push(&filter_arg);
        let keys: Vec<&str> = self.keys().iter().map(|o| o.select).collect();
        let connection = |field: &str| {
            format!(
                "{field}({args}) {{
                   totalCount
                   pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
                   edges {{ cursor node {{ id {keys} }} }}
                 }}",
                args = args.join(", "),
                keys = keys.join(" "),
            )
        };
        match self.list {
            List::Root(field) => format!(
                "query({params}) {{ {list} }}",
                params = params.join(", "),
                list = connection(field)
            ),
            List::Child { parent, field } => {
                params.push("$parent: ID!".to_string());
                format!(
                    "query({params}) {{ {single}(id: $parent) {{ {list} }} }}",
                    params = params.join(", "),
                    single = Self::parent_single(parent),
                    list = connection(field)
                )
            }
        }
    }

    /// `vars` with the seeder's scope merged into the filter, and the parent.
    fn variables(&self, seeded: &Seeded, mut vars: Value) -> Value {
        if let Some(scope) = &seeded.scope {
            let mut filter = scope.clone();
            if let (Some(into), Some(given)) = (filter.as_object_mut(), vars["filter"].as_object())
            {
                into.extend(given.clone());
            }
            vars["filter"] = filter;
        }
        if let Some(parent) = &seeded.parent {
            vars["parent"] = json!(parent);
        }
        vars
    }

    /// The connection in a page's `data`.
    fn connection<'a>(&self, data: &'a Value) -> &'a Value {
        match self.list {
            List::Root(field) => &data[field],
            List::Child { parent, field } => &data[Self::parent_single(parent)][field],
        }
    }

    async fn page(&self, app: &TestApp, token: &str, seeded: &Seeded, vars: Value) -> Value {
        let vars = self.variables(seeded, vars);
        let body = app.gql(Some(token), &self.page_query(), vars.clone()).await;
        assert!(
            body["errors"].is_null(),
            "{} with {vars}: {body}",
            self.label()
        );
        self.connection(&body["data"]).clone()
    }
}

fn nodes_of(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn ids_of(nodes: &[Value]) -> Vec<String> {
    nodes.iter().map(id_of).collect()
}

fn object_id(global: &str) -> ObjectId {
    GlobalId::decode(global).expect("a global id").id
}

/// Orders two sort keys as the database does for the values we store.
fn compare_keys(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => {
            let number = |n: &serde_json::Number| n.as_f64().expect("a JSON number reads as f64");
            number(x).total_cmp(&number(y))
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => panic!("sort keys of different kinds: {a} and {b}"),
    }
}

/// Walks the whole list with `first: 2` and then (where the list pages
/// backwards) with `last: 2`; checks that both visit every row once, in
/// the same, correct order.
async fn walk(
    app: &TestApp,
    token: &str,
    model: &ModelContract,
    seeded: &Seeded,
    order: &OrderKey,
    direction: &str,
) {
    let label = format!("{} by {} {direction}", model.label(), order.field);
    // A fixed order is the list's own: it takes no `orderBy`.
    let with_order = |mut vars: Value| {
        if let Orders::By(_) = model.orders {
            vars["order"] = json!({ "field": order.field, "direction": direction });
        }
        vars
    };
    let total = seeded.ids.len();

    let mut forward: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..=total {
        let page = model
            .page(
                app,
                token,
                seeded,
                with_order(json!({ "first": 2, "after": after })),
            )
            .await;
        assert_eq!(page["totalCount"], total, "{label}");
        let nodes = nodes_of(&page);
        assert!(nodes.len() <= 2, "{label}");
        forward.extend(nodes);
        let info = &page["pageInfo"];
        assert_eq!(info["hasPreviousPage"], after.is_some(), "{label}");
        if info["hasNextPage"] == false {
            after = None;
            break;
        }
        after = info["endCursor"].as_str().map(str::to_string);
    }
    assert!(after.is_none(), "{label}: paging forward never ended");

    let forward_ids = ids_of(&forward);
    assert_eq!(forward_ids.len(), total, "{label}: every row once");
    assert_eq!(
        forward_ids.iter().collect::<BTreeSet<_>>(),
        seeded.ids.iter().collect::<BTreeSet<_>>(),
        "{label}: exactly the rows made"
    );
    for pair in forward.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let by_key = compare_keys(
            &a.pointer(order.pointer).cloned().unwrap_or(Value::Null),
            &b.pointer(order.pointer).cloned().unwrap_or(Value::Null),
        );
        let by_id = object_id(&id_of(a)).cmp(&object_id(&id_of(b)));
        let step = by_key.then(by_id);
        let expected = if direction == "ASC" {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        assert_eq!(step, expected, "{label}: {a} then {b}");
    }

    if !model.backward {
        return;
    }
    let mut backward: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..=total {
        let page = model
            .page(
                app,
                token,
                seeded,
                with_order(json!({ "last": 2, "before": before })),
            )
            .await;
        assert_eq!(page["totalCount"], total, "{label}");
        let mut ids = ids_of(&nodes_of(&page));
        assert!(ids.len() <= 2, "{label}");
        ids.extend(backward);
        backward = ids;
        let info = &page["pageInfo"];
        assert_eq!(info["hasNextPage"], before.is_some(), "{label}");
        if info["hasPreviousPage"] == false {
            before = None;
            break;
        }
        before = info["startCursor"].as_str().map(str::to_string);
    }
    assert!(before.is_none(), "{label}: paging backward never ended");
    assert_eq!(
        backward, forward_ids,
        "{label}: backward gives the same order"
    );
}

/// A global id of the same database id under another node type.
fn foreign_id(kind: NodeKind, global: &str) -> String {
    let other = if kind == NodeKind::Asset {
        NodeKind::Schedule
    } else {
        NodeKind::Asset
    };
    GlobalId::new(other, object_id(global)).encode()
}

/// The whole contract for one model, as far as its list supports it.
async fn check(kind: NodeKind) {
    let model = contract(kind).unwrap_or_else(|| panic!("{} has a contract", kind.name()));
    let list = model.label();
    let app = spawn_app_with(model.settings).await;
    let admin = app.login("admin").await;
    let seeded = (model.seed)(&app, &admin).await;
    assert_eq!(seeded.ids.len(), ROWS, "{list}: the seeder made its rows");
    assert_eq!(
        seeded.ids.iter().collect::<BTreeSet<_>>().len(),
        ROWS,
        "{list}: the seeder's rows are distinct"
    );

    // Paging in every order and direction.
    match &model.orders {
        Orders::By(keys) => {
            for order in *keys {
                for direction in ["ASC", "DESC"] {
                    walk(&app, &admin, model, &seeded, order, direction).await;
                }
            }
        }
        Orders::Fixed(order, direction) => {
            walk(&app, &admin, model, &seeded, order, direction).await;
        }
    }
    // The default order pages the same way.
    let all = model
        .page(&app, &admin, &seeded, json!({ "first": 100 }))
        .await;
    assert_eq!(all["totalCount"], ROWS, "{list}");
    assert_eq!(all["pageInfo"]["hasNextPage"], false, "{list}");

    // A filter: the right subset, and its count.
    assert!(
        !seeded.matching.is_empty() && seeded.matching.len() < ROWS,
        "{list}: the filter picks a proper subset"
    );
    let filtered = model
        .page(
            &app,
            &admin,
            &seeded,
            json!({ "first": 100, "filter": seeded.filter }),
        )
        .await;
    assert_eq!(
        ids_of(&nodes_of(&filtered))
            .into_iter()
            .collect::<BTreeSet<_>>(),
        seeded.matching.iter().cloned().collect::<BTreeSet<_>>(),
        "{list} filtered by {}",
        seeded.filter
    );
    assert_eq!(filtered["totalCount"], seeded.matching.len(), "{list}");
    let narrow = model
        .page(
            &app,
            &admin,
            &seeded,
            json!({ "first": 1, "filter": seeded.filter }),
        )
        .await;
    assert_eq!(
        narrow["totalCount"],
        seeded.matching.len(),
        "{list}: the count ignores the window"
    );

    // Cursors: tampered, from another ordering, from another list.
    let first = model
        .page(&app, &admin, &seeded, json!({ "first": 2 }))
        .await;
    let cursor = first["pageInfo"]["endCursor"]
        .as_str()
        .expect("a first page of two rows has an end cursor")
        .to_string();
    let mut bytes = cursor.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("a cursor is ASCII");
    // The users' list for every model but users, whose other list is the audit log.
    let other_list = if kind == NodeKind::User {
        "auditLog"
    } else {
        "users"
    };
    let other = ok(
        &app,
        &admin,
        &format!("{{ {other_list}(first: 1) {{ pageInfo {{ endCursor }} }} }}"),
        json!({}),
        other_list,
    )
    .await;
    let other_cursor = other["pageInfo"]["endCursor"]
        .as_str()
        .expect("another list has a row, and its cursor")
        .to_string();
    let mut cursors = vec![
        ("tampered", json!({ "first": 2, "after": tampered })),
        ("not a cursor", json!({ "first": 2, "after": "garbage" })),
        ("another list", json!({ "first": 2, "after": other_cursor })),
    ];
    if model.backward {
        cursors.push((
            "tampered, backwards",
            json!({ "last": 2, "before": tampered }),
        ));
    }
    // A cursor names its order field: another field is another ordering.
    if let Orders::By(keys) = model.orders
        && let [_, .., last] = keys
    {
        cursors.push((
            "another ordering",
            json!({ "first": 2, "after": cursor, "order": { "field": last.field, "direction": "DESC" } }),
        ));
    }
    for (name, vars) in cursors {
        let vars = model.variables(&seeded, vars);
        let body = app.gql(Some(&admin), &model.page_query(), vars).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{list}: {name}: {body}"
        );
    }

    // One row through node, nodes and the singular query.
    let row = &seeded.ids[ROWS / 2];
    let other_row = &seeded.ids[0];
    let node = ok(
        &app,
        &admin,
        "query($id: ID!) { node(id: $id) { __typename id } }",
        json!({ "id": row }),
        "node",
    )
    .await;
    assert_eq!(node["__typename"], kind.name());
    assert_eq!(node["id"], row.as_str());
    let foreign = foreign_id(kind, row);
    let nodes = ok(
        &app,
        &admin,
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
        json!({ "ids": [row, foreign, other_row, "not-an-id"] }),
        "nodes",
    )
    .await;
    assert_eq!(nodes[0]["id"], row.as_str(), "{nodes}");
    assert_eq!(nodes[0]["__typename"], kind.name());
    assert!(nodes[1].is_null(), "another type's id is null: {nodes}");
    assert_eq!(nodes[2]["id"], other_row.as_str(), "{nodes}");
    assert!(nodes[3].is_null(), "{nodes}");
    let missing = GlobalId::new(kind, ObjectId::new()).encode();
    if let Some(single) = &model.single {
        let field = single.field;
        let query = format!("query($id: ID!) {{ {field}(id: $id) {{ id }} }}");
        let one = ok(&app, &admin, &query, json!({ "id": row }), field).await;
        assert_eq!(one["id"], row.as_str());

        // Ids of another type, or of nothing: NOT_FOUND.
        let elsewhere = if kind == NodeKind::User {
            app.create_asset(&admin, "Not an account", None).await
        } else {
            app.user_id("admin").await
        };
        for (name, id) in [
            ("the same database id as another type", foreign.as_str()),
            ("a row of another type", elsewhere.as_str()),
            ("a row that does not exist", missing.as_str()),
            ("not an id", "not-an-id"),
        ] {
            let body = app.gql(Some(&admin), &query, json!({ "id": id })).await;
            assert_eq!(error_code(&body), "NOT_FOUND", "{field}: {name}: {body}");
            if single.nullable {
                assert!(body["data"][field].is_null(), "{body}");
            } else {
                assert!(body["data"].is_null(), "{body}");
            }
        }
    }
    for (name, id) in [
        ("the same database id as another type", foreign.as_str()),
        ("a row that does not exist", missing.as_str()),
        ("not an id", "not-an-id"),
    ] {
        let body = app
            .gql(
                Some(&admin),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            error_code(&body),
            "NOT_FOUND",
            "node of {list}: {name}: {body}"
        );
        assert!(body["data"]["node"].is_null(), "{body}");
    }
}

#[tokio::test]
async fn users_keep_the_list_contract() {
    check(NodeKind::User).await;
}

#[tokio::test]
async fn assets_keep_the_list_contract() {
    check(NodeKind::Asset).await;
}

#[tokio::test]
async fn programmes_keep_the_list_contract() {
    check(NodeKind::DisabilityProgram).await;
}

#[tokio::test]
async fn beneficiaries_keep_the_list_contract() {
    check(NodeKind::Beneficiary).await;
}

#[tokio::test]
async fn enrollments_keep_the_list_contract() {
    check(NodeKind::Enrollment).await;
}

#[tokio::test]
async fn therapy_sessions_keep_the_list_contract() {
    check(NodeKind::TherapySession).await;
}

#[tokio::test]
async fn schedules_keep_the_list_contract() {
    check(NodeKind::Schedule).await;
}

#[tokio::test]
async fn audit_log_entries_keep_the_list_contract_paging_forwards_newest_first() {
    check(NodeKind::AuditLogEntry).await;
}

#[tokio::test]
async fn analytics_events_keep_the_list_contract() {
    check(NodeKind::AnalyticsEvent).await;
}

#[tokio::test]
async fn webhooks_keep_the_list_contract_filtered_by_whether_they_are_active() {
    check(NodeKind::Webhook).await;
}

#[tokio::test]
async fn webhook_deliveries_keep_the_list_contract_under_their_webhook() {
    check(NodeKind::WebhookDelivery).await;
}

#[tokio::test]
async fn reports_keep_the_list_contract_once_computed() {
    check(NodeKind::Report).await;
}

/// The values of `enum <name>` in the SDL.
fn sdl_enum(sdl: &str, name: &str) -> Vec<String> {
    let start = sdl
        .find(&format!("enum {name} {{"))
        .unwrap_or_else(|| panic!("enum {name} is in the SDL"));
    let body = &sdl[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    let mut values = Vec::new();
    let mut in_description = false;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("\"\"\"") {
            let closes_here = line.len() > 3 && line.ends_with("\"\"\"");
            if !closes_here {
                in_description = !in_description;
            }
            continue;
        }
        if !in_description {
            values.push(line.to_string());
        }
    }
    values
}

/// The block of `opening` (`type Query {`) in the SDL, up to its `}`.
fn sdl_block<'a>(sdl: &'a str, opening: &str) -> &'a str {
    let start = sdl
        .find(opening)
        .unwrap_or_else(|| panic!("`{opening}` is in the SDL"));
    let block = &sdl[start..];
    &block[..block.find("\n}").expect("a block ends with `}`")]
}

/// A field with arguments in a block: from its name to its type.
fn sdl_field<'a>(block: &'a str, field: &str) -> Option<&'a str> {
    let start = block.find(&format!("\n\t{field}("))? + 1;
    let rest = &block[start..];
    let close = rest.find("\n\t)").expect("the arguments close");
    let end = rest[close + 1..]
        .find('\n')
        .map_or(rest.len(), |n| close + 1 + n);
    Some(&rest[..end])
}

/// `AuditLogEntry` → `auditLogEntry`: the singular query by the API's names.
fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_lowercase().to_string() + chars.as_str()
    })
}

#[tokio::test]
async fn the_contract_table_names_every_order_field_and_query_of_the_sdl() {
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    // Every node kind of `with_models!` has a contract, and one only.
    let missing: Vec<&str> = NodeKind::ALL
        .iter()
        .filter(|kind| contract(**kind).is_none())
        .map(|kind| kind.name())
        .collect();
    assert!(
        missing.is_empty(),
        "node kinds without a list contract in CONTRACTS: {missing:?}"
    );
    for kind in NodeKind::ALL {
        let rows = CONTRACTS.iter().filter(|c| c.kind == *kind).count();
        assert_eq!(rows, 1, "{} has one contract", kind.name());
    }

    let query = sdl_block(&sdl, "type Query {");
    for kind in NodeKind::ALL {
        let model = contract(*kind).expect("every kind has a contract");
        let name = kind.name();
        assert!(
            sdl.contains(&format!("type {name} implements Node {{")),
            "{name} is a Node"
        );

        // The list, with exactly the arguments the table gives it.
        let (block, field) = match model.list {
            List::Root(field) => (query, field),
            List::Child { parent, field } => (
                sdl_block(&sdl, &format!("type {} implements Node {{", parent.name())),
                field,
            ),
        };
        let list = sdl_field(block, field)
            .unwrap_or_else(|| panic!("{}: {field} is in the SDL", model.label()));
        assert!(
            list.ends_with(&format!("): {name}Connection!")),
            "{}: {list}",
            model.label()
        );
        let order = format!("orderBy: {name}Order");
        for (argument, taken) in [
            ("first: Int", true),
            ("after: String", true),
            ("last: Int", model.backward),
            ("before: String", model.backward),
            (order.as_str(), matches!(model.orders, Orders::By(_))),
        ] {
            assert_eq!(
                list.contains(argument),
                taken,
                "{}: `{argument}` taken: {taken}",
                model.label()
            );
        }
        let (filter, filter_type) = model.filter_argument();
        assert!(
            list.contains(&format!("{filter}: {filter_type}")),
            "{}: `{filter}: {filter_type}`",
            model.label()
        );
        match model.filter {
            Filter::Typed | Filter::Input(_) => assert!(
                sdl.contains(&format!("input {filter_type} {{")),
                "input {filter_type} is in the SDL"
            ),
            Filter::Argument(..) => assert!(
                !sdl.contains(&format!("input {name}Filter {{")),
                "{name}Filter exists now: give {name} a typed filter in the table"
            ),
        }

        // Every order field, or none.
        match &model.orders {
            Orders::By(keys) => {
                let declared: Vec<&str> = keys.iter().map(|o| o.field).collect();
                assert_eq!(
                    sdl_enum(&sdl, &format!("{name}OrderField")),
                    declared,
                    "{name}"
                );
                assert!(sdl.contains(&format!("input {name}Order {{")));
            }
            Orders::Fixed(..) => assert!(
                !sdl.contains(&format!("enum {name}OrderField {{")),
                "{name} has order fields now: name them in the table"
            ),
        }

        // The singular query, or none.
        match &model.single {
            Some(single) => {
                let found = sdl_field(query, single.field)
                    .unwrap_or_else(|| panic!("Query.{} is in the SDL", single.field));
                let returns = if single.nullable {
                    format!("): {name}")
                } else {
                    format!("): {name}!")
                };
                assert!(found.ends_with(&returns), "{found}");
            }
            None => {
                let conventional = lower_camel(name);
                assert!(
                    sdl_field(query, &conventional).is_none(),
                    "Query.{conventional} exists now: name it in the table"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Scope: a THERAPIST sees only their own clinical rows, wherever they look.
// ---------------------------------------------------------------------------

/// The clinic as ADMIN built it, and who may see what.
struct Clinic {
    programs: Vec<String>,
    /// (id, programme, beneficiary, therapist)
    enrollments: Vec<(String, String, String, String)>,
    /// (id, beneficiary, therapist)
    sessions: Vec<(String, String, String)>,
    beneficiaries: Vec<String>,
    /// (id, the therapists it is visible to)
    schedules: Vec<(String, Vec<String>)>,
}

impl Clinic {
    fn enrollments_of(&self, therapist: &str) -> BTreeSet<String> {
        self.enrollments
            .iter()
            .filter(|e| e.3 == therapist)
            .map(|e| e.0.clone())
            .collect()
    }

    fn sessions_of(&self, therapist: &str) -> BTreeSet<String> {
        self.sessions
            .iter()
            .filter(|s| s.2 == therapist)
            .map(|s| s.0.clone())
            .collect()
    }

    fn beneficiaries_of(&self, therapist: &str) -> BTreeSet<String> {
        self.enrollments
            .iter()
            .filter(|e| e.3 == therapist)
            .map(|e| e.2.clone())
            .collect()
    }

    fn schedules_of(&self, therapist: &str) -> BTreeSet<String> {
        self.schedules
            .iter()
            .filter(|s| s.1.iter().any(|t| t == therapist))
            .map(|s| s.0.clone())
            .collect()
    }
}

async fn book_as(app: &TestApp, token: &str, kind: &str, resource: &str, hour: u32) -> String {
    id_of(
        &ok(
            app,
            token,
            "mutation($i: CreateScheduleInput!) { createSchedule(input: $i) { id } }",
            json!({ "i": { "title": "Scope booking", "resourceType": kind, "resourceId": resource,
                           "startDate": format!("2026-05-04T{hour:02}:00:00Z"),
                           "endDate": format!("2026-05-04T{hour:02}:45:00Z") } }),
            "createSchedule",
        )
        .await,
    )
}

/// Two therapists with enrolments, sessions and bookings: a beneficiary of
/// each alone, and one enrolled with both (in two programmes).
async fn build_clinic(app: &TestApp, admin: &str, t1: (&str, &str), t2: (&str, &str)) -> Clinic {
    let (t1_id, t1_token) = t1;
    let (t2_id, t2_token) = t2;
    let shared = create_program(app, admin, "Shared programme", 10).await;
    let second = create_program(app, admin, "Second programme", 10).await;
    let (b1, e1) = active_enrollment(app, admin, &shared, t1_id, "Shared Child", "SCP0001").await;
    let (b2, e2) = active_enrollment(app, admin, &shared, t2_id, "Theirs Only", "SCP0002").await;
    let (b3, e4) = active_enrollment(app, admin, &second, t1_id, "Mine Only", "SCP0003").await;
    // b1 is also enrolled with the other therapist, in the second programme.
    let body = app
        .gql(
            Some(admin),
            ENROLL,
            json!({ "i": { "beneficiaryId": b1, "programId": second, "therapistId": t2_id, "startDate": "2026-01-10" } }),
        )
        .await;
    let e3 = body["data"]["enrollBeneficiary"]["id"]
        .as_str()
        .expect("enrolled")
        .to_string();
    ok(
        app,
        admin,
        SET_STATUS,
        json!({ "id": e3, "s": "ACTIVE" }),
        "setEnrollmentStatus",
    )
    .await;

    let mut sessions = Vec::new();
    for (token, enrollment, beneficiary, therapist) in [
        (t1_token, &e1, &b1, t1_id),
        (t2_token, &e2, &b2, t2_id),
        (t2_token, &e3, &b1, t2_id),
    ] {
        let body = record_session(app, token, enrollment, "scope notes").await;
        let id = body["data"]["recordTherapySession"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("session recorded: {body}"))
            .to_string();
        sessions.push((id, beneficiary.clone(), therapist.to_string()));
    }

    let schedules = vec![
        (
            book_as(app, t1_token, "ROOM", "T1-ROOM", 9).await,
            vec![t1_id.to_string()],
        ),
        (
            book_as(app, t2_token, "ROOM", "T2-ROOM", 9).await,
            vec![t2_id.to_string()],
        ),
        (book_as(app, admin, "ROOM", "ADMIN-ROOM", 9).await, vec![]),
        // Bookings of a therapist are visible to the therapist booked.
        (
            book_as(app, admin, "THERAPIST", t1_id, 10).await,
            vec![t1_id.to_string()],
        ),
        (
            book_as(app, admin, "THERAPIST", t2_id, 10).await,
            vec![t2_id.to_string()],
        ),
    ];

    Clinic {
        programs: vec![shared.clone(), second.clone()],
        enrollments: vec![
            (e1, shared.clone(), b1.clone(), t1_id.to_string()),
            (e2, shared, b2.clone(), t2_id.to_string()),
            (e3, second.clone(), b1.clone(), t2_id.to_string()),
            (e4, second, b3.clone(), t1_id.to_string()),
        ],
        sessions,
        beneficiaries: vec![b1, b2, b3],
        schedules,
    }
}

/// `(ids, totalCount)` of a top-level list.
async fn listed(
    app: &TestApp,
    token: &str,
    list: &str,
    filter: Option<Value>,
) -> (BTreeSet<String>, u64) {
    let filter_type = match list {
        "enrollments" => "EnrollmentFilter",
        "therapySessions" => "TherapySessionFilter",
        "beneficiaries" => "BeneficiaryFilter",
        "schedules" => "ScheduleFilter",
        other => panic!("no filter type for {other}"),
    };
    let query = format!(
        "query($f: {filter_type}) {{ {list}(first: 100, filter: $f) {{ totalCount nodes {{ id }} }} }}"
    );
    let connection = ok(app, token, &query, json!({ "f": filter }), list).await;
    (
        set_of(&connection),
        connection["totalCount"].as_u64().unwrap(),
    )
}

fn set_of(connection: &Value) -> BTreeSet<String> {
    connection["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

/// The scoped clinical models.
#[derive(Clone, Copy, Debug)]
enum Rows {
    Enrollments,
    Sessions,
    Beneficiaries,
    Schedules,
}

impl Rows {
    fn list(self) -> &'static str {
        match self {
            Self::Enrollments => "enrollments",
            Self::Sessions => "therapySessions",
            Self::Beneficiaries => "beneficiaries",
            Self::Schedules => "schedules",
        }
    }

    fn single(self) -> &'static str {
        match self {
            Self::Enrollments => "enrollment",
            Self::Sessions => "therapySession",
            Self::Beneficiaries => "beneficiary",
            Self::Schedules => "schedule",
        }
    }
}

/// A viewer: ADMIN (who sees everything) or a THERAPIST by user id.
struct Viewer {
    therapist: Option<String>,
    token: String,
}

impl Viewer {
    fn who(&self) -> &str {
        if self.therapist.is_some() {
            "a THERAPIST"
        } else {
            "ADMIN"
        }
    }
}

impl Clinic {
    /// Every row of a model, in creation order.
    fn all(&self, rows: Rows) -> Vec<String> {
        match rows {
            Rows::Enrollments => self.enrollments.iter().map(|e| e.0.clone()).collect(),
            Rows::Sessions => self.sessions.iter().map(|s| s.0.clone()).collect(),
            Rows::Beneficiaries => self.beneficiaries.clone(),
            Rows::Schedules => self.schedules.iter().map(|s| s.0.clone()).collect(),
        }
    }

    /// The rows of a model `viewer` may see.
    fn visible(&self, rows: Rows, viewer: &Viewer) -> BTreeSet<String> {
        let Some(therapist) = viewer.therapist.as_deref() else {
            return self.all(rows).into_iter().collect();
        };
        match rows {
            Rows::Enrollments => self.enrollments_of(therapist),
            Rows::Sessions => self.sessions_of(therapist),
            Rows::Beneficiaries => self.beneficiaries_of(therapist),
            Rows::Schedules => self.schedules_of(therapist),
        }
    }
}

/// A clinic of two therapists, and its three viewers: ADMIN, each therapist.
async fn scoped_clinic() -> (TestApp, Clinic, Vec<Viewer>) {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let t1_id = app.user_id("therapist").await;
    let t1 = app.login("therapist").await;
    let created = ok(
        &app,
        &admin,
        "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
        json!({ "i": { "email": "therapist2@alawael.local", "name": "Huda Al-Qahtani",
                       "role": "THERAPIST", "password": PASSWORD } }),
        "createUser",
    )
    .await;
    let t2_id = id_of(&created);
    let t2 = app.login("therapist2").await;
    let clinic = build_clinic(&app, &admin, (&t1_id, &t1), (&t2_id, &t2)).await;
    let viewers = vec![
        // ADMIN first: every row exists.
        Viewer {
            therapist: None,
            token: admin,
        },
        Viewer {
            therapist: Some(t1_id),
            token: t1,
        },
        Viewer {
            therapist: Some(t2_id),
            token: t2,
        },
    ];
    (app, clinic, viewers)
}

/// One model's rows, for every viewer: in the list and its count, the
/// singular query, `node` and `nodes`, exactly the visible ones.
async fn assert_rows_scoped(rows: Rows) {
    let (app, clinic, viewers) = scoped_clinic().await;
    let (list, single) = (rows.list(), rows.single());
    let all = clinic.all(rows);
    let single_query = format!("query($id: ID!) {{ {single}(id: $id) {{ id }} }}");
    for viewer in &viewers {
        let (who, token) = (viewer.who(), viewer.token.as_str());
        let visible = clinic.visible(rows, viewer);
        assert!(
            !visible.is_empty() && (viewer.therapist.is_none() || visible.len() < all.len()),
            "the clinic gives {who} some {list} and hides some"
        );

        let (ids, total) = listed(&app, token, list, None).await;
        assert_eq!(ids, visible, "{who}: {list}");
        assert_eq!(total, visible.len() as u64, "{who}: {list} totalCount");

        for id in &all {
            let body = app
                .gql(Some(token), &single_query, json!({ "id": id }))
                .await;
            let node = app
                .gql(
                    Some(token),
                    "query($id: ID!) { node(id: $id) { id } }",
                    json!({ "id": id }),
                )
                .await;
            if visible.contains(id) {
                assert_eq!(
                    body["data"][single]["id"],
                    id.as_str(),
                    "{who}: {single}: {body}"
                );
                assert_eq!(
                    node["data"]["node"]["id"],
                    id.as_str(),
                    "{who}: node: {node}"
                );
            } else {
                assert_eq!(error_code(&body), "NOT_FOUND", "{who}: {single}: {body}");
                assert_eq!(error_code(&node), "NOT_FOUND", "{who}: node: {node}");
            }
        }

        let nodes = ok(
            &app,
            token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": all }),
            "nodes",
        )
        .await;
        for (i, id) in all.iter().enumerate() {
            if visible.contains(id) {
                assert_eq!(nodes[i]["id"], id.as_str(), "{who}: nodes: {nodes}");
            } else {
                assert!(
                    nodes[i].is_null(),
                    "{who}: nodes shows a hidden {single}: {nodes}"
                );
            }
        }

        // A filter naming the other therapist cannot reach around the scope.
        if let (Some(me), Rows::Enrollments | Rows::Sessions) = (&viewer.therapist, rows) {
            let other = viewers
                .iter()
                .filter_map(|v| v.therapist.clone())
                .find(|t| t != me)
                .unwrap();
            let (ids, total) =
                listed(&app, token, list, Some(json!({ "therapistId": other }))).await;
            assert!(
                ids.is_empty() && total == 0,
                "{who}: {list} of another therapist"
            );
        }
    }
}

#[tokio::test]
async fn a_therapist_sees_no_enrollment_of_another_therapist_in_lists_counts_reads_or_nodes() {
    assert_rows_scoped(Rows::Enrollments).await;
}

#[tokio::test]
async fn a_therapist_sees_no_session_of_another_therapist_in_lists_counts_reads_or_nodes() {
    assert_rows_scoped(Rows::Sessions).await;
}

#[tokio::test]
async fn a_therapist_sees_only_the_beneficiaries_they_treat_in_lists_counts_reads_and_nodes() {
    assert_rows_scoped(Rows::Beneficiaries).await;
}

#[tokio::test]
async fn a_therapist_sees_only_bookings_they_made_or_that_book_them() {
    assert_rows_scoped(Rows::Schedules).await;
}

#[tokio::test]
async fn a_programme_lists_only_the_enrollments_its_reader_may_see() {
    let (app, clinic, viewers) = scoped_clinic().await;
    for viewer in &viewers {
        let (who, token) = (viewer.who(), viewer.token.as_str());
        let visible = clinic.visible(Rows::Enrollments, viewer);
        // Programmes are public; their enrolments follow the enrolment scope,
        // in the list of programmes and in a single programme alike.
        let programs = ok(
            &app,
            token,
            "{ disabilityPrograms(first: 20) { totalCount nodes { id enrollments(first: 20) { totalCount nodes { id } } } } }",
            json!({}),
            "disabilityPrograms",
        )
        .await;
        assert_eq!(programs["totalCount"], clinic.programs.len(), "{who}");
        for program in programs["nodes"].as_array().unwrap() {
            let pid = id_of(program);
            let wanted: BTreeSet<String> = clinic
                .enrollments
                .iter()
                .filter(|e| e.1 == pid && visible.contains(&e.0))
                .map(|e| e.0.clone())
                .collect();
            assert_eq!(
                set_of(&program["enrollments"]),
                wanted,
                "{who}: programme.enrollments"
            );
            assert_eq!(program["enrollments"]["totalCount"], wanted.len(), "{who}");
            let single = ok(
                &app,
                token,
                "query($id: ID!) { disabilityProgram(id: $id) { enrollments { totalCount nodes { id } } } }",
                json!({ "id": pid }),
                "disabilityProgram",
            )
            .await;
            assert_eq!(
                set_of(&single["enrollments"]),
                wanted,
                "{who}: disabilityProgram.enrollments"
            );
            assert_eq!(single["enrollments"]["totalCount"], wanted.len(), "{who}");
        }
    }
}

#[tokio::test]
async fn a_beneficiary_lists_only_the_enrollments_and_sessions_its_reader_may_see() {
    let (app, clinic, viewers) = scoped_clinic().await;
    for viewer in &viewers {
        let (who, token) = (viewer.who(), viewer.token.as_str());
        let enrollments_seen = clinic.visible(Rows::Enrollments, viewer);
        let sessions_seen = clinic.visible(Rows::Sessions, viewer);
        // The shared beneficiary is treated by both therapists: each sees
        // only their own part of the record.
        for beneficiary in clinic.visible(Rows::Beneficiaries, viewer) {
            let found = ok(
                &app,
                token,
                "query($id: ID!) { beneficiary(id: $id) {
                    enrollments(first: 20) { totalCount nodes { id } }
                    sessions(first: 20) { totalCount nodes { id } } } }",
                json!({ "id": beneficiary }),
                "beneficiary",
            )
            .await;
            let enrollments: BTreeSet<String> = clinic
                .enrollments
                .iter()
                .filter(|e| e.2 == beneficiary && enrollments_seen.contains(&e.0))
                .map(|e| e.0.clone())
                .collect();
            let sessions: BTreeSet<String> = clinic
                .sessions
                .iter()
                .filter(|s| s.1 == beneficiary && sessions_seen.contains(&s.0))
                .map(|s| s.0.clone())
                .collect();
            assert_eq!(
                set_of(&found["enrollments"]),
                enrollments,
                "{who}: beneficiary.enrollments"
            );
            assert_eq!(
                found["enrollments"]["totalCount"],
                enrollments.len(),
                "{who}"
            );
            assert_eq!(
                set_of(&found["sessions"]),
                sessions,
                "{who}: beneficiary.sessions"
            );
            assert_eq!(found["sessions"]["totalCount"], sessions.len(), "{who}");
        }
    }
}
