//! Query limits, refused before any resolver runs, each with its code.

use serde_json::{Value, json};

use crate::support::helpers::{error_code, spawn_app, spawn_with_settings, test_settings};

async fn post_raw(
    app: &crate::support::helpers::TestApp,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn depth_is_counted_through_named_inline_and_nested_fragments() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let deep = "query { assets { edges { node { ...A } } } }
      fragment A on Asset { assignedTo { ...B } }
      fragment B on User { ... on User { ...C } }
      fragment C on User { id @include(if: true) }";
    let ok = app.gql(Some(&token), deep, json!({})).await;
    assert!(ok["errors"].is_null(), "five levels pass: {ok}");
    let mut settings = test_settings(alawael::config::Environment::Test);
    settings.graphql.max_depth = 4;
    let strict = spawn_with_settings(settings).await;
    let token = strict.login("admin").await;
    let body = strict.gql(Some(&token), deep, json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_DEEP", "{body}");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn fragments_that_spread_each_other_are_a_validation_error_not_a_crash() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let cyclic =
        "query { me { ...A } } fragment A on User { name ...B } fragment B on User { id ...A }";
    let body = app.gql(Some(&token), cyclic, json!({})).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    let selfish = "query { me { ...A } } fragment A on User { ...A }";
    assert_eq!(
        error_code(&app.gql(Some(&token), selfish, json!({})).await),
        "GRAPHQL_VALIDATION_FAILED"
    );
    let nested = format!(
        "{{ {}me {{ id }}{} }}",
        "me { ".repeat(5000),
        " }".repeat(5000)
    );
    let (_, body) = post_raw(&app, Some(&token), json!({ "query": nested })).await;
    assert!(
        ["QUERY_TOO_DEEP", "QUERY_TOO_LONG"].contains(&error_code(&body)),
        "{body}"
    );
    let live = app.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert!(live["errors"].is_null(), "the server is still up");
}

#[tokio::test]
async fn aliases_repeated_fields_directives_and_long_queries_are_refused_with_codes() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let aliases: String = (0..31).map(|i| format!("a{i}: id ")).collect();
    assert_eq!(
        error_code(
            &app.gql(
                Some(&token),
                &format!("{{ me {{ {aliases} }} }}"),
                json!({})
            )
            .await
        ),
        "TOO_MANY_ALIASES"
    );
    let repeated = format!("{{ me {{ {} }} }}", "id ".repeat(1500));
    assert_eq!(
        error_code(&app.gql(Some(&token), &repeated, json!({})).await),
        "QUERY_TOO_COMPLEX"
    );
    let directives = format!("{{ me {{ id {} }} }}", "@include(if: true) ".repeat(300));
    assert_eq!(
        error_code(&app.gql(Some(&token), &directives, json!({})).await),
        "TOO_MANY_DIRECTIVES"
    );
    let long = format!("{{ me {{ id }} }} # {}", "x".repeat(25_000));
    assert_eq!(
        error_code(&app.gql(Some(&token), &long, json!({})).await),
        "QUERY_TOO_LONG"
    );
    let roots: String = (0..21).map(|i| format!("r{i}: __typename ")).collect();
    let body = app
        .gql(Some(&token), &format!("{{ {roots} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), "TOO_MANY_ROOT_FIELDS", "{body}");
    let broken = app.gql(Some(&token), "{ me { id ", json!({})).await;
    assert_eq!(error_code(&broken), "GRAPHQL_PARSE_FAILED");
    let unknown = app
        .gql(Some(&token), "{ me { shoeSize } }", json!({}))
        .await;
    assert_eq!(error_code(&unknown), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_413_with_a_code() {
    let app = spawn_app().await;
    let (status, body) = post_raw(
        &app,
        None,
        json!({ "query": "{ me { id } }", "variables": { "x": "y".repeat(300_000) } }),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "QUERY_TOO_LONG");
}

#[tokio::test]
async fn array_batches_are_refused_by_default_and_capped_when_configured() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..300)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = post_raw(&app, None, Value::Array(batch.clone())).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BATCH_TOO_LARGE");
    let mut settings = test_settings(alawael::config::Environment::Test);
    settings.graphql.max_batch_size = 5;
    let batching = spawn_with_settings(settings).await;
    let (status, body) = post_raw(&batching, None, Value::Array(batch[..5].to_vec())).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), 5);
    let (_, body) = post_raw(&batching, None, Value::Array(batch)).await;
    assert_eq!(error_code(&body), "BATCH_TOO_LARGE");
}

#[tokio::test]
async fn a_batch_of_logins_counts_every_attempt() {
    let mut settings = test_settings(alawael::config::Environment::Test);
    settings.graphql.max_batch_size = 50;
    let app = spawn_with_settings(settings).await;
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({ "query": format!("mutation {{ login(email: \"user@alawael.local\", password: \"guess{i}\") {{ accessToken }} }}") }))
        .collect();
    let (_, body) = post_raw(&app, None, Value::Array(batch)).await;
    let codes: Vec<&str> = body.as_array().unwrap().iter().map(error_code).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "RATE_LIMITED").count(),
        5,
        "{codes:?}"
    );
}

#[tokio::test]
async fn production_refuses_introspection_and_suggests_nothing() {
    let settings = test_settings(alawael::config::Environment::Production);
    assert!(!settings.graphql.introspection);
    let app = spawn_with_settings(settings).await;
    let token = app.login("admin").await;
    let body = app
        .gql(Some(&token), "{ __schema { types { name } } }", json!({}))
        .await;
    assert!(
        body["errors"].is_array() && body["data"].is_null(),
        "{body}"
    );
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    let typo = app
        .gql(Some(&token), "{ asets { totalCount } }", json!({}))
        .await;
    let message = typo["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("Did you mean"), "{message}");
    let dev = spawn_app().await;
    let typo = dev
        .gql(
            Some(&dev.login("admin").await),
            "{ asets { totalCount } }",
            json!({}),
        )
        .await;
    assert!(
        typo["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Did you mean"),
        "{typo}"
    );
}

#[tokio::test]
async fn graphiqls_introspection_query_passes_the_limits_in_development() {
    let app = spawn_app().await;
    let query = include_str!("introspection_query.graphql");
    let body = app.gql(None, query, json!({})).await;
    assert!(
        body["errors"].is_null(),
        "{}",
        &body.to_string()[..body.to_string().len().min(400)]
    );
    assert!(body["data"]["__schema"]["types"].as_array().unwrap().len() > 20);
}

#[tokio::test]
async fn a_document_is_validated_in_full_until_it_passes_and_variables_every_time() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    // Refused on every send: a document that failed is never taken as valid.
    for _ in 0..3 {
        let body = app.gql(Some(&token), "{ me { id nope } }", json!({})).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    }
    // Passed once, then answered without the full rules: the same answer
    // (`me` keeps the answer out of the response cache).
    let page = "{ me { id } assets(first: 3) { totalCount edges { cursor node { id name } } } }";
    let first = app.gql(Some(&token), page, json!({})).await;
    assert!(first["errors"].is_null(), "{first}");
    let second = app.gql(Some(&token), page, json!({})).await;
    assert_eq!(second, first);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains("alawael_validations_total{validation=\"skipped\"}"),
        "a document sent again skips the full validation"
    );
    // With variables, every send is validated against its values.
    let by_size = "query($n: Int) { assets(first: $n) { totalCount } }";
    for _ in 0..2 {
        let ok = app.gql(Some(&token), by_size, json!({ "n": 2 })).await;
        assert!(ok["errors"].is_null(), "{ok}");
    }
    let wrong = app.gql(Some(&token), by_size, json!({ "n": "two" })).await;
    assert!(wrong["errors"].is_array(), "{wrong}");
    assert!(wrong["data"].is_null(), "{wrong}");
}
