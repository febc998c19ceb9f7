//! Webhooks end to end: a real HTTP receiver on loopback records every
//! request and answers from a script; signatures are checked here with
//! HMAC-SHA256 independently of the server's code; retries, DEAD, disabling,
//! redelivery, secret rotation, SSRF refusals, roles, two workers on one
//! database, a worker stopped mid-delivery, and the subscription.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::support::helpers::{
    TestApp, error_code, spawn_app, spawn_app_with, spawn_with_settings,
};

/// How long any awaited state may take to appear.
const DEADLINE: Duration = Duration::from_secs(20);

const CREATE_WEBHOOK: &str = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret webhook { id url events active } } }";
const WEBHOOK: &str = "query($id: ID!) { webhook(id: $id) { id url active consecutiveFailures disabledReason disabledAt deliveries(first: 100) { nodes { id event payload status attempts responseStatus lastError nextAttemptAt } } } }";
const UPDATE_WEBHOOK: &str = "mutation($id: ID!, $i: UpdateWebhookInput!) { updateWebhook(id: $id, input: $i) { active consecutiveFailures disabledReason } }";
const ROTATE: &str = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id previousSecretExpiresAt } } }";
const REDELIVER: &str =
    "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id status attempts lastError } }";

// ---------------------------------------------------------------- receiver

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    /// At once, with this status.
    Status(u16),
    /// With this status, after a pause.
    Delayed(u16, Duration),
    /// With this status once the test calls `Receiver::release`.
    Held(u16),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    headers: HeaderMap,
    pub body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("the request has a `{name}` header: {:?}", self.headers))
            .to_str()
            .expect("a header in ASCII")
    }

    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }
}

struct Script {
    queue: VecDeque<Reply>,
    then: Reply,
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    script: Mutex<Script>,
    answered: AtomicUsize,
    release: watch::Sender<bool>,
}

/// A partner's endpoint on 127.0.0.1: records every request (headers and
/// body) and answers with the scripted replies, then with `then`.
pub struct Receiver {
    port: u16,
    state: Arc<ReceiverState>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    state
        .received
        .lock()
        .expect("receiver lock")
        .push(Received { headers, body });
    let reply = {
        let mut script = state.script.lock().expect("receiver lock");
        let then = script.then;
        script.queue.pop_front().unwrap_or(then)
    };
    let status = match reply {
        Reply::Status(status) => status,
        Reply::Delayed(status, pause) => {
            tokio::time::sleep(pause).await;
            status
        }
        Reply::Held(status) => {
            let mut released = state.release.subscribe();
            let _ = released.wait_for(|r| *r).await;
            status
        }
    };
    state.answered.fetch_add(1, Ordering::SeqCst);
    StatusCode::from_u16(status).expect("a valid status")
}

impl Receiver {
    async fn start(first: &[Reply], then: Reply) -> Self {
        let (release, _) = watch::channel(false);
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            script: Mutex::new(Script {
                queue: first.iter().copied().collect(),
                then,
            }),
            answered: AtomicUsize::new(0),
            release,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver binds");
        let port = listener.local_addr().expect("a local address").port();
        let router = Router::new().fallback(receive).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { port, state }
    }

    /// Answers every request with `status`.
    pub async fn always(status: u16) -> Self {
        Self::start(&[], Reply::Status(status)).await
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// From now on every request is answered with `reply`.
    fn answer_from_now(&self, reply: Reply) {
        let mut script = self.state.script.lock().expect("receiver lock");
        script.queue.clear();
        script.then = reply;
    }

    /// Lets held requests be answered.
    fn release(&self) {
        self.state.release.send_replace(true);
    }

    fn requests(&self) -> Vec<Received> {
        self.state.received.lock().expect("receiver lock").clone()
    }

    /// Waits until at least `count` requests arrived; returns them all.
    pub async fn wait_requests(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {count} requests",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ------------------------------------------------------------------ helpers

/// How many `webhook-signature` entries verify with `secret`, checked here
/// with HMAC-SHA256 of `{id}.{timestamp}.{body}` (Standard Webhooks).
fn valid_signatures(secret: &str, request: &Received) -> usize {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("the secret is base64");
    let signed = format!(
        "{}.{}.{}",
        request.id(),
        request.header("webhook-timestamp"),
        request.body
    );
    request
        .header("webhook-signature")
        .split(' ')
        .filter(|entry| {
            let Some(encoded) = entry.strip_prefix("v1,") else {
                return false;
            };
            let Ok(raw) = STANDARD.decode(encoded) else {
                return false;
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
            mac.update(signed.as_bytes());
            mac.verify_slice(&raw).is_ok()
        })
        .count()
}

fn signature_count(request: &Received) -> usize {
    request.header("webhook-signature").split(' ').count()
}

/// The object id inside a global id, as hex.
fn hex_of(global_id: &str) -> String {
    alawael::domain::GlobalId::decode(global_id)
        .expect("a global id")
        .id
        .to_hex()
}

fn msg_id(delivery: &Value) -> String {
    format!(
        "msg_{}",
        hex_of(delivery["id"].as_str().expect("delivery id"))
    )
}

/// Registers a webhook as `token`; returns its id and secret.
pub async fn create_webhook(
    app: &TestApp,
    token: &str,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let body = app
        .gql(
            Some(token),
            CREATE_WEBHOOK,
            json!({ "i": { "url": url, "events": events, "description": "partner system" } }),
        )
        .await;
    assert!(body["errors"].is_null(), "createWebhook failed: {body}");
    let created = &body["data"]["createWebhook"];
    (
        created["webhook"]["id"].as_str().expect("id").to_string(),
        created["secret"].as_str().expect("secret").to_string(),
    )
}

/// The webhook with its deliveries (oldest first).
async fn webhook(app: &TestApp, token: &str, id: &str) -> Value {
    let body = app.gql(Some(token), WEBHOOK, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "webhook query failed: {body}");
    body["data"]["webhook"].clone()
}

fn deliveries(hook: &Value) -> &Vec<Value> {
    hook["deliveries"]["nodes"]
        .as_array()
        .expect("a list of deliveries")
}

/// Polls the webhook until `done` holds.
async fn wait_webhook(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let hook = webhook(app, token, id).await;
        if done(&hook) {
            return hook;
        }
        assert!(Instant::now() < deadline, "{what}; last seen: {hook:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the webhook has exactly one delivery in `status`; returns it.
async fn one_delivery_in(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    let hook = wait_webhook(app, token, id, &format!("one delivery {status}"), |h| {
        deliveries(h).len() == 1 && deliveries(h)[0]["status"] == status
    })
    .await;
    deliveries(&hook)[0].clone()
}

async fn stored_webhooks(app: &TestApp) -> u64 {
    app.state
        .db
        .collection("webhooks")
        .count_documents(bson::doc! {})
        .await
        .expect("count webhooks")
}

fn distinct_ids(requests: &[Received]) -> HashSet<String> {
    requests.iter().map(|r| r.id().to_string()).collect()
}

// -------------------------------------------------------------------- tests

#[tokio::test]
async fn a_created_webhook_receives_a_signed_delivery_and_its_secret_is_never_shown_again() {
    let receiver = Receiver::always(200).await;
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let (hook_id, secret) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    let key = STANDARD
        .decode(
            secret
                .strip_prefix("whsec_")
                .expect("the secret starts with whsec_"),
        )
        .expect("the secret is base64");
    assert_eq!(key.len(), 32, "32 random bytes");

    let asset = app.create_asset(&token, "Standing frame", None).await;
    let requests = receiver.wait_requests(1).await;
    let request = &requests[0];
    assert!(
        request
            .header("content-type")
            .starts_with("application/json")
    );
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .parse()
        .expect("the timestamp is in seconds");
    assert!(
        (chrono::Utc::now().timestamp() - timestamp).abs() < 300,
        "the timestamp is now: {timestamp}"
    );
    assert_eq!(signature_count(request), 1, "{request:?}");
    assert_eq!(
        valid_signatures(&secret, request),
        1,
        "the signature verifies"
    );
    assert_eq!(
        valid_signatures(&alawael::models::webhook::rules::new_secret(), request),
        0,
        "another secret does not verify"
    );
    let body = request.json();
    assert_eq!(body["type"], "asset.created", "{body}");
    assert!(body["timestamp"].is_string(), "{body}");
    assert_eq!(body["data"]["id"], asset.as_str(), "{body}");
    assert_eq!(body["data"]["name"], "Standing frame", "{body}");
    assert!(
        body["data"].get("serialKey").is_none(),
        "stored-only keys stay out of payloads: {body}"
    );

    let delivery = one_delivery_in(&app, &token, &hook_id, "SUCCEEDED").await;
    assert_eq!(delivery["attempts"], 1, "{delivery}");
    assert_eq!(delivery["responseStatus"], 200, "{delivery}");
    assert_eq!(delivery["event"], "asset.created");
    assert!(delivery["lastError"].is_null(), "{delivery}");
    assert_eq!(
        request.id(),
        msg_id(&delivery),
        "webhook-id is msg_<hex id>"
    );
    assert_eq!(
        delivery["payload"].as_str(),
        Some(request.body.as_str()),
        "the stored payload is the body sent"
    );
    assert_eq!(receiver.requests().len(), 1, "only asset.created was sent");

    // No field of the schema exposes the secret again.
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let sdl = alawael::graphql::sdl();
    let document = async_graphql::parser::parse_schema(&sdl).expect("the SDL parses");
    let mut exposing = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let name = ty.node.name.node.as_str();
        let TypeKind::Object(object) = &ty.node.kind else {
            continue;
        };
        for field in &object.fields {
            let field = field.node.name.node.as_str();
            let lower = field.to_ascii_lowercase();
            let allowed =
                lower.ends_with("expiresat") || name == "CreatedWebhook" || name == "Mutation";
            if lower.contains("secret") && !allowed {
                exposing.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(
        exposing.is_empty(),
        "fields exposing a secret: {exposing:?}"
    );
    let checked_in = std::fs::read_to_string("schema.graphql").expect("schema.graphql");
    let webhook_type = checked_in
        .split("type Webhook implements Node {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("the Webhook type in schema.graphql");
    assert!(
        !webhook_type
            .lines()
            .any(|l| l.trim_start().starts_with("secret")
                || l.trim_start().starts_with("previousSecret:")),
        "Webhook has no secret field"
    );
    let introspected = app
        .gql(
            Some(&token),
            "{ __type(name: \"Webhook\") { fields { name } } }",
            json!({}),
        )
        .await;
    let fields: Vec<&str> = introspected["data"]["__type"]["fields"]
        .as_array()
        .expect("introspection answers")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(fields.contains(&"url"), "{introspected}");
    assert!(!fields.contains(&"secret") && !fields.contains(&"previousSecret"));
    // Neither the webhook nor its audit trail carries it.
    let everything = app
        .gql(
            Some(&token),
            "query($id: ID!) { webhook(id: $id) { id url events description active consecutiveFailures disabledReason disabledAt previousSecretExpiresAt createdAt updatedAt createdBy { email } } webhooks { nodes { id url } } }",
            json!({ "id": hook_id }),
        )
        .await;
    assert!(everything["errors"].is_null(), "{everything}");
    let encoded = secret.trim_start_matches("whsec_");
    assert!(!everything.to_string().contains(encoded));
    let audit = app
        .audit_for(
            "Webhook",
            alawael::domain::GlobalId::decode(&hook_id)
                .expect("global id")
                .id,
        )
        .await;
    assert!(!audit.is_empty(), "the creation is audited");
    assert!(
        !format!("{audit:?}").contains(encoded),
        "the audit trail does not hold the secret"
    );
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_the_same_webhook_id_until_it_succeeds() {
    let receiver = Receiver::start(
        &[Reply::Status(500), Reply::Status(500)],
        Reply::Status(200),
    )
    .await;
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let (hook_id, secret) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    app.create_asset(&token, "Gait trainer", None).await;

    let delivery = one_delivery_in(&app, &token, &hook_id, "SUCCEEDED").await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    assert_eq!(delivery["responseStatus"], 200, "{delivery}");
    assert!(delivery["lastError"].is_null(), "{delivery}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    let expected = msg_id(&delivery);
    assert!(requests.iter().all(|r| r.id() == expected), "{requests:?}");
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "same body each time"
    );
    assert!(requests.iter().all(|r| valid_signatures(&secret, r) == 1));
    let hook = webhook(&app, &token, &hook_id).await;
    assert_eq!(hook["consecutiveFailures"], 0, "a success ends the streak");
    assert_eq!(hook["active"], true);
}

#[tokio::test]
async fn a_delivery_is_dead_after_the_attempt_limit() {
    let receiver = Receiver::always(500).await;
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let (hook_id, _) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    app.create_asset(&token, "Balance board", None).await;

    let delivery = one_delivery_in(&app, &token, &hook_id, "DEAD").await;
    assert_eq!(
        delivery["attempts"], 3,
        "max_attempts of the test settings: {delivery}"
    );
    assert_eq!(delivery["responseStatus"], 500, "{delivery}");
    let error = delivery["lastError"].as_str().expect("a last error");
    assert!(error.contains("500"), "{error}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "no attempt after DEAD");
    assert_eq!(distinct_ids(&requests).len(), 1);
    let hook = webhook(&app, &token, &hook_id).await;
    assert_eq!(hook["consecutiveFailures"], 3, "{hook}");
    assert_eq!(hook["active"], true, "5 failures disable it, not 3");
}

#[tokio::test]
async fn a_webhook_failing_too_often_is_disabled_until_an_admin_enables_it_again() {
    let receiver = Receiver::always(503).await;
    let app = spawn_app_with(|s| s.webhooks.disable_after_failures = 2).await;
    let token = app.login("admin").await;
    let (hook_id, _) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    app.create_asset(&token, "Wheelchair 1", None).await;

    let hook = wait_webhook(&app, &token, &hook_id, "the webhook is disabled", |h| {
        h["active"] == false
    })
    .await;
    let reason = hook["disabledReason"].as_str().expect("a disabled reason");
    assert!(reason.contains('2'), "{reason}");
    assert!(hook["disabledAt"].is_string(), "{hook}");
    // The third attempt is not sent: the delivery is DEAD without it.
    let delivery = one_delivery_in(&app, &token, &hook_id, "DEAD").await;
    assert_eq!(
        receiver.requests().len(),
        2,
        "two failed attempts were sent"
    );
    assert!(delivery["lastError"].is_string(), "{delivery}");

    // New events are not queued for a disabled webhook.
    app.create_asset(&token, "Wheelchair 2", None).await;
    let hook = webhook(&app, &token, &hook_id).await;
    assert_eq!(
        deliveries(&hook).len(),
        1,
        "nothing queued while disabled: {hook:#}"
    );

    receiver.answer_from_now(Reply::Status(200));
    let body = app
        .gql(
            Some(&token),
            UPDATE_WEBHOOK,
            json!({ "id": hook_id, "i": { "active": true } }),
        )
        .await;
    let updated = &body["data"]["updateWebhook"];
    assert_eq!(updated["active"], true, "{body}");
    assert_eq!(updated["consecutiveFailures"], 0, "{body}");
    assert!(updated["disabledReason"].is_null(), "{body}");

    let asset = app.create_asset(&token, "Wheelchair 3", None).await;
    let hook = wait_webhook(&app, &token, &hook_id, "the new event is delivered", |h| {
        deliveries(h).len() == 2 && deliveries(h)[1]["status"] == "SUCCEEDED"
    })
    .await;
    assert_eq!(
        deliveries(&hook).len(),
        2,
        "only the event after re-enabling was queued"
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[2].json()["data"]["id"], asset.as_str());
    assert_eq!(requests[2].id(), msg_id(&deliveries(&hook)[1]));
}

#[tokio::test]
async fn a_dead_delivery_redelivered_after_the_receiver_is_fixed_succeeds() {
    let receiver = Receiver::always(500).await;
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let (hook_id, secret) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    app.create_asset(&token, "Hoist", None).await;
    let dead = one_delivery_in(&app, &token, &hook_id, "DEAD").await;
    assert_eq!(receiver.requests().len(), 3);

    receiver.answer_from_now(Reply::Status(204));
    let body = app
        .gql(Some(&token), REDELIVER, json!({ "id": dead["id"] }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let queued = &body["data"]["redeliverWebhookDelivery"];
    assert_eq!(queued["id"], dead["id"]);
    assert_eq!(queued["status"], "PENDING", "{body}");
    assert_eq!(queued["attempts"], 0, "{body}");

    let delivery = one_delivery_in(&app, &token, &hook_id, "SUCCEEDED").await;
    assert_eq!(delivery["attempts"], 1, "{delivery}");
    assert_eq!(delivery["responseStatus"], 204, "{delivery}");
    assert!(delivery["lastError"].is_null(), "{delivery}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        requests.iter().all(|r| r.id() == msg_id(&dead)),
        "same webhook-id"
    );
    assert!(valid_signatures(&secret, &requests[3]) == 1);

    // Other roles may not redeliver.
    let manager = app.login("manager").await;
    let body = app
        .gql(Some(&manager), REDELIVER, json!({ "id": dead["id"] }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_during_the_grace_period() {
    let receiver = Receiver::always(200).await;
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let (hook_id, old) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    let body = app
        .gql(Some(&token), ROTATE, json!({ "id": hook_id }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let new = body["data"]["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("a new secret")
        .to_string();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);
    assert!(
        body["data"]["rotateWebhookSecret"]["webhook"]["previousSecretExpiresAt"].is_string(),
        "{body}"
    );

    app.create_asset(&token, "Parallel bars", None).await;
    let requests = receiver.wait_requests(1).await;
    assert_eq!(signature_count(&requests[0]), 2, "{:?}", requests[0]);
    assert_eq!(
        valid_signatures(&old, &requests[0]),
        1,
        "one signature by the old secret"
    );
    assert_eq!(
        valid_signatures(&new, &requests[0]),
        1,
        "one signature by the new secret"
    );
}

#[tokio::test]
async fn without_a_grace_period_only_the_new_secret_signs() {
    let receiver = Receiver::always(200).await;
    let app = spawn_app_with(|s| s.webhooks.secret_grace_secs = 0).await;
    let token = app.login("admin").await;
    let (hook_id, old) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    let body = app
        .gql(Some(&token), ROTATE, json!({ "id": hook_id }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let new = body["data"]["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("a new secret")
        .to_string();

    app.create_asset(&token, "Treadmill", None).await;
    let requests = receiver.wait_requests(1).await;
    assert_eq!(signature_count(&requests[0]), 1, "{:?}", requests[0]);
    assert_eq!(valid_signatures(&new, &requests[0]), 1);
    assert_eq!(valid_signatures(&old, &requests[0]), 0);
}

async fn refused_at_creation(app: &TestApp, token: &str, url: &str) {
    let body = app
        .gql(
            Some(token),
            CREATE_WEBHOOK,
            json!({ "i": { "url": url, "events": ["asset.created"] } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{url}: {body}");
    assert!(
        body["data"].is_null() || body["data"]["createWebhook"].is_null(),
        "{body}"
    );
}

#[tokio::test]
async fn internal_targets_are_refused_at_creation_and_nothing_is_stored() {
    let port = 9; // nothing is sent at creation
    let app = spawn_app().await;
    let token = app.login("admin").await;
    for url in [
        "http://169.254.169.254/".to_string(),
        "http://10.0.0.1/x".to_string(),
        "http://192.168.1.20/x".to_string(),
        "http://[fd00:ec2::254]/".to_string(),
        "http://0.0.0.0:8080/".to_string(),
        "http://user:pw@127.0.0.1:9/".to_string(),
        "ftp://x".to_string(),
        "not a url".to_string(),
    ] {
        refused_at_creation(&app, &token, &url).await;
    }
    assert_eq!(stored_webhooks(&app).await, 0);
    // Loopback is allowed by the test settings: the same app accepts it.
    create_webhook(&app, &token, &format!("http://127.0.0.1:{port}/"), &["*"]).await;
    assert_eq!(stored_webhooks(&app).await, 1);

    let strict = spawn_app_with(|s| s.webhooks.allow_loopback = false).await;
    let token = strict.login("admin").await;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        refused_at_creation(&strict, &token, &url).await;
    }
    assert_eq!(stored_webhooks(&strict).await, 0);

    let https_only = spawn_app_with(|s| s.webhooks.require_https = true).await;
    let token = https_only.login("admin").await;
    refused_at_creation(&https_only, &token, &format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(stored_webhooks(&https_only).await, 0);
    create_webhook(
        &https_only,
        &token,
        &format!("https://127.0.0.1:{port}/"),
        &["*"],
    )
    .await;
    assert_eq!(stored_webhooks(&https_only).await, 1);
}

#[tokio::test]
async fn a_stored_webhook_pointing_at_a_refused_address_is_never_called() {
    let receiver = Receiver::always(200).await;
    let app = spawn_app_with(|s| s.webhooks.allow_loopback = false).await;
    let token = app.login("admin").await;
    // Stored directly: the API refuses this URL with these settings, as if
    // it had been accepted under other settings (or its DNS changed since).
    let now = bson::DateTime::now();
    let record = alawael::models::webhook::record::WebhookRecord {
        id: bson::oid::ObjectId::new(),
        url: receiver.url(),
        events: vec!["asset.created".into()],
        description: None,
        secret: alawael::models::webhook::rules::new_secret(),
        previous_secret: None,
        active: true,
        consecutive_failures: 0,
        disabled_at: None,
        disabled_reason: None,
        include_personal_data: false,
        created_by: alawael::domain::GlobalId::decode(&app.user_id("admin").await)
            .expect("global id")
            .id,
        created_at: now,
        updated_at: now,
    };
    app.state
        .db
        .collection("webhooks")
        .insert_one(bson::to_document(&record).expect("a document"))
        .await
        .expect("insert webhook");
    app.state.live.forget_webhooks().await;
    let hook_id =
        alawael::domain::GlobalId::new(alawael::domain::NodeKind::Webhook, record.id).encode();

    app.create_asset(&token, "Cough assist", None).await;
    let delivery = one_delivery_in(&app, &token, &hook_id, "DEAD").await;
    let error = delivery["lastError"].as_str().expect("a last error");
    assert!(error.starts_with("refused"), "{error}");
    assert!(delivery["responseStatus"].is_null(), "{delivery}");
    assert!(receiver.requests().is_empty(), "the receiver got nothing");
}

#[tokio::test]
async fn only_admins_manage_webhooks() {
    let app = spawn_app().await;
    for who in ["manager", "therapist", "user"] {
        let token = app.login(who).await;
        let body = app
            .gql(
                Some(&token),
                CREATE_WEBHOOK,
                json!({ "i": { "url": "http://127.0.0.1:9/", "events": ["asset.created"] } }),
            )
            .await;
        assert_eq!(
            error_code(&body),
            "FORBIDDEN",
            "{who} createWebhook: {body}"
        );
        let body = app
            .gql(Some(&token), "{ webhooks { nodes { id url } } }", json!({}))
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who} webhooks: {body}");
        let body = app
            .gql(Some(&token), "{ webhookEventNames }", json!({}))
            .await;
        assert_eq!(
            error_code(&body),
            "FORBIDDEN",
            "{who} webhookEventNames: {body}"
        );
    }
    let body = app
        .gql(
            None,
            CREATE_WEBHOOK,
            json!({ "i": { "url": "http://127.0.0.1:9/", "events": ["asset.created"] } }),
        )
        .await;
    assert!(!body["errors"].is_null(), "anonymous is refused: {body}");
    assert_eq!(stored_webhooks(&app).await, 0);
    let admin = app.login("admin").await;
    let body = app
        .gql(
            Some(&admin),
            "{ webhooks { totalCount } webhookEventNames }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["webhooks"]["totalCount"], 0);
    let names = body["data"]["webhookEventNames"].to_string();
    assert!(names.contains("asset.created") && names.contains("asset.status_changed"));
}

#[tokio::test]
async fn unknown_or_missing_event_names_are_bad_input() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    for events in [
        json!(["asset.exploded"]),
        json!([]),
        json!(["asset.created", "nope"]),
    ] {
        let body = app
            .gql(
                Some(&token),
                CREATE_WEBHOOK,
                json!({ "i": { "url": "http://127.0.0.1:9/", "events": events } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{events}: {body}");
    }
    assert_eq!(stored_webhooks(&app).await, 0);
    let (id, _) = create_webhook(&app, &token, "http://127.0.0.1:9/", &["asset.created"]).await;
    let body = app
        .gql(
            Some(&token),
            UPDATE_WEBHOOK,
            json!({ "id": id, "i": { "events": [] } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

/// A worker that stops while its receiver has not answered yet: its lease
/// runs out, another instance on the same database sends the delivery
/// again (same `webhook-id`), and the late answer changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_of_a_stopped_worker_is_taken_over_once_its_lease_ends() {
    let receiver = Receiver::start(&[Reply::Held(200)], Reply::Status(200)).await;
    let first = spawn_app_with(|s| {
        s.webhooks.lease_secs = 1;
        s.webhooks.timeout_ms = 10_000;
    })
    .await;
    let token = first.login("admin").await;
    let (hook_id, secret) =
        create_webhook(&first, &token, &receiver.url(), &["asset.created"]).await;
    first.create_asset(&token, "Standing frame", None).await;
    receiver.wait_requests(1).await;

    // Aborting the server task stops its workers and the attempt under way
    // (as a crash would): its lease is no longer renewed.
    first.server.abort();

    let second = spawn_with_settings((*first.state.settings).clone()).await;
    assert_eq!(second.state.db.name(), first.state.db.name());
    let token = second.login("admin").await;
    let requests = receiver.wait_requests(2).await;
    let delivery = one_delivery_in(&second, &token, &hook_id, "SUCCEEDED").await;
    assert_eq!(
        delivery["attempts"], 2,
        "the second instance made attempt 2: {delivery}"
    );
    assert_eq!(delivery["responseStatus"], 200);

    // The first attempt's connection is gone; releasing it changes nothing.
    receiver.release();
    let settle_window = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle_window {
        let hook = webhook(&second, &token, &hook_id).await;
        assert_eq!(deliveries(&hook).len(), 1, "{hook:#}");
        assert_eq!(deliveries(&hook)[0]["status"], "SUCCEEDED", "{hook:#}");
        assert_eq!(deliveries(&hook)[0]["attempts"], 2, "{hook:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests_after = receiver.requests();
    assert_eq!(
        requests_after.len(),
        2,
        "nothing else was sent: {requests:?}"
    );
    let ids = distinct_ids(&requests_after);
    assert_eq!(ids.len(), 1, "the same webhook-id both times: {ids:?}");
    assert!(ids.contains(&msg_id(&delivery)));
    assert_eq!(requests_after[0].body, requests_after[1].body);
    assert!(
        requests_after
            .iter()
            .all(|r| valid_signatures(&secret, r) == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_send_each_delivery_once() {
    let receiver = Receiver::always(200).await;
    let one = spawn_app().await;
    let two = spawn_with_settings((*one.state.settings).clone()).await;
    let token_one = one.login("admin").await;
    let token_two = two.login("admin").await;
    let (hook_id, _) = create_webhook(&one, &token_one, &receiver.url(), &["asset.created"]).await;
    let mut assets = HashSet::new();
    for n in 0..20 {
        let (app, token) = if n % 2 == 0 {
            (&one, &token_one)
        } else {
            (&two, &token_two)
        };
        assets.insert(app.create_asset(token, &format!("Walker {n}"), None).await);
    }
    let hook = wait_webhook(&one, &token_one, &hook_id, "20 deliveries succeed", |h| {
        deliveries(h).len() == 20 && deliveries(h).iter().all(|d| d["status"] == "SUCCEEDED")
    })
    .await;
    for delivery in deliveries(&hook) {
        assert_eq!(delivery["attempts"], 1, "{delivery}");
    }
    let requests = receiver.requests();
    let ids = distinct_ids(&requests);
    assert_eq!(ids.len(), 20, "every delivery arrived");
    assert_eq!(requests.len(), 20, "no webhook-id arrived twice");
    let expected: HashSet<String> = deliveries(&hook).iter().map(msg_id).collect();
    assert_eq!(ids, expected);
    let received_assets: HashSet<String> = requests
        .iter()
        .map(|r| {
            r.json()["data"]["id"]
                .as_str()
                .expect("data.id")
                .to_string()
        })
        .collect();
    assert_eq!(received_assets, assets);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket stays open")
            .expect("a websocket message");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}

#[tokio::test]
async fn the_subscription_reports_a_delivery_pending_then_succeeded() {
    let receiver = Receiver::always(200).await;
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let (hook_id, _) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    let mut socket = crate::websockets::init(&app, &token).await;
    let before = app.state.bus.receivers();
    socket
        .send(Message::Text(
            json!({
                "id": "d",
                "type": "subscribe",
                "payload": {
                    "query": "subscription($w: ID) { webhookDeliveryUpdated(webhookId: $w) { id event status attempts responseStatus } }",
                    "variables": { "w": hook_id },
                },
            })
            .to_string()
            .into(),
        ))
        .await
        .expect("subscribe sent");
    let deadline = Instant::now() + DEADLINE;
    while app.state.bus.receivers() <= before {
        assert!(Instant::now() < deadline, "the subscription starts");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    app.create_asset(&token, "Tilt table", None).await;
    let mut seen = Vec::new();
    loop {
        let message = next_message(&mut socket).await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["id"], "d");
        let delivery = message["payload"]["data"]["webhookDeliveryUpdated"].clone();
        assert_eq!(delivery["event"], "asset.created", "{delivery}");
        let status = delivery["status"].as_str().expect("status").to_string();
        seen.push((status.clone(), delivery));
        if status == "SUCCEEDED" {
            break;
        }
    }
    let statuses: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["PENDING", "SUCCEEDED"], "{seen:?}");
    assert_eq!(seen[0].1["attempts"], 0);
    assert_eq!(seen[1].1["attempts"], 1);
    assert_eq!(seen[1].1["responseStatus"], 200);
    assert_eq!(seen[0].1["id"], seen[1].1["id"]);
    let delivery = one_delivery_in(&app, &token, &hook_id, "SUCCEEDED").await;
    assert_eq!(delivery["id"], seen[1].1["id"]);
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_counts_as_a_failure() {
    let receiver = Receiver::always(200).await;
    receiver.answer_from_now(Reply::Delayed(200, Duration::from_secs(2)));
    let app = spawn_app_with(|s| s.webhooks.timeout_ms = 300).await;
    let token = app.login("admin").await;
    let (hook_id, _) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    app.create_asset(&token, "Slow partner", None).await;
    let delivery = one_delivery_in(&app, &token, &hook_id, "DEAD").await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    assert!(delivery["responseStatus"].is_null(), "{delivery}");
    let error = delivery["lastError"].as_str().expect("a last error");
    assert!(error.contains("in time"), "{error}");
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn a_receiver_slower_than_the_lease_is_not_sent_twice() {
    // The lease is renewed while the attempt runs.
    let receiver = Receiver::always(200).await;
    receiver.answer_from_now(Reply::Delayed(200, Duration::from_millis(2500)));
    let app = spawn_app_with(|s| {
        s.webhooks.lease_secs = 1;
        s.webhooks.timeout_ms = 10_000;
    })
    .await;
    let token = app.login("admin").await;
    let (hook_id, _) = create_webhook(&app, &token, &receiver.url(), &["asset.created"]).await;
    app.create_asset(&token, "Slow but fine", None).await;
    let delivery = one_delivery_in(&app, &token, &hook_id, "SUCCEEDED").await;
    assert_eq!(delivery["attempts"], 1, "{delivery}");
    assert_eq!(receiver.requests().len(), 1, "one request only");
}
