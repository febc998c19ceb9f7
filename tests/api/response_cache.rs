//! The response cache: HIT / MISS / BYPASS as `extensions.cacheStatus`
//! tells, invalidation by the writes that touch an answer (on every
//! instance), answers never crossing callers of another role or scope, and
//! the HTTP caching headers of GET (`Cache-Control`, `ETag`, `304`).

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::helpers::{
    PASSWORD, TestApp, sha256_hex as hash, spawn_app_with, spawn_with_settings, test_settings,
    url_encode,
};
use alawael::config::Environment;

const LIST: &str = "{ assets(first: 100) { totalCount nodes { id name status } } }";
const PEOPLE: &str = "{ assets(first: 100) { nodes { id name assignedTo { id name email } } } }";
const ONE: &str = "query($id: ID!) { asset(id: $id) { id name } }";

/// Sends one operation asking for `extensions.cacheStatus`.
async fn ask(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    ask_with(app, token, query, variables, None).await
}

async fn ask_with(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: Value,
    cache_control: Option<&str>,
) -> Value {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables, "extensions": { "cacheStatus": true } }));
    if let Some(value) = cache_control {
        request = request.header("cache-control", value);
    }
    let response = request.send().await.expect("sent");
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "POST answers are not for HTTP caches"
    );
    response.json().await.expect("JSON")
}

fn status(body: &Value) -> &str {
    body["extensions"]["cacheStatus"]
        .as_str()
        .unwrap_or("<none>")
}

async fn rename(app: &TestApp, token: &str, id: &str, name: &str) {
    let body = app
        .gql(
            Some(token),
            "mutation($id: ID!, $i: UpdateAssetInput!) { updateAsset(id: $id, input: $i) { id } }",
            json!({ "id": id, "i": { "name": name } }),
        )
        .await;
    assert!(body["errors"].is_null(), "updateAsset failed: {body}");
}

async fn quiet_app() -> TestApp {
    spawn_app_with(|s| s.server.background_workers = false).await
}

#[tokio::test]
async fn a_read_is_a_miss_then_a_hit_without_the_database_and_a_write_makes_it_stale() {
    let app = quiet_app().await;
    let admin = app.login("admin").await;
    app.create_asset(&admin, "Hoist", None).await;

    let first = ask(&app, &admin, LIST, json!({})).await;
    assert_eq!(status(&first), "MISS", "{first}");
    let before = app.db_commands();
    let second = ask(&app, &admin, LIST, json!({})).await;
    assert_eq!(status(&second), "HIT", "{second}");
    assert_eq!(
        app.db_commands(),
        before,
        "a hit reads nothing from the database"
    );
    assert_eq!(second["data"], first["data"]);

    let created = app.create_asset(&admin, "Standing frame", None).await;
    let after = ask(&app, &admin, LIST, json!({})).await;
    assert_eq!(
        status(&after),
        "MISS",
        "a write to an asset makes asset lists stale"
    );
    assert_eq!(
        after["data"]["assets"]["totalCount"].as_u64(),
        first["data"]["assets"]["totalCount"]
            .as_u64()
            .map(|n| n + 1)
    );
    let names: Vec<&str> = after["data"]["assets"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert!(names.contains(&"Standing frame"), "{after}");

    // Asking for a fresh answer bypasses the cache; so does anything uncacheable.
    // A write makes the list stale; a fresh answer is computed and kept for
    // the next reader.
    app.create_asset(&admin, "Gait trainer", None).await;
    let fresh = ask_with(&app, &admin, LIST, json!({}), Some("no-cache")).await;
    assert_eq!(status(&fresh), "BYPASS");
    let kept = ask(&app, &admin, LIST, json!({})).await;
    assert_eq!(status(&kept), "HIT", "{kept}");
    assert_eq!(kept["data"], fresh["data"]);
    assert_eq!(
        status(&ask(&app, &admin, "{ me { id } }", json!({})).await),
        "BYPASS"
    );
    // Without the extension the answer carries no status.
    let plain = app.gql(Some(&admin), LIST, json!({})).await;
    assert!(plain["extensions"].is_null(), "{plain}");

    // One row by id depends on that row: a write to another asset keeps it.
    let one = json!({ "id": created });
    assert_eq!(status(&ask(&app, &admin, ONE, one.clone()).await), "MISS");
    assert_eq!(status(&ask(&app, &admin, ONE, one.clone()).await), "HIT");
    app.create_asset(&admin, "Walker", None).await;
    assert_eq!(status(&ask(&app, &admin, ONE, one.clone()).await), "HIT");
    rename(&app, &admin, &created, "Standing frame (large)").await;
    let renamed = ask(&app, &admin, ONE, one).await;
    assert_eq!(status(&renamed), "MISS");
    assert_eq!(renamed["data"]["asset"]["name"], "Standing frame (large)");

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for line in [
        "alawael_response_cache_total{result=\"hit\"}",
        "alawael_response_cache_total{result=\"miss\"}",
        "alawael_response_cache_total{result=\"bypass\"}",
        "alawael_response_cache_invalidations_total{entity=\"Asset\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics");
    }
}

/// A new active THERAPIST account; returns its token.
async fn another_therapist(app: &TestApp, admin: &str) -> String {
    let body = app
        .gql(
            Some(admin),
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "i": { "email": "huda@alawael.local", "name": "Huda Al-Qahtani",
                           "role": "THERAPIST", "password": PASSWORD, "department": "Physio" } }),
        )
        .await;
    assert!(body["errors"].is_null(), "createUser failed: {body}");
    app.login("huda").await
}

#[tokio::test]
async fn answers_never_cross_callers_of_another_role_or_scope() {
    let app = quiet_app().await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let therapist = app.login("therapist").await;
    let other = another_therapist(&app, &admin).await;
    let therapist_id = app.user_id("therapist").await;
    let asset = app.create_asset(&admin, "Gait trainer", None).await;
    let assigned = app
        .gql(
            Some(&admin),
            "mutation($id: ID!, $i: UpdateAssetInput!) { updateAsset(id: $id, input: $i) { id } }",
            json!({ "id": asset, "i": { "assignedToId": therapist_id } }),
        )
        .await;
    assert!(assigned["errors"].is_null(), "{assigned}");

    // Public answers: shared within a role, per person for therapists.
    assert_eq!(
        status(&ask(&app, &therapist, LIST, json!({})).await),
        "MISS"
    );
    assert_eq!(status(&ask(&app, &therapist, LIST, json!({})).await), "HIT");
    assert_eq!(status(&ask(&app, &other, LIST, json!({})).await), "MISS");
    assert_eq!(status(&ask(&app, &manager, LIST, json!({})).await), "MISS");
    assert_eq!(status(&ask(&app, &admin, LIST, json!({})).await), "MISS");
    assert_eq!(status(&ask(&app, &admin, LIST, json!({})).await), "HIT");

    // Private answers (people's details): per caller. The therapist sees
    // the e-mail address of the account the asset is assigned to (their
    // own); the other therapist must never receive it.
    let own = ask(&app, &therapist, PEOPLE, json!({})).await;
    assert_eq!(status(&own), "MISS", "{own}");
    assert!(own["errors"].is_null(), "{own}");
    assert!(own.to_string().contains("therapist@alawael.local"));
    assert_eq!(
        status(&ask(&app, &therapist, PEOPLE, json!({})).await),
        "HIT"
    );
    for _ in 0..2 {
        let theirs = ask(&app, &other, PEOPLE, json!({})).await;
        assert_ne!(status(&theirs), "HIT", "{theirs}");
        assert!(
            !theirs.to_string().contains("therapist@alawael.local"),
            "another therapist received a cached private answer: {theirs}"
        );
    }
    let managers = ask(&app, &manager, PEOPLE, json!({})).await;
    assert_eq!(status(&managers), "MISS", "{managers}");
    let admins = ask(&app, &admin, PEOPLE, json!({})).await;
    assert_eq!(
        status(&admins),
        "MISS",
        "a private answer is never shared by role"
    );

    // Someone else's private answer is not served to the therapist either.
    let again = ask(&app, &therapist, PEOPLE, json!({})).await;
    assert_eq!(again["data"], own["data"]);
}

#[tokio::test]
async fn a_write_on_one_instance_is_seen_by_the_next_read_on_another() {
    std::env::var("REDIS_URL").expect("scripts/test provides Redis");
    let mut settings = test_settings(Environment::Test);
    settings.server.background_workers = false;
    let a = spawn_with_settings(settings.clone()).await;
    let b = spawn_with_settings(settings).await;
    let admin = a.login("admin").await;
    let id = a.create_asset(&admin, "Parallel bars", None).await;

    assert_eq!(status(&ask(&b, &admin, LIST, json!({})).await), "MISS");
    assert_eq!(status(&ask(&b, &admin, LIST, json!({})).await), "HIT");
    let one = json!({ "id": id });
    assert_eq!(status(&ask(&b, &admin, ONE, one.clone()).await), "MISS");
    // Answers stored by B are shared with A.
    assert_eq!(status(&ask(&a, &admin, ONE, one.clone()).await), "HIT");

    rename(&a, &admin, &id, "Parallel bars (child)").await;
    let list = ask(&b, &admin, LIST, json!({})).await;
    assert_eq!(status(&list), "MISS");
    assert!(list.to_string().contains("Parallel bars (child)"), "{list}");
    let row = ask(&b, &admin, ONE, one).await;
    assert_eq!(status(&row), "MISS");
    assert_eq!(row["data"]["asset"]["name"], "Parallel bars (child)");
}

fn url(app: &TestApp, query: &str) -> String {
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash(query) } });
    format!(
        "{}/graphql?extensions={}",
        app.address,
        url_encode(&extensions.to_string())
    )
}

#[tokio::test]
async fn a_get_by_persisted_hash_answers_cache_control_and_an_etag_then_304() {
    let app = quiet_app().await;
    let admin = app.login("admin").await;
    let id = app.create_asset(&admin, "Treadmill", None).await;
    for query in [LIST, "{ me { id } }"] {
        let registered = app
            .http
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&admin)
            .json(&json!({ "query": query, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash(query) } } }))
            .send()
            .await
            .expect("sent");
        assert_eq!(registered.status(), 200);
    }

    let first = app
        .http
        .get(url(&app, LIST))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()["cache-control"],
        "private, max-age=60",
        "authenticated data is never public"
    );
    let etag = first.headers()["etag"].clone();
    assert!(etag.to_str().unwrap_or("").starts_with("W/\""), "{etag:?}");
    let body: Value = first.json().await.expect("JSON");
    assert!(body["errors"].is_null(), "{body}");

    let again = app
        .http
        .get(url(&app, LIST))
        .bearer_auth(&admin)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert!(again.bytes().await.expect("body").is_empty());

    rename(&app, &admin, &id, "Treadmill (paediatric)").await;
    let changed = app
        .http
        .get(url(&app, LIST))
        .bearer_auth(&admin)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(changed.status(), 200, "a changed answer is sent again");
    assert_ne!(changed.headers()["etag"], etag);

    let me = app
        .http
        .get(url(&app, "{ me { id } }"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn without_redis_answers_are_kept_in_process_and_with_redis_away_not_at_all() {
    let local = spawn_app_with(|s| {
        s.redis.url = None;
        s.server.background_workers = false;
    })
    .await;
    let admin = local.login("admin").await;
    assert_eq!(status(&ask(&local, &admin, LIST, json!({})).await), "MISS");
    assert_eq!(status(&ask(&local, &admin, LIST, json!({})).await), "HIT");
    local.create_asset(&admin, "Balance board", None).await;
    assert_eq!(status(&ask(&local, &admin, LIST, json!({})).await), "MISS");

    // Redis configured but not reachable: other instances could not see
    // this one's writes, so nothing is cached, and nothing fails.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let away = spawn_app_with(|s| {
        s.redis.url = Some(SecretString::from(format!("redis://127.0.0.1:{port}")));
        s.server.background_workers = false;
    })
    .await;
    let admin = away.login("admin").await;
    for _ in 0..2 {
        let body = ask(&away, &admin, LIST, json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(status(&body), "BYPASS");
    }
}

#[tokio::test]
async fn a_hit_goes_out_gzipped_to_clients_that_take_it_and_batches_carry_hits_too() {
    use std::io::Read;
    let app = spawn_app_with(|s| {
        s.server.background_workers = false;
        s.graphql.max_batch_size = 5;
    })
    .await;
    let admin = app.login("admin").await;
    for n in 0..20 {
        app.create_asset(&admin, &format!("Walking frame {n}"), None)
            .await;
    }
    let first = ask(&app, &admin, LIST, json!({})).await;
    assert_eq!(status(&first), "MISS", "{first}");
    let body = json!({ "query": LIST, "extensions": { "cacheStatus": true } });
    for _ in 0..2 {
        let response = app
            .http
            .post(format!("{}/graphql", app.address))
            .bearer_auth(&admin)
            .header("accept-encoding", "br;q=0.5, gzip")
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.headers()["content-encoding"], "gzip");
        assert_eq!(response.headers()["vary"], "accept-encoding");
        let bytes = response.bytes().await.expect("body");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("a gzip body");
        let hit: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(status(&hit), "HIT", "{hit}");
        assert_eq!(hit["data"], first["data"]);
    }
    let refused = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&admin)
        .header("accept-encoding", "gzip;q=0")
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert!(refused.headers().get("content-encoding").is_none());
    let plain: Value = refused.json().await.expect("JSON");
    assert_eq!(plain["data"], first["data"]);

    let batch = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&admin)
        .json(&json!([body, { "query": "{ __typename }" }]))
        .send()
        .await
        .expect("sent")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(status(&batch[0]), "HIT", "{batch}");
    assert_eq!(batch[0]["data"], first["data"]);
    assert_eq!(batch[1]["data"]["__typename"], "Query");
}

#[tokio::test]
async fn concurrent_misses_of_one_answer_compute_it_once() {
    let app = quiet_app().await;
    let admin = app.login("admin").await;
    for n in 0..30 {
        app.create_asset(&admin, &format!("Grab rail {n}"), None)
            .await;
    }
    let before = app.db_commands();
    let answers =
        futures::future::join_all((0..10).map(|_| ask(&app, &admin, LIST, json!({})))).await;
    let used = app.db_commands() - before;
    for answer in &answers {
        assert!(answer["errors"].is_null(), "{answer}");
        assert_eq!(answer["data"], answers[0]["data"]);
    }
    let computed = answers.iter().filter(|a| status(a) == "MISS").count();
    assert!(computed >= 1, "someone computed it");
    // One computation is 2 commands (the page and its count); ten requests
    // computing it each would be 20.
    assert!(
        used <= 6,
        "{used} commands for 10 concurrent requests of one answer"
    );
}

#[tokio::test]
async fn alawael_seed_makes_the_cached_answers_of_what_it_writes_stale() {
    let app = quiet_app().await;
    let admin = app.login("admin").await;
    assert_eq!(status(&ask(&app, &admin, LIST, json!({})).await), "MISS");
    assert_eq!(status(&ask(&app, &admin, LIST, json!({})).await), "HIT");
    let uri = secrecy::ExposeSecret::expose_secret(&app.state.settings.database.uri).to_string();
    let redis = std::env::var("REDIS_URL").expect("REDIS_URL is set by scripts/test");
    let seeded = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_alawael"))
            .arg("seed")
            .env("ALAWAEL_ENV", "test")
            .env("MONGODB_URI", uri)
            .env("REDIS_URL", redis)
            .output()
    })
    .await
    .expect("joined")
    .expect("the binary runs");
    let said = String::from_utf8_lossy(&seeded.stdout);
    assert!(seeded.status.success(), "{said}");
    assert!(said.contains("stale on every server"), "{said}");
    assert_eq!(
        status(&ask(&app, &admin, LIST, json!({})).await),
        "MISS",
        "the seed wrote assets past the API"
    );
}
