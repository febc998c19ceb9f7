//! Assets end to end: create, update, delete, validation, audit, search.

use serde_json::json;

use crate::support::helpers::{error_code, spawn_app};

const CREATE: &str = "mutation($i: CreateAssetInput!) { createAsset(input: $i) { id name serialNumber status value { amountMinor currency } purchaseDate warrantyUntil location assignedTo { name } } }";
const UPDATE: &str = "mutation($id: ID!, $i: UpdateAssetInput!) { updateAsset(id: $id, input: $i) { id name location serialNumber assignedTo { name } value { amountMinor } } }";

fn minimal(name: &str) -> serde_json::Value {
    json!({ "name": name, "category": "EQUIPMENT", "value": { "amountMinor": 250000, "currency": "SAR" } })
}

#[tokio::test]
async fn an_asset_is_created_with_only_the_required_fields_and_audited() {
    let app = spawn_app().await;
    let token = app.login("manager").await;
    let body = app
        .gql(
            Some(&token),
            CREATE,
            json!({ "i": minimal("Parallel bars") }),
        )
        .await;
    let asset = &body["data"]["createAsset"];
    assert_eq!(asset["status"], "AVAILABLE", "{body}");
    assert_eq!(asset["value"]["amountMinor"], 250000);
    let id = alawael::domain::GlobalId::decode(asset["id"].as_str().unwrap())
        .unwrap()
        .id;
    let entries = app.audit_for("Asset", id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "asset.create");
    assert!(entries[0].request_id.is_some());
    assert!(
        entries[0]
            .changes
            .iter()
            .any(|c| c.field == "name" && c.after.as_str() == Some("Parallel bars"))
    );
    assert_eq!(app.state.db.audit().verify().await.unwrap(), None);
}

#[tokio::test]
async fn amounts_are_64_bit_integers() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let body = app
        .gql(Some(&token), "mutation { createAsset(input: { name: \"Campus\", category: VEHICLE, value: { amountMinor: 9007199254740991, currency: \"sar\" } }) { value { amountMinor currency } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["createAsset"]["value"]["amountMinor"], 9007199254740991_i64,
        "{body}"
    );
    assert_eq!(body["data"]["createAsset"]["value"]["currency"], "SAR");
}

#[tokio::test]
async fn bad_input_is_refused_with_bad_user_input_and_writes_nothing() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let user = app.user_id("user").await;
    let mut bad = vec![];
    let mut with = |field: &str, value: serde_json::Value| {
        let mut i = minimal("Treadmill");
        i[field] = value;
        bad.push((field.to_string(), i));
    };
    with("value", json!({ "amountMinor": -1, "currency": "SAR" }));
    with("value", json!({ "amountMinor": 1, "currency": "XYZ" }));
    with("name", json!("   "));
    with("name", json!("x".repeat(201)));
    with("serialNumber", json!("{\"$ne\": null}"));
    with(
        "assignedToId",
        json!("QXNzZXQ6NmIwYTQzMTk2YWY2ZDc1NzRkNDdlNDcz"),
    );
    let mut dates = minimal("Hoist");
    dates["purchaseDate"] = json!("2025-05-01");
    dates["warrantyUntil"] = json!("2024-05-01");
    bad.push(("warrantyUntil".into(), dates));
    for (field, input) in bad {
        let body = app.gql(Some(&token), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert!(
            body["errors"][0]["extensions"]["field"]
                .as_str()
                .unwrap()
                .starts_with("input."),
            "{body}"
        );
    }
    let count = app
        .gql(Some(&token), "{ assets { totalCount } }", json!({}))
        .await;
    assert_eq!(
        count["data"]["assets"]["totalCount"], 0,
        "nothing was written"
    );
    let wrong_type = app.gql(Some(&token), CREATE, json!({ "i": { "name": "A", "category": "SPACESHIP", "value": { "amountMinor": 1, "currency": "SAR" } } })).await;
    assert_eq!(error_code(&wrong_type), "GRAPHQL_VALIDATION_FAILED");
    let assignee = app.gql(Some(&token), CREATE, json!({ "i": { "name": "A", "category": "IT", "value": { "amountMinor": 1, "currency": "SAR" }, "assignedToId": user } })).await;
    assert!(
        assignee["errors"].is_null(),
        "a real assignee is accepted: {assignee}"
    );
}

#[tokio::test]
async fn a_duplicate_serial_number_is_a_conflict() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    app.create_asset(&token, "Laptop one", Some("SN-1")).await;
    let mut input = minimal("Laptop two");
    input["serialNumber"] = json!("SN-1");
    let body = app.gql(Some(&token), CREATE, json!({ "i": input })).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    // Assets without serial numbers never clash with each other.
    app.create_asset(&token, "Chair one", None).await;
    app.create_asset(&token, "Chair two", None).await;
    let other = app.create_asset(&token, "Laptop three", Some("SN-3")).await;
    let body = app
        .gql(
            Some(&token),
            UPDATE,
            json!({ "id": other, "i": { "serialNumber": "SN-1" } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
}

#[tokio::test]
async fn an_update_leaves_absent_fields_clears_nulls_and_refuses_clearing_required_ones() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let user = app.user_id("therapist").await;
    let mut input = minimal("Standing frame");
    input["location"] = json!("Gym");
    input["serialNumber"] = json!("SF-1");
    input["assignedToId"] = json!(user);
    let id =
        app.gql(Some(&token), CREATE, json!({ "i": input })).await["data"]["createAsset"]["id"]
            .as_str()
            .unwrap()
            .to_string();

    let body = app.gql(Some(&token), UPDATE, json!({ "id": id, "i": { "location": null, "assignedToId": null, "value": { "amountMinor": 1, "currency": "SAR" } } })).await;
    let asset = &body["data"]["updateAsset"];
    assert_eq!(asset["name"], "Standing frame", "{body}");
    assert_eq!(asset["serialNumber"], "SF-1");
    assert!(asset["location"].is_null());
    assert!(asset["assignedTo"].is_null());
    assert_eq!(asset["value"]["amountMinor"], 1);

    let refused = app
        .gql(
            Some(&token),
            UPDATE,
            json!({ "id": id, "i": { "name": null } }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    let missing = app
        .gql(
            Some(&token),
            UPDATE,
            json!({ "id": "QXNzZXQ6NmIwYTQzMTk2YWY2ZDc1NzRkNDdlNDcz", "i": { "name": "x" } }),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    let entries = app
        .state
        .db
        .audit()
        .for_entity(
            "Asset",
            &alawael::domain::GlobalId::decode(&id).unwrap().id.to_hex(),
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 2, "create and one successful update");
    let fields: Vec<&str> = entries[0]
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["assignedTo", "location", "value"]);
}

#[tokio::test]
async fn a_deleted_asset_is_gone_and_its_id_answers_not_found() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let id = app.create_asset(&token, "Projector", None).await;
    let body = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { deleteAsset(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(body["data"]["deleteAsset"], id.as_str());
    for query in [
        "query($id: ID!) { asset(id: $id) { id } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ] {
        let body = app.gql(Some(&token), query, json!({ "id": id })).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }
}

#[tokio::test]
async fn ids_of_the_wrong_type_or_malformed_answer_not_found() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let user = app.user_id("user").await;
    for id in [
        user.as_str(),
        "garbage",
        "",
        "QXNzZXQ6bm90LWFuLW9iamVjdC1pZA",
    ] {
        let body = app
            .gql(
                Some(&token),
                "query($id: ID!) { asset(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{id}: {body}");
    }
    let body = app
        .gql(
            Some(&token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": [user, "garbage"] }),
        )
        .await;
    assert_eq!(body["data"]["nodes"][0]["id"], user.as_str());
    assert!(body["data"]["nodes"][1].is_null());
}

#[tokio::test]
async fn search_text_is_matched_literally_and_operator_lookalikes_are_plain_text() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    app.create_asset(&token, "Wheelchair (electric)", None)
        .await;
    app.create_asset(&token, "Walker", None).await;
    let search = |s: &'static str| {
        app.gql(
            Some(&token),
            "query($s: String!) { assets(filter: { search: $s }) { totalCount } }",
            json!({ "s": s }),
        )
    };
    assert_eq!(
        search("WHEELCHAIR (").await["data"]["assets"]["totalCount"],
        1
    );
    assert_eq!(search(".*").await["data"]["assets"]["totalCount"], 0);
    assert_eq!(
        search("{\"$ne\": null}").await["data"]["assets"]["totalCount"],
        0
    );
    assert_eq!(search("$where").await["data"]["assets"]["totalCount"], 0);
    let object = app
        .gql(
            Some(&token),
            "{ assets(filter: { search: { ne: null } }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&object), "GRAPHQL_VALIDATION_FAILED");
    let variable = app
        .gql(
            Some(&token),
            "query($s: String) { assets(filter: { search: $s }) { totalCount } }",
            json!({ "s": { "$ne": null } }),
        )
        .await;
    assert_eq!(
        error_code(&variable),
        "GRAPHQL_VALIDATION_FAILED",
        "{variable}"
    );
}

#[tokio::test]
async fn a_failing_read_is_a_generic_internal_error_with_the_request_id() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let id = bson::oid::ObjectId::new();
    // A row the code cannot read (as a broken migration might leave).
    app.state
        .db
        .collection("assets")
        .insert_one(bson::doc! { "_id": id, "name": 5, "serialKey": "broken" })
        .await
        .unwrap();
    let global = alawael::domain::GlobalId::new(alawael::domain::NodeKind::Asset, id).encode();
    let body = app
        .gql(
            Some(&token),
            "query($id: ID!) { asset(id: $id) { name } }",
            json!({ "id": global }),
        )
        .await;
    assert_eq!(error_code(&body), "INTERNAL", "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["message"], "internal server error");
    assert!(
        error["extensions"]["requestId"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let text = body.to_string();
    for secret in ["assets", "bson", "invalid type", "mongodb", "Kind:"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn every_read_the_api_sends_carries_a_time_limit() {
    let app = spawn_app().await;
    let login = app.login_full("admin").await;
    let token = login["accessToken"].as_str().unwrap().to_string();
    let id = app.create_asset(&token, "Hoist", Some("H-1")).await;
    let user = app.user_id("user").await;
    for (query, vars) in [
        (
            "{ assets(first: 10, filter: { search: \"ho\" }) { totalCount nodes { assignedTo { name } } } }",
            json!({}),
        ),
        ("{ users { totalCount nodes { email } } }", json!({})),
        (
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        ),
        (
            "mutation($id: ID!) { updateAsset(id: $id, input: { location: \"Gym\", assignedToId: null }) { id } }",
            json!({ "id": id }),
        ),
        (
            "mutation($id: ID!) { updateUser(id: $id, input: { phone: \"+966 1\" }) { id } }",
            json!({ "id": user }),
        ),
        (
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": login["refreshToken"] }),
        ),
        (
            "mutation($id: ID!) { deleteAsset(id: $id) }",
            json!({ "id": id }),
        ),
    ] {
        let body = app.gql(Some(&token), query, vars).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    assert!(app.db_commands() > 20);
    assert_eq!(app.state.db.reads_without_time_limit(), 0);
}
