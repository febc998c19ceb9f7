//! Trusted documents: manifests in Apollo's and GraphQL Code Generator's
//! formats, served by hash and by text over POST, GET and both websocket
//! protocols; everything else refused with `PERSISTED_QUERY_REQUIRED`;
//! reloading (the function SIGHUP calls, and a real SIGHUP to a server in
//! its own process); `alawael documents add | list | remove` against the
//! real Redis, and servers that load that set.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::helpers::{
    TestApp, error_code, spawn_app_with, spawn_with_settings, test_settings,
};
use crate::websockets::{Socket, connect_with, send};
use alawael::config::{Environment, Settings};

/// The helpers' sign-in, which a trusted-only server must trust too.
const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken expiresIn user { id email role } } }";
const ME: &str = "query Me { me { email role } }";
const OTHER: &str = "query Other { me { id } }";
const INTROSPECTION: &str = "{ __schema { queryType { name } } }";

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn apollo(bodies: &[&str]) -> Value {
    let operations: Vec<Value> = bodies
        .iter()
        .map(|body| {
            let kind = if body.starts_with("mutation") {
                "mutation"
            } else {
                "query"
            };
            json!({ "id": sha(body), "name": "", "type": kind, "body": body })
        })
        .collect();
    json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations })
}

fn codegen(bodies: &[&str]) -> Value {
    let map: serde_json::Map<String, Value> = bodies
        .iter()
        .map(|body| (format!("sha256:{}", sha(body)), json!(body)))
        .collect();
    Value::Object(map)
}

/// A manifest file of its own, removed with the value.
struct Manifest(PathBuf);

impl Manifest {
    fn new(content: &Value) -> Self {
        let path = std::env::temp_dir().join(format!("manifest-{}.json", uuid::Uuid::new_v4()));
        let manifest = Self(path);
        manifest.write(content);
        manifest
    }

    fn write(&self, content: &Value) {
        std::fs::write(&self.0, content.to_string()).unwrap();
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Manifest {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The next websocket message that is not a keep-alive, or the close code.
async fn next(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let message = crate::websockets::next(socket).await?;
        if message["type"] != "ka" {
            return Ok(message);
        }
    }
}

fn trusted_only(settings: &mut Settings, manifest: &Manifest) {
    settings.documents.trusted_only = true;
    settings.documents.manifest = Some(manifest.path().to_path_buf());
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, token: Option<&str>, body: Value) -> Value {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// A document sent by its hash alone.
async fn post_hash(app: &TestApp, token: &str, text: &str) -> Value {
    post(
        app,
        Some(token),
        json!({ "extensions": persisted(&sha(text)) }),
    )
    .await
}

async fn get(app: &TestApp, token: &str, pairs: &[(&str, String)]) -> Value {
    app.http
        .get(format!("{}/graphql", app.address))
        .query(pairs)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn required(body: &Value) {
    assert_eq!(error_code(body), "PERSISTED_QUERY_REQUIRED", "{body}");
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn an_apollo_manifest_serves_its_documents_by_hash_and_text_over_post_and_get_and_refuses_others()
 {
    let manifest = Manifest::new(&apollo(&[LOGIN, ME]));
    let app = spawn_app_with(|s| trusted_only(s, &manifest)).await;
    // Served once loaded: the first answer comes after the set is in place.
    let token = app.login("manager").await;
    assert_eq!(app.state.trusted.len(), 2);

    let by_hash = post_hash(&app, &token, ME).await;
    assert_eq!(by_hash["data"]["me"]["role"], "MANAGER", "{by_hash}");
    let by_text = post(&app, Some(&token), json!({ "query": ME })).await;
    assert_eq!(by_text, by_hash);
    let with_both = post(
        &app,
        Some(&token),
        json!({ "query": ME, "extensions": persisted(&sha(ME)) }),
    )
    .await;
    assert_eq!(with_both, by_hash);
    let over_get = get(
        &app,
        &token,
        &[("extensions", persisted(&sha(ME)).to_string())],
    )
    .await;
    assert_eq!(over_get, by_hash);

    let other = post(&app, Some(&token), json!({ "query": OTHER })).await;
    required(&other);
    let message = other["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("only trusted documents"), "{message}");
    required(&get(&app, &token, &[("query", OTHER.to_string())]).await);
    let registration = post(
        &app,
        Some(&token),
        json!({ "query": OTHER, "extensions": persisted(&sha(OTHER)) }),
    )
    .await;
    required(&registration);
    assert!(
        registration["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("registering a new document"),
        "{registration}"
    );
    // Nothing was registered: the hash alone is still unknown.
    let unknown = post_hash(&app, &token, OTHER).await;
    assert_eq!(
        error_code(&unknown),
        "PERSISTED_QUERY_NOT_FOUND",
        "{unknown}"
    );
    let mismatch = post(
        &app,
        Some(&token),
        json!({ "query": OTHER, "extensions": persisted(&sha(ME)) }),
    )
    .await;
    assert_eq!(error_code(&mismatch), "BAD_USER_INPUT", "{mismatch}");
    // Health probes asking only for __typename pass.
    let probe = post(&app, None, json!({ "query": "{ __typename }" })).await;
    assert_eq!(probe["data"]["__typename"], "Query", "{probe}");

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("alawael_trusted_documents "), "{metrics}");
    assert!(
        metrics.contains("alawael_trusted_documents_refused_total{reason=\"registration\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_codegen_manifest_serves_by_hash_and_the_set_answers_hashes_without_trusted_only() {
    let manifest = Manifest::new(&codegen(&[LOGIN, ME]));
    let app = spawn_app_with(|s| trusted_only(s, &manifest)).await;
    let token = app.login("therapist").await;
    assert_eq!(app.state.trusted.len(), 2);
    let by_hash = post_hash(&app, &token, ME).await;
    assert_eq!(by_hash["data"]["me"]["role"], "THERAPIST", "{by_hash}");
    required(&post(&app, Some(&token), json!({ "query": OTHER })).await);

    // Without trusted_only the manifest's documents answer by hash from the
    // set, and other documents run as usual.
    let open = spawn_app_with(|s| s.documents.manifest = Some(manifest.path().to_path_buf())).await;
    let token = open.login("therapist").await;
    let by_hash = post_hash(&open, &token, ME).await;
    assert_eq!(by_hash["data"]["me"]["role"], "THERAPIST", "{by_hash}");
    let other = post(&open, Some(&token), json!({ "query": OTHER })).await;
    assert!(other["errors"].is_null(), "{other}");
}

#[tokio::test]
async fn both_websocket_protocols_run_trusted_documents_only() {
    let manifest = Manifest::new(&apollo(&[LOGIN, ME]));
    let app = spawn_app_with(|s| trusted_only(s, &manifest)).await;
    let token = app.login("manager").await;
    for (protocol, start) in [
        ("graphql-transport-ws", "subscribe"),
        ("graphql-ws", "start"),
    ] {
        let mut socket = connect_with(&app, protocol).await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");

        send(&mut socket, json!({ "id": "1", "type": start, "payload": { "query": "", "extensions": persisted(&sha(ME)) } })).await;
        let data = next(&mut socket).await.unwrap();
        assert_eq!(data["id"], "1", "{protocol}: {data}");
        assert_eq!(
            data["payload"]["data"]["me"]["role"], "MANAGER",
            "{protocol}: {data}"
        );
        assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");

        send(
            &mut socket,
            json!({ "id": "2", "type": start, "payload": { "query": ME } }),
        )
        .await;
        let data = next(&mut socket).await.unwrap();
        assert_eq!(
            data["payload"]["data"]["me"]["role"], "MANAGER",
            "{protocol}: {data}"
        );
        assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");

        for (id, payload) in [
            ("3", json!({ "query": OTHER })),
            (
                "4",
                json!({ "query": OTHER, "extensions": persisted(&sha(OTHER)) }),
            ),
            ("5", json!({ "query": INTROSPECTION })),
        ] {
            send(
                &mut socket,
                json!({ "id": id, "type": start, "payload": payload }),
            )
            .await;
            let refused = next(&mut socket).await.unwrap();
            assert_eq!(refused["type"], "error", "{protocol}: {refused}");
            assert_eq!(refused["id"], id);
            // One error in graphql-ws, a list in graphql-transport-ws.
            let error = if refused["payload"].is_array() {
                &refused["payload"][0]
            } else {
                &refused["payload"]
            };
            assert_eq!(
                error["extensions"]["code"], "PERSISTED_QUERY_REQUIRED",
                "{protocol}: {refused}"
            );
        }
    }
}

#[tokio::test]
async fn introspection_outside_the_trusted_set_is_refused_unless_allowed() {
    let manifest = Manifest::new(&apollo(&[LOGIN, ME]));
    let closed = spawn_app_with(|s| trusted_only(s, &manifest)).await;
    let refused = post(&closed, None, json!({ "query": INTROSPECTION })).await;
    required(&refused);
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("introspection"),
        "{refused}"
    );
    // Introspection next to an ordinary field is an ordinary untrusted document.
    let mixed = "{ __schema { queryType { name } } me { id } }";
    let allowed = spawn_app_with(|s| {
        trusted_only(s, &manifest);
        s.documents.allow_introspection = true;
    })
    .await;
    let schema = post(&allowed, None, json!({ "query": INTROSPECTION })).await;
    assert_eq!(
        schema["data"]["__schema"]["queryType"]["name"], "Query",
        "{schema}"
    );
    required(&post(&allowed, None, json!({ "query": mixed })).await);
}

#[tokio::test]
async fn a_reload_takes_a_new_manifest_and_keeps_the_old_set_when_the_new_one_is_refused() {
    let manifest = Manifest::new(&apollo(&[LOGIN, ME]));
    let app = spawn_app_with(|s| trusted_only(s, &manifest)).await;
    let token = app.login("manager").await;
    required(&post(&app, Some(&token), json!({ "query": OTHER })).await);

    manifest.write(&codegen(&[LOGIN, ME, OTHER]));
    let count = alawael::documents::trusted::reload(
        &app.state.settings,
        app.state.db.name(),
        &app.state.trusted,
    )
    .await
    .expect("reloads");
    assert_eq!(count, 3);
    let other = post(&app, Some(&token), json!({ "query": OTHER })).await;
    assert!(other["errors"].is_null(), "{other}");

    let mut broken = apollo(&[ME]);
    broken["operations"][0]["id"] = json!(sha(OTHER));
    manifest.write(&broken);
    let error = alawael::documents::trusted::reload(
        &app.state.settings,
        app.state.db.name(),
        &app.state.trusted,
    )
    .await
    .expect_err("a wrong hash is refused")
    .to_string();
    assert!(error.contains("operation Me"), "{error}");
    assert!(error.contains("not the SHA-256"), "{error}");
    assert_eq!(app.state.trusted.len(), 3, "the previous set stays");
    let other = post(&app, Some(&token), json!({ "query": OTHER })).await;
    assert!(other["errors"].is_null(), "{other}");
}

#[tokio::test]
async fn a_server_does_not_start_with_a_manifest_it_refuses() {
    let mut broken = apollo(&[ME]);
    broken["operations"][0]["body"] = json!(OTHER);
    let manifest = Manifest::new(&broken);
    let app = spawn_app_with(|s| trusted_only(s, &manifest)).await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), app.server)
        .await
        .expect("the server stops")
        .unwrap();
    let error = format!("{:#}", outcome.expect_err("refused"));
    assert!(error.contains("not the SHA-256 of the body"), "{error}");
}

#[test]
fn the_documents_settings_need_a_source_and_redis_when_they_read_it() {
    use std::collections::HashMap;
    let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let load = |pairs: &[(&str, &str)]| {
        alawael::config::load_from(Path::new("config"), Environment::Test, &vars(pairs))
    };
    let error = load(&[("ALAWAEL__DOCUMENTS__TRUSTED_ONLY", "true")])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("documents.manifest or documents.from_redis"),
        "{error}"
    );
    let error = load(&[("ALAWAEL__DOCUMENTS__FROM_REDIS", "true")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("needs Redis"), "{error}");
    let settings = load(&[
        ("ALAWAEL__DOCUMENTS__TRUSTED_ONLY", "true"),
        ("ALAWAEL__DOCUMENTS__FROM_REDIS", "true"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
    ])
    .unwrap();
    assert!(settings.documents.trusted_only && !settings.documents.allow_introspection);
}

/// The binary, run with `settings`' database, Redis and secret (which keys
/// the event channel it announces on) and nothing else.
fn cli(settings: &Settings, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alawael"));
    command
        .args(args)
        .env_clear()
        .env("ALAWAEL_ENV", "test")
        .env("JWT_SECRET", settings.auth.secret())
        .env("MONGODB_URI", settings.database.uri.expose_secret());
    if let Some(url) = &settings.redis.url {
        command.env("REDIS_URL", url.expose_secret());
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_command_line_adds_lists_and_removes_documents_and_refuses_a_bad_manifest() {
    std::env::var("REDIS_URL").expect("scripts/test provides Redis");
    let settings = test_settings(Environment::Test);
    let manifest = Manifest::new(&apollo(&[LOGIN, ME]));
    let path = manifest.path().to_str().unwrap();

    let added = stdout(&cli(&settings, &["documents", "add", path]));
    assert!(
        added.contains("added 2 trusted document(s) (0 already stored)"),
        "{added}"
    );
    let again = stdout(&cli(&settings, &["documents", "add", path]));
    assert!(
        again.contains("added 0 trusted document(s) (2 already stored)"),
        "{again}"
    );
    let listed = stdout(&cli(&settings, &["documents", "list"]));
    let mut expected = vec![
        format!("{}\tquery\tMe", sha(ME)),
        format!("{}\tmutation\t-", sha(LOGIN)),
    ];
    expected.sort();
    assert_eq!(listed.lines().collect::<Vec<_>>(), expected);

    let mut broken = codegen(&[OTHER]);
    broken
        .as_object_mut()
        .unwrap()
        .insert(sha("{ x }"), json!("query Broken { me { id } }"));
    let bad = Manifest::new(&broken);
    let refused = cli(
        &settings,
        &["documents", "add", bad.path().to_str().unwrap()],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("operation Broken"), "{stderr}");
    assert_eq!(
        stdout(&cli(&settings, &["documents", "list"]))
            .lines()
            .count(),
        2,
        "nothing of the refused manifest was added"
    );

    let removed = stdout(&cli(
        &settings,
        &["documents", "remove", &format!("sha256:{}", sha(ME))],
    ));
    assert!(removed.contains(&sha(ME)), "{removed}");
    let listed = stdout(&cli(&settings, &["documents", "list"]));
    assert_eq!(listed.trim(), format!("{}\tmutation\t-", sha(LOGIN)));
    let again = cli(&settings, &["documents", "remove", &sha(ME)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no trusted document"));

    let mut no_redis = settings.clone();
    no_redis.redis.url = None;
    let output = cli(&no_redis, &["documents", "list"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("Redis is not configured"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_server_reading_the_redis_set_loads_it_at_start_and_follows_the_command_line() {
    std::env::var("REDIS_URL").expect("scripts/test provides Redis");
    let mut settings = test_settings(Environment::Test);
    settings.documents.trusted_only = true;
    settings.documents.from_redis = true;
    let first = Manifest::new(&apollo(&[LOGIN, ME]));
    stdout(&cli(
        &settings,
        &["documents", "add", first.path().to_str().unwrap()],
    ));
    let app = spawn_with_settings(settings.clone()).await;
    let token = app.login("manager").await;
    let by_hash = post_hash(&app, &token, ME).await;
    assert_eq!(by_hash["data"]["me"]["role"], "MANAGER", "{by_hash}");
    required(&post(&app, Some(&token), json!({ "query": OTHER })).await);

    let second = Manifest::new(&codegen(&[OTHER]));
    stdout(&cli(
        &settings,
        &["documents", "add", second.path().to_str().unwrap()],
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.trusted.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the server reloads after the command line's announcement"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let other = post(&app, Some(&token), json!({ "query": OTHER })).await;
    assert!(other["errors"].is_null(), "{other}");

    stdout(&cli(&settings, &["documents", "remove", &sha(OTHER)]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.trusted.len() > 2 {
        assert!(
            Instant::now() < deadline,
            "the server reloads after a removal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    required(&post(&app, Some(&token), json!({ "query": OTHER })).await);
}

/// A server in its own process, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_real_sighup_makes_a_separate_server_reload_its_manifest() {
    let settings = test_settings(Environment::Test);
    let manifest = Manifest::new(&apollo(&[ME]));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_alawael"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("ALAWAEL_ENV", "test")
            .env("MONGODB_URI", settings.database.uri.expose_secret())
            .env("JWT_SECRET", "a-test-secret-that-is-long-enough-to-use")
            .env("ALAWAEL__SERVER__BACKGROUND_WORKERS", "false")
            .env("ALAWAEL__DOCUMENTS__TRUSTED_ONLY", "true")
            .env("ALAWAEL__DOCUMENTS__MANIFEST", manifest.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let ask = |query: &'static str| {
        let request = http.post(&url).json(&json!({ "query": query }));
        async move {
            let body: Value = request.send().await.ok()?.json().await.ok()?;
            Some(body)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        if let Some(body) = ask(OTHER).await {
            break body;
        }
        assert!(Instant::now() < deadline, "the server starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    required(&refused);

    manifest.write(&apollo(&[ME, OTHER]));
    let signalled = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = ask(OTHER)
            .await
            .expect("the server still answers after SIGHUP");
        if error_code(&body) != "PERSISTED_QUERY_REQUIRED" {
            // Anonymous: `me` needs a token, so the trusted document runs and says so.
            assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the server reloads on SIGHUP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
