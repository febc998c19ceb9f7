//! The smaller holes (SECURITY.md 36, 37): a webhook URL is parsed once and
//! the address checked is the address dialled, proxies from the
//! environment are ignored, a receiver's answer is read up to a bound;
//! `/metrics` is not for the public; clients cannot record the API's own
//! event names.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::models::webhook::{Receiver, create_webhook};
use crate::support::clinic::ok;
use crate::support::helpers::{TEST_MASTER_KEY, TestApp, error_code, spawn_app, spawn_app_with};

const CREATE: &str =
    "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { url } } }";
const ASSET: &str = "mutation { createAsset(input: { name: \"Hoist\", category: EQUIPMENT, value: { amountMinor: 1, currency: \"SAR\" }, status: AVAILABLE }) { id } }";
const DELIVERIES: &str = "query($id: ID!) { webhook(id: $id) { deliveries(first: 10) { nodes { status responseStatus responseSnippet lastError } } } }";

#[tokio::test]
async fn a_webhook_url_is_checked_as_the_client_will_dial_it() {
    let app = spawn_app_with(|s| s.webhooks.allow_loopback = false).await;
    let admin = app.login("admin").await;
    for url in [
        "http://127.0.0.1\\x.example.org/hook",
        "http://127.0.0.1%5C.example.org/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
    ] {
        let body = app
            .gql(
                Some(&admin),
                CREATE,
                json!({ "i": { "url": url, "events": ["*"] } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
    }
}

/// Waits until the webhook's first delivery is no longer pending.
async fn settled(app: &TestApp, token: &str, hook: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = ok(app, token, DELIVERIES, json!({ "id": hook }), "webhook").await;
        let first = found["deliveries"]["nodes"][0].clone();
        if !first.is_null() && first["status"] != "PENDING" {
            return first;
        }
        assert!(Instant::now() < deadline, "the delivery settles: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_receivers_answer_is_read_only_up_to_a_bound() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    // A receiver that answers 200 and then streams a body without end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 65536];
                while socket.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    let (hook, _) = create_webhook(
        &app,
        &admin,
        &format!("http://127.0.0.1:{port}/hook"),
        &["asset.created"],
    )
    .await;
    ok(&app, &admin, ASSET, json!({}), "createAsset").await;
    let delivery = settled(&app, &admin, &hook).await;
    assert_eq!(delivery["status"], "SUCCEEDED", "{delivery}");
    assert_eq!(
        delivery["responseSnippet"].as_str().unwrap().len(),
        256,
        "{delivery}"
    );
}

#[tokio::test]
async fn the_sender_ignores_proxies_from_the_environment() {
    // A separate server whose environment names a proxy that answers nothing.
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let receiver = Receiver::always(204).await;
    let (hook, _) = create_webhook(&app, &admin, &receiver.url(), &["asset.created"]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_alawael"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("ALAWAEL_ENV", "test")
        .env(
            "MONGODB_URI",
            app.state.settings.database.uri.expose_secret(),
        )
        .env("JWT_SECRET", app.state.settings.auth.secret())
        .env("ALAWAEL_MASTER_KEY", TEST_MASTER_KEY)
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let other = app.at_port(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{}/health/live", other.address))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = other.login("admin").await;
    ok(&other, &token, ASSET, json!({}), "createAsset").await;
    let delivery = settled(&other, &token, &hook).await;
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(delivery["status"], "SUCCEEDED", "{delivery}");
    assert_eq!(receiver.wait_requests(1).await.len(), 1);
}

#[tokio::test]
async fn metrics_are_not_for_the_public() {
    let closed = spawn_app_with(|s| s.server.metrics_public = false).await;
    let status = reqwest::get(format!("{}/metrics", closed.address))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let guarded = spawn_app_with(|s| {
        s.server.metrics_token = Some("a-metrics-token-of-some-length".to_string().into())
    })
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", guarded.address);
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = http.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = http
        .get(&url)
        .bearer_auth("a-metrics-token-of-some-length")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("alawael_"));
    // Production keeps them off the public address by default.
    let production =
        crate::support::helpers::test_settings(alawael::config::Environment::Production);
    assert!(!production.server.metrics_public);
}

#[tokio::test]
async fn clients_cannot_record_the_apis_own_event_names() {
    let app = spawn_app().await;
    let user = app.login("user").await;
    for name in [
        "session.recorded",
        "asset.created",
        "asset.anything",
        "auth.login",
    ] {
        let body = app
            .gql(
                Some(&user),
                "mutation($n: String!) { recordEvent(input: { name: $n }) { id } }",
                json!({ "n": name }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{name}: {body}");
    }
    let fine = app
        .gql(
            Some(&user),
            "mutation { recordEvent(input: { name: \"dashboard.opened\" }) { id } }",
            json!({}),
        )
        .await;
    assert!(fine["errors"].is_null(), "{fine}");
}
