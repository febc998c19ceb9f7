//! Analytics, the event bus across instances (through the real Redis, and
//! through a Redis that goes away and comes back), the outbox's recovery
//! after a crash, and the retention sweeper.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::helpers::{TestApp, error_code, spawn_app, spawn_with_settings, test_settings};
use crate::websockets::{Socket, init, next, send};
use alawael::config::{Environment, Settings};

async fn subscribe(app: &TestApp, socket: &mut Socket, id: &str, query: &str) {
    let before = app.state.bus.receivers();
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.bus.receivers() <= before {
        assert!(Instant::now() < deadline, "the subscription starts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn record(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(
        Some(token),
        "mutation($i: RecordEventInput!) { recordEvent(input: $i) { id name value dimensions at user { id } } }",
        json!({ "i": input }),
    )
    .await
}

#[tokio::test]
async fn record_event_checks_its_input_and_anyone_signed_in_may_record() {
    let app = spawn_app().await;
    let user = app.login("user").await;
    let ok = record(
        &app,
        &user,
        json!({ "name": "dashboard.opened", "value": 2.5, "dimensions": { "screen": "home" } }),
    )
    .await;
    assert!(ok["errors"].is_null(), "{ok}");
    assert_eq!(ok["data"]["recordEvent"]["dimensions"]["screen"], "home");
    assert_eq!(
        ok["data"]["recordEvent"]["user"]["id"],
        app.user_id("user").await.as_str()
    );

    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    for bad in [
        json!({ "name": "Bad Name" }),
        json!({ "name": "a".repeat(65) }),
        json!({ "name": "ok", "dimensions": { "n": 1 } }),
        json!({ "name": "ok", "dimensions": many }),
        json!({ "name": "ok", "dimensions": ["x"] }),
        json!({ "name": "ok", "dimensions": { "$where": "1" } }),
    ] {
        let body = record(&app, &user, bad.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{bad}: {body}");
    }
    let anonymous = app
        .gql(
            None,
            "mutation { recordEvent(input: { name: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");

    // Reading is for ADMIN and MANAGER.
    for who in ["therapist", "user"] {
        let token = app.login(who).await;
        let body = app
            .gql(
                Some(&token),
                "{ analyticsEvents { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{who}: {body}");
    }
    let manager = app.login("manager").await;
    let listed = app
        .gql(
            Some(&manager),
            "{ analyticsEvents(filter: { names: [\"dashboard.opened\"] }) { totalCount nodes { name value } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["data"]["analyticsEvents"]["totalCount"], 1,
        "only the valid one was stored: {listed}"
    );
}

#[tokio::test]
async fn domain_changes_and_sign_ins_raise_analytics_events() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let asset = app.create_asset(&admin, "Hoist", Some("HOIST-1")).await;
    let update = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateAsset(id: $id, input: { status: MAINTENANCE }) { id } }",
            json!({ "id": asset }),
        )
        .await;
    assert!(update["errors"].is_null(), "{update}");
    let body = app
        .gql(
            Some(&admin),
            "{ analyticsEvents(first: 50) { nodes { name dimensions user { id } } } }",
            json!({}),
        )
        .await;
    let names: Vec<&str> = body["data"]["analyticsEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "auth.login",
        "asset.created",
        "asset.updated",
        "asset.status_changed",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let created = body["data"]["analyticsEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "asset.created")
        .unwrap();
    assert_eq!(created["dimensions"]["entity"], "Asset");
    assert_eq!(created["user"]["id"], app.user_id("admin").await.as_str());
}

#[tokio::test]
async fn the_summary_counts_and_sums_per_bucket_in_the_database() {
    let app = spawn_app().await;
    let manager = app.login("manager").await;
    let events = app.state.db.collection("analytics_events");
    // Two hours of one day, one hour of the next: values 1+2, 4, and 8 (plus one without a value).
    let at = |day: i64, hour: i64, minute: i64| {
        DateTime::from_millis(
            1_780_000_000_000 / 86_400_000 * 86_400_000
                + day * 86_400_000
                + hour * 3_600_000
                + minute * 60_000,
        )
    };
    let rows = [
        (at(0, 9, 5), Some(1.0)),
        (at(0, 9, 50), Some(2.0)),
        (at(0, 10, 0), Some(4.0)),
        (at(1, 9, 0), Some(8.0)),
        (at(1, 9, 1), None),
    ];
    for (when, value) in rows {
        let millis = when.timestamp_millis();
        events
            .insert_one(doc! {
                "_id": ObjectId::new(), "name": "therapy.minutes", "value": value, "dimensions": {},
                "at": when,
                "hour": DateTime::from_millis(millis - millis.rem_euclid(3_600_000)),
                "day": DateTime::from_millis(millis - millis.rem_euclid(86_400_000)),
            })
            .await
            .unwrap();
    }
    let iso = |d: DateTime| d.try_to_rfc3339_string().unwrap();
    let query = "query($f: DateTime!, $t: DateTime!, $i: AnalyticsInterval) { analyticsSummary(name: \"therapy.minutes\", from: $f, to: $t, interval: $i) { start count sum average } }";
    let daily = app
        .gql(
            Some(&manager),
            query,
            json!({ "f": iso(at(0, 0, 0)), "t": iso(at(2, 0, 0)), "i": "DAY" }),
        )
        .await;
    assert!(daily["errors"].is_null(), "{daily}");
    let buckets = daily["data"]["analyticsSummary"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{daily}");
    assert_eq!(
        (buckets[0]["count"].as_i64(), buckets[0]["sum"].as_f64()),
        (Some(3), Some(7.0))
    );
    assert_eq!(
        (buckets[1]["count"].as_i64(), buckets[1]["sum"].as_f64()),
        (Some(2), Some(8.0))
    );
    assert_eq!(buckets[1]["average"].as_f64(), Some(4.0));
    let start =
        chrono::DateTime::parse_from_rfc3339(buckets[0]["start"].as_str().unwrap()).unwrap();
    assert_eq!(start.timestamp_millis(), at(0, 0, 0).timestamp_millis());

    let hourly = app
        .gql(
            Some(&manager),
            query,
            json!({ "f": iso(at(0, 0, 0)), "t": iso(at(1, 0, 0)), "i": "HOUR" }),
        )
        .await;
    let buckets = hourly["data"]["analyticsSummary"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{hourly}");
    assert_eq!(
        (buckets[0]["count"].as_i64(), buckets[0]["sum"].as_f64()),
        (Some(2), Some(3.0))
    );
    assert_eq!(
        (buckets[1]["count"].as_i64(), buckets[1]["sum"].as_f64()),
        (Some(1), Some(4.0))
    );

    let backwards = app
        .gql(
            Some(&manager),
            query,
            json!({ "f": iso(at(1, 0, 0)), "t": iso(at(0, 0, 0)), "i": "DAY" }),
        )
        .await;
    assert_eq!(error_code(&backwards), "BAD_USER_INPUT", "{backwards}");
    // A null for the defaulted interval is a client error, not a server one.
    let null = app
        .gql(
            Some(&manager),
            query,
            json!({ "f": iso(at(0, 0, 0)), "t": iso(at(1, 0, 0)) }),
        )
        .await;
    assert_eq!(error_code(&null), "GRAPHQL_VALIDATION_FAILED", "{null}");
    let too_many = app
        .gql(
            Some(&manager),
            query,
            json!({ "f": iso(at(0, 0, 0)), "t": iso(at(400, 0, 0)), "i": "HOUR" }),
        )
        .await;
    assert_eq!(error_code(&too_many), "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_analytics_subscription_streams_the_names_asked_for() {
    let app = spawn_app().await;
    let manager = app.login("manager").await;
    let user = app.login("user").await;
    let mut socket = init(&app, &manager).await;
    subscribe(
        &app,
        &mut socket,
        "a",
        "subscription { analyticsEvents(names: [\"kiosk.checkin\"]) { name value dimensions user { id } } }",
    )
    .await;
    record(&app, &user, json!({ "name": "other.thing" })).await;
    record(
        &app,
        &user,
        json!({ "name": "kiosk.checkin", "value": 1, "dimensions": { "desk": "A" } }),
    )
    .await;
    let message = next(&mut socket).await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    let event = &message["payload"]["data"]["analyticsEvents"];
    assert_eq!(
        event["name"], "kiosk.checkin",
        "the other name was filtered out: {message}"
    );
    assert_eq!(event["dimensions"]["desk"], "A");

    // USER and THERAPIST may not subscribe.
    let mut refused = init(&app, &user).await;
    send(
        &mut refused,
        json!({ "id": "b", "type": "subscribe", "payload": { "query": "subscription { analyticsEvents { name } }" } }),
    )
    .await;
    let answer = next(&mut refused).await.unwrap();
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["payload"][0]["extensions"]["code"], "FORBIDDEN");
}

/// Two instances on one database and one Redis.
async fn pair(settings: Settings) -> (TestApp, TestApp) {
    let first = spawn_with_settings(settings.clone()).await;
    let second = spawn_with_settings(settings).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(first.state.bus.is_shared() && second.state.bus.is_shared()) {
        assert!(
            Instant::now() < deadline,
            "both instances subscribe to the Redis channel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (first, second)
}

const ASSET_EVENTS: &str = "subscription { assetUpdated { kind asset { name } } }";

async fn expect_asset_event(socket: &mut Socket, name: &str) {
    let message = next(socket).await.unwrap();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"]["assetUpdated"]["asset"]["name"], name,
        "{message}"
    );
}

#[tokio::test]
async fn an_event_raised_on_one_instance_reaches_subscribers_on_another() {
    std::env::var("REDIS_URL").expect("scripts/test provides Redis");
    let (a, b) = pair(test_settings(Environment::Test)).await;
    let admin = a.login("admin").await;
    let mut on_b = init(&b, &admin).await;
    subscribe(&b, &mut on_b, "s", ASSET_EVENTS).await;
    let started = Instant::now();
    a.create_asset(&admin, "Raised on A", None).await;
    expect_asset_event(&mut on_b, "Raised on A").await;
    eprintln!(
        "cross-instance event latency (incl. the mutation): {:?}",
        started.elapsed()
    );

    // An account change on A ends that account's sockets on B too, and B
    // stops accepting its token although B had its account in memory.
    let therapist = b.login("therapist").await;
    let me = b.gql(Some(&therapist), "{ me { id } }", json!({})).await;
    assert!(me["errors"].is_null(), "{me}");
    let mut therapist_socket = init(&b, &therapist).await;
    let therapist_id = a.user_id("therapist").await;
    let deactivate = a
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": therapist_id }),
        )
        .await;
    assert!(deactivate["errors"].is_null(), "{deactivate}");
    assert_eq!(next(&mut therapist_socket).await, Err(4403));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let refused = b.gql(Some(&therapist), "{ me { id } }", json!({})).await;
        if error_code(&refused) == "UNAUTHENTICATED" {
            break;
        }
        assert!(Instant::now() < deadline, "B refuses the token: {refused}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_redis_outage_keeps_events_local_and_sharing_resumes_without_a_restart() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Redis::start(port);
    let mut settings = test_settings(Environment::Test);
    settings.redis.url = Some(SecretString::from(format!(
        "redis://127.0.0.1:{}",
        redis.port
    )));
    let (a, b) = pair(settings).await;
    let admin = a.login("admin").await;
    let mut on_a = init(&a, &admin).await;
    subscribe(&a, &mut on_a, "s", ASSET_EVENTS).await;
    let mut on_b = init(&b, &admin).await;
    subscribe(&b, &mut on_b, "s", ASSET_EVENTS).await;

    drop(redis);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.state.bus.is_shared() || b.state.bus.is_shared() {
        assert!(Instant::now() < deadline, "the instances notice the outage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Without Redis (sign-in throttles fall back in process too), the
    // instance that raised the event still delivers it.
    a.create_asset(&admin, "During the outage", None).await;
    expect_asset_event(&mut on_a, "During the outage").await;

    redis = Redis::start(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(a.state.bus.is_shared() && b.state.bus.is_shared()) {
        assert!(Instant::now() < deadline, "both instances subscribe again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // B missed the event raised during the outage. A's publisher reconnects
    // on its next event (it rests a second after a failure), so the first
    // events after Redis returns may stay local; within a few, one crosses.
    let mut crossed = false;
    for attempt in 0..20 {
        let name = format!("After the outage {attempt}");
        a.create_asset(&admin, &name, None).await;
        expect_asset_event(&mut on_a, &name).await;
        if let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) =
            tokio::time::timeout(
                Duration::from_millis(500),
                futures::StreamExt::next(&mut on_b),
            )
            .await
        {
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            let got = message["payload"]["data"]["assetUpdated"]["asset"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                got.starts_with("After the outage"),
                "B receives only events raised after the outage: {message}"
            );
            crossed = true;
            break;
        }
    }
    assert!(crossed, "events cross again without a restart");
    drop(redis);
}

#[tokio::test]
async fn a_change_whose_request_stopped_after_the_write_is_settled_by_recovery() {
    use alawael::db::outbox::{Entry, Outbox, State};
    use alawael::models::audit_log_entry::entry::Actor;

    let app = spawn_app().await;
    let old = DateTime::from_millis(DateTime::now().timestamp_millis() - 60_000);
    let intent = |kind: &str, id: ObjectId| Entry {
        id: ObjectId::new(),
        state: State::Intent,
        at: old,
        entity: "Asset".into(),
        collection: "assets".into(),
        entity_id: id,
        kind: kind.into(),
        action: "asset.create".into(),
        actor: Actor::system(),
        request_id: None,
        sensitive: vec![],
        secret: vec![],
        internal: vec![],
        subject_path: None,
        subject: None,
        personal: vec![],
        sealed: vec![],
        public: vec!["name".into()],
        unaudited: Some(vec![]),
        before: None,
        stamp: None,
        prev_stamp: None,
    };
    let outbox = Outbox::new(&app.state.db);
    // The write happened, then the process died: a row and its intent, nothing else.
    let written = ObjectId::new();
    let happened = intent("created", written);
    outbox.intend(&happened).await.unwrap();
    app.state
        .db
        .collection("assets")
        .insert_one(doc! {
            "_id": written, "name": "Orphan", "category": "IT", "status": "AVAILABLE",
            "value": { "amountMinor": 1_i64, "currency": "SAR" }, "createdAt": old, "updatedAt": old,
        })
        .await
        .unwrap();
    // The process died before the write.
    let never = intent("created", ObjectId::new());
    outbox.intend(&never).await.unwrap();

    let settled = alawael::live::outbox::recover(&app.state, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(settled, 1);
    let entries = app.audit_for("Asset", written).await;
    assert_eq!(entries.len(), 1, "one audit entry for the settled write");
    assert_eq!(
        entries[0].id, happened.id,
        "the entry is the intent's, so a second run cannot add one"
    );
    let raised = app
        .state
        .db
        .collection("analytics_events")
        .count_documents(doc! { "name": "asset.created", "dimensions.entityId": written.to_hex() })
        .await
        .unwrap();
    assert_eq!(raised, 1);
    let states: Vec<String> = {
        use futures::TryStreamExt;
        let found: Vec<bson::Document> = app
            .state
            .db
            .collection("outbox")
            .find(doc! {})
            .sort(doc! { "at": 1, "_id": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        found
            .iter()
            .map(|d| d.get_str("state").unwrap().to_string())
            .collect()
    };
    assert!(
        states.contains(&"done".to_string()) && states.contains(&"void".to_string()),
        "{states:?}"
    );
    // Settling again changes nothing.
    assert_eq!(
        alawael::live::outbox::recover(&app.state, Duration::from_secs(30))
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.audit_for("Asset", written).await.len(), 1);
    assert!(
        app.state.db.audit().verify().await.unwrap().is_none(),
        "the chain holds"
    );
}

#[tokio::test]
async fn every_audited_write_leaves_a_settled_outbox_entry_without_personal_data() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let asset = app.create_asset(&admin, "Walker", None).await;
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { updateAsset(id: $id, input: { name: \"Walker 2\" }) { id } }",
        json!({ "id": asset }),
    )
    .await;
    let outbox = app.state.db.collection("outbox");
    assert_eq!(
        outbox
            .count_documents(doc! { "state": "intent" })
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        outbox
            .count_documents(doc! { "state": "done" })
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        outbox
            .count_documents(doc! { "before": { "$exists": true } })
            .await
            .unwrap(),
        0,
        "settled entries keep no copy of the row"
    );
}

#[tokio::test]
async fn the_sweeper_removes_exactly_what_is_past_its_age() {
    // The background sweeper is off: this test runs the sweep itself.
    let app = crate::support::helpers::spawn_app_with(|s| {
        s.retention.batch_size = 2;
        s.server.background_workers = false;
    })
    .await;
    let db = &app.state.db;
    let now = DateTime::now();
    let days = |n: i64| DateTime::from_millis(now.timestamp_millis() - n * 86_400_000);
    for (age, name) in [(91, "old"), (91, "old"), (91, "old"), (89, "young")] {
        db.collection("analytics_events")
            .insert_one(doc! { "_id": ObjectId::new(), "name": name, "dimensions": {}, "at": days(age), "hour": days(age), "day": days(age) })
            .await
            .unwrap();
    }
    for (age, status) in [(31, "READY"), (29, "READY")] {
        db.collection("reports")
            .insert_one(doc! { "_id": ObjectId::new(), "status": status, "createdAt": days(age) })
            .await
            .unwrap();
    }
    for age in [95, 10] {
        db.collection("webhook_deliveries")
            .insert_one(
                doc! { "_id": ObjectId::new(), "createdAt": days(age), "status": "SUCCEEDED" },
            )
            .await
            .unwrap();
    }
    let audit_before = db
        .collection("audit_logs")
        .count_documents(doc! {})
        .await
        .unwrap();

    let swept = alawael::live::sweeper::sweep(&app.state, now)
        .await
        .unwrap();
    assert_eq!(
        (
            swept.analytics_events,
            swept.reports,
            swept.webhook_deliveries
        ),
        (3, 1, 1)
    );
    let left =
        |c: &'static str| async move { db.collection(c).count_documents(doc! {}).await.unwrap() };
    assert_eq!(
        db.collection("analytics_events")
            .count_documents(doc! { "name": "old" })
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        db.collection("analytics_events")
            .count_documents(doc! { "name": "young" })
            .await
            .unwrap(),
        1
    );
    assert_eq!(left("reports").await, 1);
    assert_eq!(left("webhook_deliveries").await, 1);
    assert_eq!(
        left("audit_logs").await,
        audit_before,
        "audit entries are never swept"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("alawael_retention_removed_total"),
        "counted in /metrics"
    );
}
