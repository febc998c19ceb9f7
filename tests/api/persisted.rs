//! Automatic persisted queries: registering a text under its SHA-256,
//! using it by hash over POST and GET, the refusals, sharing across
//! instances through Redis, and working without Redis.

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::helpers::{
    TestApp, error_code, sha256_hex as hash, spawn_app, spawn_app_with, spawn_with_settings,
    test_settings, url_encode,
};
use alawael::config::Environment;

const QUERY: &str = "{ me { email role } }";

async fn post(app: &TestApp, token: &str, body: Value) -> Value {
    app.http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

#[tokio::test]
async fn a_query_registered_under_its_hash_runs_by_hash_over_post_and_get() {
    let app = spawn_app().await;
    let token = app.login("manager").await;
    let unknown = post(
        &app,
        &token,
        json!({ "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    assert_eq!(
        error_code(&unknown),
        "PERSISTED_QUERY_NOT_FOUND",
        "{unknown}"
    );
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");

    let registered = post(
        &app,
        &token,
        json!({ "query": QUERY, "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    assert_eq!(registered["data"]["me"]["role"], "MANAGER", "{registered}");
    let by_hash = post(
        &app,
        &token,
        json!({ "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    assert_eq!(by_hash, registered);

    let extensions = persisted(&hash(QUERY)).to_string();
    let url = format!(
        "{}/graphql?extensions={}",
        app.address,
        url_encode(&extensions)
    );
    let got: Value = app
        .http
        .get(url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, registered);
}

#[tokio::test]
async fn a_hash_that_is_not_the_querys_or_a_malformed_extension_is_bad_input() {
    let app = spawn_app().await;
    let token = app.login("manager").await;
    let wrong = hash("{ __typename }");
    let mismatch = post(
        &app,
        &token,
        json!({ "query": QUERY, "extensions": persisted(&wrong) }),
    )
    .await;
    assert_eq!(error_code(&mismatch), "BAD_USER_INPUT", "{mismatch}");
    // Nothing was stored under the wrong hash.
    let after = post(&app, &token, json!({ "extensions": persisted(&wrong) })).await;
    assert_eq!(error_code(&after), "PERSISTED_QUERY_NOT_FOUND", "{after}");
    for extensions in [
        json!({ "persistedQuery": { "version": 2, "sha256Hash": hash(QUERY) } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
        json!({ "persistedQuery": "yes" }),
    ] {
        let body = post(
            &app,
            &token,
            json!({ "query": QUERY, "extensions": extensions }),
        )
        .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{extensions}: {body}");
    }
}

#[tokio::test]
async fn a_query_registered_on_one_instance_runs_by_hash_on_another() {
    std::env::var("REDIS_URL").expect("scripts/test provides Redis");
    let settings = test_settings(Environment::Test);
    let a = spawn_with_settings(settings.clone()).await;
    let b = spawn_with_settings(settings).await;
    let token = a.login("manager").await;
    post(
        &a,
        &token,
        json!({ "query": QUERY, "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    let on_b = post(&b, &token, json!({ "extensions": persisted(&hash(QUERY)) })).await;
    assert_eq!(on_b["data"]["me"]["role"], "MANAGER", "{on_b}");
}

#[tokio::test]
async fn without_redis_persisted_queries_work_in_process() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|s| {
        s.redis.url = Some(SecretString::from(format!("redis://127.0.0.1:{port}")));
    })
    .await;
    let token = app.login("manager").await;
    let registered = post(
        &app,
        &token,
        json!({ "query": QUERY, "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    assert!(registered["errors"].is_null(), "{registered}");
    let by_hash = post(
        &app,
        &token,
        json!({ "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    assert_eq!(by_hash, registered);
}

/// How many persisted-query texts Redis holds for the app's database.
async fn stored_in_redis(app: &TestApp) -> usize {
    use secrecy::ExposeSecret;
    let url = app
        .state
        .settings
        .redis
        .url
        .clone()
        .expect("scripts/test provides Redis");
    let client = redis::Client::open(url.expose_secret()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:apq:*", app.state.db.name()))
        .query_async(&mut redis)
        .await
        .unwrap();
    keys.len()
}

#[tokio::test]
async fn texts_refused_by_the_checks_are_never_stored_however_many_are_sent() {
    let app = spawn_app().await;
    // A 250 KB document: under the body limit, over the length limit.
    let long = format!("{{ me {{ email {} }} }}", "role ".repeat(50_000));
    let http = reqwest::Client::new();
    for i in 0..300 {
        // Each a distinct text, as an attacker would vary them.
        let text = format!("{long}# {i}");
        let body: Value = http
            .post(format!("{}/graphql", app.address))
            .json(&json!({ "query": text, "extensions": persisted(&hash(&text)) }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(error_code(&body), "QUERY_TOO_LONG", "{body}");
    }
    assert_eq!(app.state.cache.text_bytes(), 0, "kept in process");
    assert_eq!(stored_in_redis(&app).await, 0, "kept in Redis");
}

#[tokio::test]
async fn only_signed_in_callers_register_texts_where_configured() {
    let app = spawn_app_with(|s| s.documents.register_signed_in_only = true).await;
    let anonymous_text = "{ __typename }";
    let body = app.gql(None, anonymous_text, json!({})).await;
    assert!(body["errors"].is_null());
    let sent: Value = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": anonymous_text, "extensions": persisted(&hash(anonymous_text)) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["data"]["__typename"], "Query", "it still runs: {sent}");
    let by_hash: Value = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "extensions": persisted(&hash(anonymous_text)) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        error_code(&by_hash),
        "PERSISTED_QUERY_NOT_FOUND",
        "{by_hash}"
    );
    assert_eq!(stored_in_redis(&app).await, 0);
    let token = app.login("user").await;
    post(
        &app,
        &token,
        json!({ "query": QUERY, "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    let by_hash = post(
        &app,
        &token,
        json!({ "extensions": persisted(&hash(QUERY)) }),
    )
    .await;
    assert_eq!(by_hash["data"]["me"]["role"], "USER", "{by_hash}");
    assert_eq!(stored_in_redis(&app).await, 1);
}
