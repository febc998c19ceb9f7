//! Relay pagination: forwards and backwards without gaps or duplicates,
//! argument checks, tampered cursors, and the round trips of a page.

use std::collections::HashSet;

use alawael::domain::{Email, Money};
use alawael::models::asset::record::{AssetCategory, AssetForCreate, AssetStatus};
use serde_json::{Value, json};

use crate::support::helpers::{TestApp, error_code, spawn_app};

async fn insert_assets(app: &TestApp, n: usize, assign: bool) {
    let mut users = Vec::new();
    for who in ["admin", "manager", "therapist", "user"] {
        let email = Email::parse(&format!("{who}@alawael.local")).unwrap();
        users.push(
            app.state
                .db
                .users()
                .find_by_email(&email)
                .await
                .unwrap()
                .unwrap()
                .id,
        );
    }
    for i in 0..n {
        app.state
            .db
            .assets()
            .create(AssetForCreate {
                name: format!("Asset {:03}", (i * 37) % n),
                category: AssetCategory::Equipment,
                serial_number: Some(format!("P-{i:04}")),
                value: Money::parse(1000 + (i as i64 % 7) * 100, "SAR").unwrap(),
                status: AssetStatus::InUse,
                location: None,
                purchase_date: None,
                warranty_until: None,
                assigned_to: assign.then(|| users[i % users.len()]),
            })
            .await
            .unwrap();
    }
}

const PAGE: &str =
    "query($first: Int, $after: String, $last: Int, $before: String, $order: AssetOrder) {
  assets(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name } }
  } }";

fn ids(body: &Value) -> Vec<String> {
    body["data"]["assets"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn paging_forwards_and_backwards_visits_every_row_once_in_order() {
    let app = spawn_app().await;
    insert_assets(&app, 25, false).await;
    let token = app.login("user").await;
    for order in [
        json!({ "field": "NAME" }),
        json!({ "field": "VALUE", "direction": "DESC" }),
        json!({ "field": "CREATED_AT" }),
    ] {
        let mut forward = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let body = app
                .gql(
                    Some(&token),
                    PAGE,
                    json!({ "first": 10, "after": after, "order": order }),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
            forward.extend(ids(&body));
            let info = &body["data"]["assets"]["pageInfo"];
            assert_eq!(info["hasPreviousPage"], after.is_some());
            if info["hasNextPage"] == false {
                break;
            }
            after = info["endCursor"].as_str().map(str::to_string);
        }
        assert_eq!(forward.len(), 25, "{order}");
        assert_eq!(
            forward.iter().collect::<HashSet<_>>().len(),
            25,
            "no duplicates"
        );

        let mut backward = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let body = app
                .gql(
                    Some(&token),
                    PAGE,
                    json!({ "last": 10, "before": before, "order": order }),
                )
                .await;
            let mut page = ids(&body);
            page.extend(backward);
            backward = page;
            let info = &body["data"]["assets"]["pageInfo"];
            if info["hasPreviousPage"] == false {
                break;
            }
            before = info["startCursor"].as_str().map(str::to_string);
        }
        assert_eq!(backward, forward, "backwards gives the same order: {order}");
    }
}

#[tokio::test]
async fn a_page_stays_stable_when_rows_are_inserted_before_it() {
    let app = spawn_app().await;
    insert_assets(&app, 10, false).await;
    let token = app.login("admin").await;
    let first = app.gql(Some(&token), PAGE, json!({ "first": 5 })).await;
    let cursor = first["data"]["assets"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let expected = ids(&app
        .gql(Some(&token), PAGE, json!({ "first": 5, "after": cursor }))
        .await);
    app.create_asset(&token, "AAA first by name", None).await;
    let again = ids(&app
        .gql(Some(&token), PAGE, json!({ "first": 5, "after": cursor }))
        .await);
    assert_eq!(again, expected);
}

#[tokio::test]
async fn page_arguments_out_of_bounds_or_tampered_are_bad_user_input() {
    let app = spawn_app().await;
    insert_assets(&app, 3, false).await;
    let token = app.login("admin").await;
    let body = app.gql(Some(&token), PAGE, json!({ "first": 2 })).await;
    let cursor = body["data"]["assets"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = cursor.as_bytes().to_vec();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let cases = [
        ("first over the cap", json!({ "first": 101 })),
        ("first far over the cap", json!({ "first": 99999999 })),
        ("negative first", json!({ "first": -1 })),
        ("negative last", json!({ "last": -5 })),
        ("first and last", json!({ "first": 1, "last": 1 })),
        ("tampered cursor", json!({ "first": 1, "after": tampered })),
        ("garbage cursor", json!({ "first": 1, "after": "abc" })),
        (
            "cursor of another ordering",
            json!({ "first": 1, "after": cursor, "order": { "field": "VALUE" } }),
        ),
    ];
    for (name, vars) in cases {
        let body = app.gql(Some(&token), PAGE, vars).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
    }
    let ok = app.gql(Some(&token), PAGE, json!({ "first": 100 })).await;
    assert!(ok["errors"].is_null());
}

#[tokio::test]
async fn a_page_of_100_assets_with_assignees_and_total_costs_3_database_commands() {
    // Counts what computing a page costs; answers from the response cache
    // cost none (tests/api/response_cache.rs).
    let app = crate::support::helpers::spawn_app_with(|s| {
        s.server.background_workers = false;
        s.response_cache.enabled = false;
    })
    .await;
    insert_assets(&app, 120, true).await;
    let token = app.login("manager").await;
    let query = "{ assets(first: 100) { totalCount edges { cursor node { id name assignedTo { id name } } } } }";
    // Warm-up: the first request of a connection may carry driver set-up.
    app.gql(Some(&token), query, json!({})).await;
    let before = app.db_commands();
    let body = app.gql(Some(&token), query, json!({})).await;
    let used = app.db_commands() - before;
    assert!(body["errors"].is_null(), "{body}");
    let edges = body["data"]["assets"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 100);
    assert!(
        edges
            .iter()
            .all(|e| !e["node"]["assignedTo"]["name"].is_null())
    );
    assert_eq!(body["data"]["assets"]["totalCount"], 120);
    // The page, the users batch, the count (the caller's account is cached).
    assert_eq!(used, 3, "database commands for one page");

    let without_total = "{ assets(first: 100) { edges { node { name assignedTo { name } } } } }";
    let before = app.db_commands();
    app.gql(Some(&token), without_total, json!({})).await;
    assert_eq!(
        app.db_commands() - before,
        2,
        "no count unless totalCount is asked for"
    );
    let before = app.db_commands();
    let typename = app.gql(Some(&token), "{ __typename }", json!({})).await;
    assert_eq!(typename["data"]["__typename"], "Query");
    assert_eq!(
        app.db_commands() - before,
        0,
        "a request that reads nothing costs nothing"
    );
}

#[tokio::test]
async fn without_command_events_the_same_page_is_counted_as_3_operations() {
    // Production turns per-command events off (the driver copies every
    // reply for them); pool checkouts still count each operation.
    let app = crate::support::helpers::spawn_app_with(|s| {
        s.server.background_workers = false;
        s.response_cache.enabled = false;
        s.database.command_events = false;
    })
    .await;
    insert_assets(&app, 120, true).await;
    let token = app.login("manager").await;
    let query = "{ assets(first: 100) { totalCount edges { cursor node { id name assignedTo { id name } } } } }";
    app.gql(Some(&token), query, json!({})).await;
    let before = app.state.db.operations();
    let body = app.gql(Some(&token), query, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["assets"]["edges"].as_array().map(Vec::len),
        Some(100)
    );
    assert_eq!(
        app.state.db.operations() - before,
        3,
        "operations for one page"
    );
    assert_eq!(app.db_commands(), 0, "no command events were delivered");
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("alawael_db_operations_total"), "{text}");
    assert!(text.contains("alawael_db_operation_duration_seconds_bucket"));
}

#[tokio::test]
async fn rows_keep_the_selection_order_and_nodes_load_assignees_in_one_batch() {
    let app = crate::support::helpers::spawn_app_with(|s| {
        s.server.background_workers = false;
        s.response_cache.enabled = false;
    })
    .await;
    insert_assets(&app, 30, true).await;
    let token = app.login("manager").await;
    // A resolver that waits (the assignee) stays ahead of one that does not.
    let query = "{ assets(first: 30) { nodes { assignedTo { name id } name } } }";
    app.gql(Some(&token), query, json!({})).await;
    let before = app.db_commands();
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert_eq!(
        app.db_commands() - before,
        2,
        "the page and the users batch"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    let nodes = body["data"]["assets"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 30, "{text}");
    assert!(nodes.iter().all(|n| n["assignedTo"]["id"].is_string()));
    let first = text
        .find("\"assignedTo\":{\"name\":")
        .expect("assignee first");
    assert!(first < text.find("\"name\":\"Asset").unwrap(), "{text}");

    // Fragments and a response key given twice merge as before.
    let merged = app
        .gql(
            Some(&token),
            "{ assets(first: 2) { edges { node { assignedTo { id } ... on Asset { assignedTo { name } } n: name n: name } } } }",
            json!({}),
        )
        .await;
    assert!(merged["errors"].is_null(), "{merged}");
    let node = &merged["data"]["assets"]["edges"][0]["node"];
    assert!(node["assignedTo"]["id"].is_string() && node["assignedTo"]["name"].is_string());
    assert!(node["n"].as_str().unwrap().starts_with("Asset"));
}

#[tokio::test]
async fn rows_resolved_in_place_answer_and_fail_as_async_graphql_itself_does() {
    let app = crate::support::helpers::spawn_app_with(|s| {
        s.server.background_workers = false;
        s.response_cache.enabled = false;
    })
    .await;
    insert_assets(&app, 8, true).await;
    let token = app.login("therapist").await;
    // Another user's email is refused to a therapist: a failed non-null
    // field inside rows. Fragments send rows down async-graphql's own path.
    let in_place = "{ assets(first: 8) { nodes { name assignedTo { id email } } } }";
    let library = "{ assets(first: 8) { nodes { ... on Asset { name assignedTo { ... on User { id email } } } } } }";
    let ours = app.gql(Some(&token), in_place, json!({})).await;
    let theirs = app.gql(Some(&token), library, json!({})).await;
    assert_eq!(ours["data"], theirs["data"], "{ours}\n{theirs}");
    let errors = |body: &Value| {
        let mut found: Vec<String> = body["errors"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|e| format!("{} {} {}", e["path"], e["extensions"]["code"], e["message"]))
            .collect();
        found.sort();
        found
    };
    assert!(!errors(&ours).is_empty(), "{ours}");
    assert!(
        errors(&ours).iter().all(|e| e.contains("FORBIDDEN")),
        "{ours}"
    );
    assert_eq!(errors(&ours), errors(&theirs));
}

#[tokio::test]
async fn fields_read_directly_answer_as_their_resolvers_do() {
    let app = crate::support::helpers::spawn_app_with(|s| {
        s.server.background_workers = false;
        s.response_cache.enabled = false;
    })
    .await;
    insert_assets(&app, 6, true).await;
    let token = app.login("admin").await;
    let created = app
        .gql(
            Some(&token),
            "mutation($i: CreateAssetInput!) { createAsset(input: $i) { id } }",
            json!({ "i": { "name": "Hoist", "category": "MEDICAL", "serialNumber": "H-1",
                "location": "Hall B", "value": { "amountMinor": 150000, "currency": "SAR" } } }),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    // Every field a type reads directly (`Plain`), with an alias and
    // `__typename`; fragments send the same selection through the
    // resolvers async-graphql derives.
    let fields = "__typename id label: name serialNumber location createdAt updatedAt
        value { amountMinor currency } assignedTo { __typename id name }";
    let in_place = format!("{{ assets(first: 10) {{ edges {{ cursor node {{ {fields} }} }} }} }}");
    let library = format!(
        "{{ assets(first: 10) {{ edges {{ ... on AssetEdge {{ cursor node {{ ... on Asset {{ {fields} }} }} }} }} }} }}"
    );
    // A key selected twice is merged by async-graphql as values, so that
    // operation is answered without rows written as text.
    let merged =
        format!("{{ assets(first: 10) {{ edges {{ cursor node {{ {fields} }} cursor }} }} }}");
    let ours = app.gql(Some(&token), &in_place, json!({})).await;
    let theirs = app.gql(Some(&token), &library, json!({})).await;
    let as_values = app.gql(Some(&token), &merged, json!({})).await;
    assert!(ours["errors"].is_null(), "{ours}");
    assert_eq!(ours, theirs);
    assert_eq!(ours, as_values);
    let edges = ours["data"]["assets"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 7);
    assert!(
        edges
            .iter()
            .any(|e| e["node"]["serialNumber"] == "H-1" && e["node"]["location"] == "Hall B")
    );
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["assignedTo"].is_null()
                || e["node"]["assignedTo"]["name"].is_string())
    );
}
