//! Degradation and shutdown: Redis down, the database stopped under load
//! (on a FerretDB of the test's own), and graceful shutdown.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::helpers::{spawn_app_with, spawn_with_settings, test_settings};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn with_redis_down_requests_are_served_and_readiness_says_degraded() {
    let port = free_port();
    let app = spawn_app_with(|s| {
        s.redis.url = Some(SecretString::from(format!("redis://127.0.0.1:{port}")))
    })
    .await;
    let token = app.login("admin").await;
    let started = Instant::now();
    let body = app
        .gql(
            Some(&token),
            "{ assets(first: 5) { totalCount } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["redis"]["status"], "degraded");
    // The throttle still works from the in-process counters.
    for i in 0..6 {
        let q = format!(
            "mutation {{ login(email: \"user@alawael.local\", password: \"bad{i}\") {{ accessToken }} }}"
        );
        let body = app.gql(None, &q, json!({})).await;
        let expected = if i < 5 {
            "UNAUTHENTICATED"
        } else {
            "RATE_LIMITED"
        };
        assert_eq!(crate::support::helpers::error_code(&body), expected);
    }
}

struct Ferret {
    child: Child,
    port: u16,
}

impl Ferret {
    fn start(dir: &std::path::Path, port: u16) -> Self {
        let bin = std::env::var("FERRETDB_BIN").expect("FERRETDB_BIN is set by scripts/test");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let child = Command::new(bin)
            .args([
                "--handler=sqlite",
                &format!("--sqlite-url=file:{}/", dir.join("data").display()),
                &format!("--listen-addr=127.0.0.1:{port}"),
                &format!("--state-dir={}", dir.display()),
                "--debug-addr=-",
                "--telemetry=disable",
                "--log-level=error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("FerretDB starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "FerretDB listens");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Ferret {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn with_the_database_stopped_requests_fail_fast_and_acknowledged_writes_survive() {
    let dir = std::env::temp_dir().join(format!("alawael-fault-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let mut ferret = Ferret::start(&dir, port);
    let mut settings = test_settings(alawael::config::Environment::Test);
    settings.database.uri =
        SecretString::from(format!("mongodb://127.0.0.1:{}/fault", ferret.port));
    let app = spawn_with_settings(settings).await;
    let token = app.login("admin").await;

    // Writes under load; every one acknowledged is remembered.
    let mut acknowledged = Vec::new();
    let writers: Vec<_> = (0..40)
        .map(|i| {
            let (address, http, token) = (app.address.clone(), app.http.clone(), token.clone());
            tokio::spawn(async move {
                let body: Value = http
                    .post(format!("{address}/graphql"))
                    .bearer_auth(token)
                    .json(&json!({ "query": format!("mutation {{ createAsset(input: {{ name: \"Load {i}\", category: IT, value: {{ amountMinor: 1, currency: \"SAR\" }}, serialNumber: \"LOAD-{i}\" }}) {{ id }} }}") }))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                body["data"]["createAsset"]["id"].as_str().map(|_| format!("LOAD-{i}"))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    ferret.stop();
    for writer in writers {
        if let Some(serial) = writer.await.unwrap() {
            acknowledged.push(serial);
        }
    }

    let started = Instant::now();
    let body = app
        .gql(
            Some(&token),
            "{ assets(first: 5) { totalCount } }",
            json!({}),
        )
        .await;
    let elapsed = started.elapsed();
    let code = crate::support::helpers::error_code(&body).to_string();
    assert!(
        ["INTERNAL", "SERVICE_UNAVAILABLE", "UNAUTHENTICATED"].contains(&code.as_str())
            || code == "SERVICE_UNAVAILABLE",
        "{body}"
    );
    assert_ne!(code, "<no error>");
    assert!(elapsed < Duration::from_secs(8), "failed fast: {elapsed:?}");
    let text = body.to_string();
    assert!(
        !text.contains("Kind:") && !text.contains("127.0.0.1"),
        "no driver detail leaks: {text}"
    );
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);

    // Back up: every acknowledged write is there.
    let _restarted = Ferret::start(&dir, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = app.get("/health/ready").await;
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readiness recovers");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for serial in &acknowledged {
        let found = app
            .state
            .db
            .collection("assets")
            .find_one(bson::doc! { "serialKey": serial })
            .await
            .unwrap();
        assert!(found.is_some(), "acknowledged write {serial} survived");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shutdown_turns_readiness_off_first_closes_websockets_with_1001_and_then_stops() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app_with(|s| s.server.shutdown_drain_secs = 1).await;
    let token = app.login("admin").await;
    let mut socket = crate::websockets::init(&app, &token).await;

    // A request in flight when shutdown begins still completes.
    let in_flight = {
        let (address, http, token) = (app.address.clone(), app.http.clone(), token.clone());
        tokio::spawn(async move {
            http.post(format!("{address}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": "mutation { createAsset(input: { name: \"Last one\", category: IT, value: { amountMinor: 1, currency: \"SAR\" } }) { id } }" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    app.state.lifecycle.begin_shutdown();
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let close = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    match close {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.server)
        .await
        .expect("the server stops");
    assert!(stopped.unwrap().is_ok());
}

#[tokio::test]
async fn sigterm_stops_the_real_binary_cleanly() {
    let port = free_port();
    let settings = test_settings(alawael::config::Environment::Test);
    let uri = secrecy::ExposeSecret::expose_secret(&settings.database.uri).to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_alawael"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("ALAWAEL_ENV", "test")
        .env("MONGODB_URI", uri)
        .env("ALAWAEL__SERVER__SHUTDOWN_DRAIN_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(&ready)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "the binary becomes ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = http.get(&ready).send().await.unwrap();
    assert_eq!(during.status(), 503, "readiness fails first");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the process exits");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn start_up_gives_up_on_an_unreachable_database_after_the_configured_attempts() {
    let mut settings = test_settings(alawael::config::Environment::Test);
    settings.database.uri =
        SecretString::from(format!("mongodb://127.0.0.1:{}/nowhere", free_port()));
    settings.database.startup_attempts = 2;
    settings.database.startup_backoff_ms = 100;
    settings.database.server_selection_timeout_ms = 300;
    let started = Instant::now();
    let error = alawael::db::Db::connect(&settings.database)
        .await
        .err()
        .expect("no database, no start");
    assert!(
        error
            .to_string()
            .contains("did not answer after 2 attempts"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn past_the_concurrent_operations_limit_an_operation_is_refused_at_once_and_changes_nothing()
{
    let app = spawn_app_with(|s| {
        s.server.max_concurrent_operations = 1;
        s.server.admission_wait_ms = 50;
        s.server.background_workers = false;
    })
    .await;
    let admin = app.login("admin").await;
    let list = "{ assets(first: 5) { totalCount nodes { id name } } }";
    let before = app.gql(Some(&admin), list, json!({})).await;
    assert!(before["errors"].is_null(), "{before}");

    // Someone else holds the only room.
    let held = app
        .state
        .admission
        .clone()
        .acquire_owned()
        .await
        .expect("room");
    let busy = app.gql(Some(&admin), "{ me { id } }", json!({})).await;
    assert_eq!(
        crate::support::helpers::error_code(&busy),
        "SERVICE_UNAVAILABLE",
        "{busy}"
    );
    let write = app
        .gql(
            Some(&admin),
            "mutation($i: CreateAssetInput!) { createAsset(input: $i) { id } }",
            json!({ "i": { "name": "Shed", "category": "MEDICAL", "value": { "amountMinor": 1, "currency": "SAR" } } }),
        )
        .await;
    assert_eq!(
        crate::support::helpers::error_code(&write),
        "SERVICE_UNAVAILABLE",
        "{write}"
    );
    // Answers already in the response cache still flow.
    let cached = app.gql(Some(&admin), list, json!({})).await;
    assert_eq!(cached["data"], before["data"]);
    drop(held);

    let after = app.gql(Some(&admin), list, json!({})).await;
    assert_eq!(
        after["data"]["assets"]["totalCount"], before["data"]["assets"]["totalCount"],
        "the refused write wrote nothing"
    );
    let me = app.gql(Some(&admin), "{ me { id } }", json!({})).await;
    assert!(me["errors"].is_null(), "{me}");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("alawael_operations_shed_total"));
}
