//! The list contract every model keeps, checked by one routine over a table
//! of models: Relay paging both ways in every order, `totalCount`, a
//! filter, tampered cursors, `node`/`nodes` and the singular query, ids of
//! another type — and the row scope of a THERAPIST, which must hold alike in
//! lists, counts, single reads, `node`/`nodes` and nested lists.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};

use alawael::domain::{GlobalId, NodeKind};
use bson::oid::ObjectId;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::clinic::{
    ENROLL, RECORD, SET_STATUS, active_enrollment, create_beneficiary, create_program, ok,
    record_session,
};
use crate::helpers::{PASSWORD, TestApp, error_code, spawn_app};

/// How many rows each model's list gets.
const ROWS: usize = 7;

/// What a seeder made: every row of the list, a filter, and the rows it matches.
struct Seeded {
    ids: Vec<String>,
    filter: Value,
    matching: Vec<String>,
}

/// Creates the rows of one list through the API as ADMIN.
type Seeder = for<'a> fn(&'a TestApp, &'a str) -> BoxFuture<'a, Seeded>;

/// An order field: its SDL name, the node fields that show its sort key, and
/// where the key sits in a node (a JSON pointer).
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

/// One model as the contract sees it. `type_name` also names its
/// `<type>Filter`, `<type>Order` and `<type>OrderField` in the SDL.
struct ModelContract {
    type_name: &'static str,
    kind: NodeKind,
    list: &'static str,
    single: &'static str,
    orders: &'static [OrderKey],
    seed: Seeder,
}

const PROGRAMS: ModelContract = ModelContract {
    type_name: "DisabilityProgram",
    kind: NodeKind::DisabilityProgram,
    list: "disabilityPrograms",
    single: "disabilityProgram",
    orders: &[
        key("NAME", "name", "/name"),
        key("CREATED_AT", "createdAt", "/createdAt"),
        key("UPDATED_AT", "updatedAt", "/updatedAt"),
        key("CAPACITY", "capacity", "/capacity"),
    ],
    seed: seed_programs,
};

const BENEFICIARIES: ModelContract = ModelContract {
    type_name: "Beneficiary",
    kind: NodeKind::Beneficiary,
    list: "beneficiaries",
    single: "beneficiary",
    orders: &[
        key("FULL_NAME", "fullName", "/fullName"),
        key("CREATED_AT", "createdAt", "/createdAt"),
        key("UPDATED_AT", "updatedAt", "/updatedAt"),
        key("DATE_OF_BIRTH", "dateOfBirth", "/dateOfBirth"),
    ],
    seed: seed_beneficiaries,
};

const ENROLLMENTS: ModelContract = ModelContract {
    type_name: "Enrollment",
    kind: NodeKind::Enrollment,
    list: "enrollments",
    single: "enrollment",
    orders: &[
        key("START_DATE", "startDate", "/startDate"),
        key("CREATED_AT", "createdAt", "/createdAt"),
        key("UPDATED_AT", "updatedAt", "/updatedAt"),
    ],
    seed: seed_enrollments,
};

const SESSIONS: ModelContract = ModelContract {
    type_name: "TherapySession",
    kind: NodeKind::TherapySession,
    list: "therapySessions",
    single: "therapySession",
    orders: &[
        key("STARTED_AT", "startedAt", "/startedAt"),
        key("CREATED_AT", "createdAt", "/createdAt"),
    ],
    seed: seed_sessions,
};

const SCHEDULES: ModelContract = ModelContract {
    type_name: "Schedule",
    kind: NodeKind::Schedule,
    list: "schedules",
    single: "schedule",
    orders: &[
        key("START_DATE", "startDate", "/startDate"),
        key("CREATED_AT", "createdAt", "/createdAt"),
    ],
    seed: seed_schedules,
};

const ASSETS: ModelContract = ModelContract {
    type_name: "Asset",
    kind: NodeKind::Asset,
    list: "assets",
    single: "asset",
    orders: &[
        key("NAME", "name", "/name"),
        key("CREATED_AT", "createdAt", "/createdAt"),
        key("UPDATED_AT", "updatedAt", "/updatedAt"),
        key("VALUE", "value { amountMinor }", "/value/amountMinor"),
    ],
    seed: seed_assets,
};

/// Every model the contract covers.
const MODELS: &[&ModelContract] = &[
    &PROGRAMS,
    &BENEFICIARIES,
    &ENROLLMENTS,
    &SESSIONS,
    &SCHEDULES,
    &ASSETS,
];

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
        Seeded {
            ids,
            filter: json!({ "category": ["SPEECH"] }),
            matching,
        }
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
        Seeded {
            ids,
            filter: json!({ "severity": ["SEVERE"] }),
            matching,
        }
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
        Seeded {
            ids,
            filter: json!({ "status": ["ACTIVE"] }),
            matching,
        }
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
        Seeded {
            ids,
            filter: json!({ "attendance": ["ABSENT"] }),
            matching,
        }
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
        Seeded {
            ids,
            filter: json!({ "resourceId": "ROOM-B" }),
            matching,
        }
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
        Seeded {
            ids,
            filter: json!({ "category": ["IT"] }),
            matching,
        }
    })
}

// ---------------------------------------------------------------------------
// The routine
// ---------------------------------------------------------------------------

impl ModelContract {
    /// The list query with every sort key selected.
    fn page_query(&self) -> String {
        let keys: Vec<&str> = self.orders.iter().map(|o| o.select).collect();
        format!(
            "query($first: Int, $after: String, $last: Int, $before: String, $order: {t}Order, $filter: {t}Filter) {{
               {list}(first: $first, after: $after, last: $last, before: $before, orderBy: $order, filter: $filter) {{
                 totalCount
                 pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
                 edges {{ cursor node {{ id {keys} }} }}
               }} }}",
            t = self.type_name,
            list = self.list,
            keys = keys.join(" "),
        )
    }

    async fn page(&self, app: &TestApp, token: &str, vars: Value) -> Value {
        let body = app.gql(Some(token), &self.page_query(), vars.clone()).await;
        assert!(
            body["errors"].is_null(),
            "{} with {vars}: {body}",
            self.list
        );
        body["data"][self.list].clone()
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
        (Value::Number(x), Value::Number(y)) => x.as_f64().unwrap().total_cmp(&y.as_f64().unwrap()),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => panic!("sort keys of different kinds: {a} and {b}"),
    }
}

/// Walks the whole list with `first: 2` and then with `last: 2`; checks
/// that both visit every row once, in the same, correct order.
async fn walk(
    app: &TestApp,
    token: &str,
    model: &ModelContract,
    seeded: &Seeded,
    order: &OrderKey,
    direction: &str,
) {
    let label = format!("{} by {} {direction}", model.list, order.field);
    let order_arg = json!({ "field": order.field, "direction": direction });
    let total = seeded.ids.len();

    let mut forward: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..=total {
        let page = model
            .page(
                app,
                token,
                json!({ "first": 2, "after": after, "order": order_arg }),
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
        let by_id = object_id(a["id"].as_str().unwrap()).cmp(&object_id(b["id"].as_str().unwrap()));
        let step = by_key.then(by_id);
        let expected = if direction == "ASC" {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        assert_eq!(step, expected, "{label}: {a} then {b}");
    }

    let mut backward: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..=total {
        let page = model
            .page(
                app,
                token,
                json!({ "last": 2, "before": before, "order": order_arg }),
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
fn foreign_id(model: &ModelContract, global: &str) -> String {
    let other = if model.kind == NodeKind::Asset {
        NodeKind::Schedule
    } else {
        NodeKind::Asset
    };
    GlobalId::new(other, object_id(global)).encode()
}

/// The whole contract for one model.
async fn check(model: &ModelContract) {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let seeded = (model.seed)(&app, &admin).await;
    assert_eq!(
        seeded.ids.len(),
        ROWS,
        "{}: the seeder made its rows",
        model.list
    );

    // Paging in every order and direction.
    for order in model.orders {
        for direction in ["ASC", "DESC"] {
            walk(&app, &admin, model, &seeded, order, direction).await;
        }
    }
    // The default order pages the same way.
    let all = model.page(&app, &admin, json!({ "first": 100 })).await;
    assert_eq!(all["totalCount"], ROWS);
    assert_eq!(all["pageInfo"]["hasNextPage"], false);

    // A filter: the right subset, and its count.
    assert!(
        !seeded.matching.is_empty() && seeded.matching.len() < ROWS,
        "{}: the filter picks a proper subset",
        model.list
    );
    let filtered = model
        .page(
            &app,
            &admin,
            json!({ "first": 100, "filter": seeded.filter }),
        )
        .await;
    assert_eq!(
        ids_of(&nodes_of(&filtered))
            .into_iter()
            .collect::<BTreeSet<_>>(),
        seeded.matching.iter().cloned().collect::<BTreeSet<_>>(),
        "{} filtered by {}",
        model.list,
        seeded.filter
    );
    assert_eq!(
        filtered["totalCount"],
        seeded.matching.len(),
        "{}",
        model.list
    );
    let narrow = model
        .page(&app, &admin, json!({ "first": 1, "filter": seeded.filter }))
        .await;
    assert_eq!(
        narrow["totalCount"],
        seeded.matching.len(),
        "the count ignores the window"
    );

    // Cursors: tampered, from another ordering, from another list.
    let first = model.page(&app, &admin, json!({ "first": 2 })).await;
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    let (payload, signature) = cursor.split_once('.').unwrap();
    let mut bytes = payload.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{signature}", String::from_utf8(bytes).unwrap());
    let other_order = model.orders.last().unwrap().field;
    let users = ok(
        &app,
        &admin,
        "{ users(first: 1) { pageInfo { endCursor } } }",
        json!({}),
        "users",
    )
    .await;
    let users_cursor = users["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    for (name, vars) in [
        ("tampered", json!({ "first": 2, "after": tampered })),
        (
            "tampered, backwards",
            json!({ "last": 2, "before": tampered }),
        ),
        ("not a cursor", json!({ "first": 2, "after": "garbage" })),
        (
            "another ordering",
            json!({ "first": 2, "after": cursor, "order": { "field": other_order, "direction": "DESC" } }),
        ),
        ("another list", json!({ "first": 2, "after": users_cursor })),
    ] {
        let body = app.gql(Some(&admin), &model.page_query(), vars).await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{}: {name}: {body}",
            model.list
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
    assert_eq!(node["__typename"], model.type_name);
    assert_eq!(node["id"], row.as_str());
    let foreign = foreign_id(model, row);
    let nodes = ok(
        &app,
        &admin,
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
        json!({ "ids": [row, foreign, other_row, "not-an-id"] }),
        "nodes",
    )
    .await;
    assert_eq!(nodes[0]["id"], row.as_str(), "{nodes}");
    assert_eq!(nodes[0]["__typename"], model.type_name);
    assert!(nodes[1].is_null(), "another type's id is null: {nodes}");
    assert_eq!(nodes[2]["id"], other_row.as_str(), "{nodes}");
    assert!(nodes[3].is_null(), "{nodes}");
    let single = format!("query($id: ID!) {{ {}(id: $id) {{ id }} }}", model.single);
    let one = ok(&app, &admin, &single, json!({ "id": row }), model.single).await;
    assert_eq!(one["id"], row.as_str());

    // Ids of another type, or of nothing: NOT_FOUND.
    let admin_id = app.user_id("admin").await;
    let missing = GlobalId::new(model.kind, ObjectId::new()).encode();
    for (name, id) in [
        ("the same database id as another type", foreign.as_str()),
        ("a user's id", admin_id.as_str()),
        ("a row that does not exist", missing.as_str()),
        ("not an id", "not-an-id"),
    ] {
        let body = app.gql(Some(&admin), &single, json!({ "id": id })).await;
        assert_eq!(
            error_code(&body),
            "NOT_FOUND",
            "{}: {name}: {body}",
            model.single
        );
        assert!(body["data"].is_null(), "{body}");
    }
    let body = app
        .gql(
            Some(&admin),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": foreign }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "node of {}: {body}",
        model.list
    );
}

#[tokio::test]
async fn programmes_keep_the_list_contract() {
    check(&PROGRAMS).await;
}

#[tokio::test]
async fn beneficiaries_keep_the_list_contract() {
    check(&BENEFICIARIES).await;
}

#[tokio::test]
async fn enrollments_keep_the_list_contract() {
    check(&ENROLLMENTS).await;
}

#[tokio::test]
async fn therapy_sessions_keep_the_list_contract() {
    check(&SESSIONS).await;
}

#[tokio::test]
async fn schedules_keep_the_list_contract() {
    check(&SCHEDULES).await;
}

#[tokio::test]
async fn assets_keep_the_list_contract() {
    check(&ASSETS).await;
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

#[tokio::test]
async fn the_contract_table_names_every_order_field_and_query_of_the_sdl() {
    let sdl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    for model in MODELS {
        let declared: Vec<&str> = model.orders.iter().map(|o| o.field).collect();
        assert_eq!(
            sdl_enum(&sdl, &format!("{}OrderField", model.type_name)),
            declared,
            "{}",
            model.type_name
        );
        for name in [model.list, model.single] {
            assert!(
                sdl.contains(&format!("\t{name}(")),
                "Query.{name} is in the SDL"
            );
        }
        for input in ["Filter", "Order"] {
            assert!(sdl.contains(&format!("input {}{input} {{", model.type_name)));
        }
    }
    // Every clinical node type is covered.
    let covered: HashSet<&str> = MODELS.iter().map(|m| m.type_name).collect();
    for name in [
        "DisabilityProgram",
        "Beneficiary",
        "Enrollment",
        "TherapySession",
        "Schedule",
    ] {
        assert!(covered.contains(name), "{name} is in the table");
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
