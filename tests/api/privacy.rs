//! Health data stays private: what a database dump, a webhook receiver,
//! the event channel, the server's log and the traces an erasure leaves
//! behind can tell about a person (SECURITY.md, personal and health data).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alawael::vault::Sealed;
use bson::{Bson, Document, doc};
use futures::{StreamExt, TryStreamExt};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::models::webhook::{Receiver, create_webhook};
use crate::support::clinic::{active_enrollment, create_program, ok, record_session};
use crate::support::helpers::{TEST_MASTER_KEY, TestApp, error_code, spawn_app};

/// A person whose every value is easy to find in text.
struct Person {
    name: &'static str,
    national_id: &'static str,
    session_notes: &'static str,
}

const AMAL: Person = Person {
    name: "Amal Zqxwv",
    national_id: "ZQX4455667",
    session_notes: "worked on Zqxwv-balance today",
};

/// Everything `create_beneficiary` writes about `name` besides its name.
fn values_of(person: &Person) -> Vec<String> {
    vec![
        person.name.to_string(),
        person.national_id.to_string(),
        "2015-03-02".to_string(),
        format!("Guardian of {}", person.name),
        "+966 50 000 0000".to_string(),
        format!("notes about {}", person.name),
        person.session_notes.to_string(),
    ]
}

/// Every document of every collection of `db`, as extended JSON text.
async fn dump(db: &mongodb::Database) -> String {
    let mut text = String::new();
    for name in db.list_collection_names().await.unwrap() {
        let rows: Vec<Document> = db
            .collection::<Document>(&name)
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for row in rows {
            text.push_str(&Bson::Document(row).into_relaxed_extjson().to_string());
            text.push('\n');
        }
    }
    text
}

fn shows<'a>(text: &str, values: &'a [String]) -> Vec<&'a String> {
    values
        .iter()
        .filter(|v| text.contains(v.as_str()))
        .collect()
}

/// A beneficiary with an active enrolment and a session with notes; returns
/// the beneficiary's and the enrolment's ids.
async fn person_with_a_session(app: &TestApp, admin: &str, person: &Person) -> (String, String) {
    let program = create_program(
        app,
        admin,
        &format!("Programme {}", person.national_id.len()),
        10,
    )
    .await;
    let therapist = app.user_id("therapist").await;
    let (beneficiary, enrollment) = active_enrollment(
        app,
        admin,
        &program,
        &therapist,
        person.name,
        person.national_id,
    )
    .await;
    let session = record_session(app, admin, &enrollment, person.session_notes).await;
    assert!(session["errors"].is_null(), "{session}");
    (beneficiary, enrollment)
}

const ERASE: &str = "mutation($id: ID!) { eraseBeneficiary(id: $id) { id fullName erasedAt } }";

#[tokio::test]
async fn a_database_dump_holds_no_personal_value_in_clear_and_erasure_reaches_dumps_taken_before_it()
 {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let (beneficiary, _) = person_with_a_session(&app, &admin, &AMAL).await;
    let read = ok(
        &app,
        &admin,
        "query($id: ID!) { beneficiary(id: $id) { nationalId dateOfBirth birthYear guardian { name phone } medicalNotes sessions(first: 5) { nodes { notes } } } }",
        json!({ "id": beneficiary }),
        "beneficiary",
    )
    .await;
    assert_eq!(
        read["nationalId"], AMAL.national_id,
        "the API reads them: {read}"
    );
    assert_eq!(read["dateOfBirth"], "2015-03-02");
    assert_eq!(read["birthYear"], 2015);
    assert_eq!(read["guardian"]["phone"], "+966 50 000 0000");
    assert_eq!(read["sessions"]["nodes"][0]["notes"], AMAL.session_notes);

    let db = app.state.db.database();
    let before = dump(db).await;
    // The name stays readable (lists search and order by it); nothing else does.
    let values = values_of(&AMAL);
    assert_eq!(
        shows(&before, &values[1..]),
        Vec::<&String>::new(),
        "in clear in a dump"
    );
    // The keys are not in the data's database.
    let collections = db.list_collection_names().await.unwrap();
    assert!(
        !collections.iter().any(|c| c.contains("key")),
        "{collections:?}"
    );
    assert_ne!(app.state.vault.database(), app.state.db.name());

    // A sealed value from the dump opens while the person's key exists...
    let stored = db
        .collection::<Document>("beneficiaries")
        .find_one(doc! { "fullName": AMAL.name })
        .await
        .unwrap()
        .unwrap();
    let sealed = Sealed::parse(stored.get_str("nationalId").unwrap()).expect("sealed");
    assert_eq!(
        app.state.vault.open(&sealed).await.unwrap().as_deref(),
        Some(AMAL.national_id)
    );
    let erased = app
        .gql(Some(&admin), ERASE, json!({ "id": beneficiary }))
        .await;
    assert!(erased["errors"].is_null(), "{erased}");
    // ...and after the erasure opens nowhere: not here, not in a fresh
    // process holding the same master key (a restore of that old dump).
    assert_eq!(app.state.vault.open(&sealed).await.unwrap(), None);
    let restored = alawael::startup::open_vault(&app.state.settings, &app.state.db).unwrap();
    assert_eq!(restored.open(&sealed).await.unwrap(), None);
    for field in ["dateOfBirth", "guardian", "medicalNotes"] {
        let sealed = Sealed::parse(stored.get_str(field).unwrap()).expect("sealed");
        assert_eq!(restored.open(&sealed).await.unwrap(), None, "{field}");
    }
    let after = dump(db).await;
    assert_eq!(
        shows(&after, &values),
        Vec::<&String>::new(),
        "after erasure"
    );
}

#[tokio::test]
async fn a_webhook_gets_no_personal_field_unless_granted_and_never_a_sensitive_one() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let receiver = Receiver::always(200).await;
    let (hook, _) = create_webhook(&app, &admin, &receiver.url(), &["beneficiary.created"]).await;
    crate::support::clinic::create_beneficiary(&app, &admin, AMAL.name, AMAL.national_id).await;
    let thin = receiver.wait_requests(1).await[0].json();
    let data = &thin["data"];
    assert_eq!(thin["type"], "beneficiary.created");
    assert_eq!(data["kind"], "Beneficiary");
    assert!(data["id"].is_string(), "{thin}");
    assert!(
        data["changedFields"]
            .as_array()
            .unwrap()
            .contains(&json!("fullName")),
        "{thin}"
    );
    let mut keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["changedFields", "id", "kind", "status"], "{thin}");
    let values = values_of(&AMAL);
    assert_eq!(shows(&thin.to_string(), &values), Vec::<&String>::new());

    // ADMIN grants personal data: audited, and still never a sensitive field.
    let granted = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateWebhook(id: $id, input: { includePersonalData: true }) { includePersonalData } }",
            json!({ "id": hook }),
        )
        .await;
    assert_eq!(
        granted["data"]["updateWebhook"]["includePersonalData"], true,
        "{granted}"
    );
    let audit = ok(
        &app,
        &admin,
        "{ auditLog(first: 5, filter: { entityType: \"Webhook\" }) { nodes { action changes { field after } } } }",
        json!({}),
        "auditLog",
    )
    .await;
    assert!(
        audit.to_string().contains("includePersonalData"),
        "the grant is audited: {audit}"
    );
    crate::support::clinic::create_beneficiary(&app, &admin, "Basma Zqxwv", "ZQX9988776").await;
    let personal = receiver.wait_requests(2).await[1].json();
    let data = &personal["data"];
    assert_eq!(data["fullName"], "Basma Zqxwv", "{personal}");
    assert_eq!(data["birthYear"], 2015, "{personal}");
    for sensitive in [
        "nationalId",
        "nationalIdKey",
        "dateOfBirth",
        "guardian",
        "medicalNotes",
    ] {
        assert!(data.get(sensitive).is_none(), "{sensitive}: {personal}");
    }
    let text = personal.to_string();
    for value in [
        "ZQX9988776",
        "2015-03-02",
        "Guardian of",
        "+966",
        "notes about",
    ] {
        assert!(!text.contains(value), "{value}: {personal}");
    }
}

#[tokio::test]
async fn after_erasure_no_delivery_report_intent_dimension_export_or_audit_value_yields_the_person()
{
    let app = crate::support::helpers::spawn_app_with(|s| s.reports.worker = true).await;
    let admin = app.login("admin").await;
    let receiver = Receiver::always(200).await;
    let (hook, _) = create_webhook(&app, &admin, &receiver.url(), &["*"]).await;
    app.gql(
        Some(&admin),
        "mutation($id: ID!) { updateWebhook(id: $id, input: { includePersonalData: true }) { id } }",
        json!({ "id": hook }),
    )
    .await;
    let (beneficiary, _) = person_with_a_session(&app, &admin, &AMAL).await;
    let renamed = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateBeneficiary(id: $id, input: { fullName: \"Amal Zqxwv-Renamed\" }) { fullName } }",
            json!({ "id": beneficiary }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    let report = ok(
        &app,
        &admin,
        "mutation($p: JSON) { requestReport(type: BENEFICIARY_PROGRESS, parameters: $p) { id } }",
        json!({ "p": { "beneficiaryId": beneficiary } }),
        "requestReport",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = ok(
            &app,
            &admin,
            "query($id: ID!) { report(id: $id) { status result } }",
            json!({ "id": report }),
            "report",
        )
        .await;
        if status["status"] == "READY" {
            assert!(!status["result"].is_null());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the report is computed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Personal fields reached the granted webhook and the audit log.
    receiver.wait_requests(5).await;
    let audit = ok(
        &app,
        &admin,
        "query($id: ID!) { auditLog(first: 20, filter: { entityId: $id }) { nodes { action changes { field before after } } } }",
        json!({ "id": beneficiary }),
        "auditLog",
    )
    .await;
    assert!(
        audit.to_string().contains("Amal Zqxwv-Renamed"),
        "ADMIN reads the audit values: {audit}"
    );

    let erased = app
        .gql(Some(&admin), ERASE, json!({ "id": beneficiary }))
        .await;
    assert!(erased["errors"].is_null(), "{erased}");
    let mut values = values_of(&AMAL);
    values.push("Amal Zqxwv-Renamed".into());
    // Nothing in the database yields a value: not the rows, the audit
    // entries, the deliveries, the report, the outbox or the analytics.
    let everything = dump(app.state.db.database()).await;
    assert_eq!(shows(&everything, &values), Vec::<&String>::new());
    let hex = alawael::domain::GlobalId::decode(&beneficiary)
        .unwrap()
        .id
        .to_hex();
    let dimensions = app
        .state
        .db
        .collection("analytics_events")
        .count_documents(doc! { "dimensions.entityId": &hex })
        .await
        .unwrap();
    assert_eq!(dimensions, 0);
    let result = ok(
        &app,
        &admin,
        "query($id: ID!) { report(id: $id) { result } }",
        json!({ "id": report }),
        "report",
    )
    .await;
    assert!(result["result"].is_null(), "{result}");
    // Sealed audit values no longer open; the chain still holds.
    let audit = ok(
        &app,
        &admin,
        "query($id: ID!) { auditLog(first: 20, filter: { entityId: $id }) { nodes { changes { field before after } } } }",
        json!({ "id": beneficiary }),
        "auditLog",
    )
    .await;
    assert_eq!(shows(&audit.to_string(), &values), Vec::<&String>::new());
    assert!(audit.to_string().contains("[erased]"), "{audit}");
    let verified = ok(
        &app,
        &admin,
        "{ verifyAuditChain { ok } }",
        json!({}),
        "verifyAuditChain",
    )
    .await;
    assert_eq!(verified["ok"], true);
    // The export says only what is left.
    let export = ok(
        &app,
        &admin,
        "mutation($id: ID!) { exportBeneficiaryData(id: $id) }",
        json!({ "id": beneficiary }),
        "exportBeneficiaryData",
    )
    .await;
    assert_eq!(shows(&export.to_string(), &values), Vec::<&String>::new());
    // A redelivery sends what is true now: the thin form.
    let deliveries = ok(
        &app,
        &admin,
        "query($id: ID!) { webhook(id: $id) { deliveries(first: 50) { nodes { id payload } } } }",
        json!({ "id": hook }),
        "webhook",
    )
    .await;
    assert_eq!(
        shows(&deliveries.to_string(), &values),
        Vec::<&String>::new()
    );
    let first = deliveries["deliveries"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = receiver.wait_requests(1).await.len();
    let again = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id } }",
            json!({ "id": first }),
        )
        .await;
    assert!(again["errors"].is_null(), "{again}");
    let sent = receiver.wait_requests(before + 1).await;
    let text: String = sent.iter().map(|r| r.body.clone()).collect();
    let resent = &sent.last().unwrap().body;
    assert_eq!(shows(resent, &values), Vec::<&String>::new(), "{resent}");
    assert!(!text.is_empty());
}

#[tokio::test]
async fn a_message_published_on_the_event_channel_without_the_key_is_dropped_and_counted() {
    let app = spawn_app().await;
    let Some(url) = app.state.settings.redis.url.clone() else {
        // The channel exists only with Redis; scripts/test always starts one.
        panic!("this test needs REDIS_URL");
    };
    let client = redis::Client::open(url.expose_secret()).unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    let channel = alawael::events::channel(app.state.db.name());
    // Every instance's messages, as anyone who can reach Redis sees them.
    let mut watcher = client.get_async_pubsub().await.unwrap();
    watcher.subscribe(&channel).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.state.bus.is_shared() {
        assert!(Instant::now() < deadline, "the relay subscribes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let admin = app.login("admin").await;
    person_with_a_session(&app, &admin, &AMAL).await;
    let mut seen = String::new();
    let mut messages = watcher.on_message();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), messages.next()).await
    {
        seen.push_str(&String::from_utf8_lossy(message.get_payload_bytes()));
    }
    drop(messages);
    assert!(!seen.is_empty(), "the writes crossed the channel");
    assert_eq!(
        shows(&seen, &values_of(&AMAL)),
        Vec::<&String>::new(),
        "personal values crossed the channel"
    );

    let mut bus = app.state.bus.subscribe();
    let user = bson::oid::ObjectId::new();
    let event = alawael::events::Event::AccountChanged { user };
    let right = alawael::events::EventKey::of(&app.state.settings);
    let wrong = alawael::events::EventKey::new("somebody else's key");
    let signed = alawael::events::wire(&event, &channel, &right).unwrap();
    let mut altered = signed.clone();
    let last = altered.len() - 2;
    altered[last] ^= 1;
    let forged = [
        signed[32..].to_vec(),
        alawael::events::wire(&event, &channel, &wrong).unwrap(),
        altered,
        alawael::events::wire(&event, "alawael:another:events", &right).unwrap(),
    ];
    let rejected_before = rejected(&app).await;
    for message in &forged {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(message.as_slice())
            .query_async(&mut publisher)
            .await
            .unwrap();
    }
    // The one message signed with the instances' key is obeyed...
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(signed.as_slice())
        .query_async(&mut publisher)
        .await
        .unwrap();
    let obeyed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(alawael::events::Event::AccountChanged { user: got }) = bus.recv().await {
                return got;
            }
        }
    })
    .await
    .expect("the signed message arrives");
    assert_eq!(obeyed, user);
    // ...and none of the others reached the bus, each counted.
    assert!(bus.try_recv().is_err(), "a forged message was obeyed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while rejected(&app).await < rejected_before + forged.len() as f64 {
        assert!(
            Instant::now() < deadline,
            "the rejected messages are counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `alawael_events_relay_rejected_total` as `/metrics` shows it.
async fn rejected(app: &TestApp) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("alawael_events_relay_rejected_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn no_personal_value_appears_in_the_server_log_at_any_level() {
    // The database with its accounts, served by a separate process logging everything.
    let app = spawn_app().await;
    let log = tempfile_path("alawael-privacy-log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_alawael"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("ALAWAEL_ENV", "test")
        .env("RUST_LOG", "trace")
        .env(
            "MONGODB_URI",
            app.state.settings.database.uri.expose_secret(),
        )
        .env("JWT_SECRET", "a-test-secret-that-is-long-enough-to-use")
        .env("ALAWAEL_MASTER_KEY", TEST_MASTER_KEY)
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ))
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
    let admin = other.login("admin").await;
    let (beneficiary, _) = person_with_a_session(&other, &admin, &AMAL).await;
    for query in [
        "query($id: ID!) { beneficiary(id: $id) { fullName nationalId dateOfBirth guardian { name phone } medicalNotes sessions(first: 5) { nodes { notes } } } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ] {
        other
            .gql(Some(&admin), query, json!({ "id": beneficiary }))
            .await;
    }
    // Bad input that carries personal values is refused without echoing them.
    let refused = other
        .gql(
            Some(&admin),
            "mutation($i: CreateBeneficiaryInput!) { createBeneficiary(input: $i) { id } }",
            json!({ "i": { "fullName": AMAL.name, "nationalId": AMAL.national_id, "dateOfBirth": "2999-01-01",
                           "gender": "FEMALE", "disabilityType": "x", "severity": "MILD" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    other
        .gql(
            Some(&admin),
            "mutation($id: ID!) { exportBeneficiaryData(id: $id) }",
            json!({ "id": beneficiary }),
        )
        .await;
    other
        .gql(Some(&admin), ERASE, json!({ "id": beneficiary }))
        .await;
    let _ = server.kill();
    let _ = server.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.lines().count() > 50,
        "the server logged at trace level"
    );
    assert_eq!(
        shows(&text, &values_of(&AMAL)),
        Vec::<&String>::new(),
        "personal values in the log"
    );
}

fn tempfile_path(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()))
}

#[tokio::test]
async fn a_dump_of_the_seeded_clinic_holds_no_seeded_national_id_birth_date_or_note() {
    let app = spawn_app().await;
    let db = &app.state.db;
    alawael::seed::clinic::load(db, &app.state.vault, &app.state.settings.seed, 1, |_| {})
        .await
        .unwrap();
    let text = dump(db.database()).await;
    // The first seeded people's national ids, a birth date and note texts.
    let seeded = [
        "2100000000".to_string(),
        "1100000001".to_string(),
        "Assessed 2026-01-04".to_string(),
        "worked on".to_string(),
        "+966 5".to_string(),
    ];
    assert_eq!(shows(&text, &seeded), Vec::<&String>::new());
    let admin = app.login("admin").await;
    let found = ok(
        &app,
        &admin,
        "{ beneficiaries(first: 1, filter: { nationalId: \"2100000000\" }) { nodes { nationalId medicalNotes } } }",
        json!({}),
        "beneficiaries",
    )
    .await;
    assert_eq!(found["nodes"][0]["nationalId"], "2100000000", "{found}");
    assert!(
        found["nodes"][0]["medicalNotes"]
            .as_str()
            .unwrap()
            .starts_with("Assessed 2026-01-04")
    );
}

/// A redis-server of the test's own, with a password and TLS only.
struct TlsRedis {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
    ca: std::path::PathBuf,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls_redis(password: &str) -> TlsRedis {
    let dir = tempfile_path("alawael-tls-redis");
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_file = write("ca.pem", ca.pem());
    let cert_file = write("server.pem", cert.pem());
    let key_file = write("server.key", key.serialize_pem());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            cert_file.to_str().unwrap(),
            "--tls-key-file",
            key_file.to_str().unwrap(),
            "--tls-ca-cert-file",
            ca_file.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server listens with TLS");
        std::thread::sleep(Duration::from_millis(20));
    }
    TlsRedis {
        child,
        dir,
        port,
        ca: ca_file,
    }
}

#[tokio::test]
async fn redis_with_a_password_and_tls_is_used_through_a_rediss_url_and_a_private_ca() {
    let redis = tls_redis("a-redis-password");
    let settings = |url: String, ca: Option<std::path::PathBuf>| alawael::config::RedisSettings {
        url: Some(url.into()),
        events_key: None,
        ca_file: ca,
        connect_timeout_ms: 2000,
        response_timeout_ms: 2000,
    };
    let url = format!("rediss://:a-redis-password@127.0.0.1:{}/", redis.port);
    let good = settings(url.clone(), Some(redis.ca.clone()));
    let writer = alawael::cache::Cache::connect(&good).await.unwrap();
    writer
        .set_text("tls-check", "over TLS", Duration::from_secs(60))
        .await;
    // A second handle has nothing in process: what it reads came from Redis.
    let reader = alawael::cache::Cache::connect(&good).await.unwrap();
    assert_eq!(
        reader
            .get_text("tls-check", Duration::from_secs(60))
            .await
            .as_deref(),
        Some("over TLS")
    );
    // A wrong password, plain TCP, or a certificate no root vouches for: no Redis.
    for refused in [
        settings(
            format!("rediss://:wrong@127.0.0.1:{}/", redis.port),
            Some(redis.ca.clone()),
        ),
        settings(
            format!("redis://:a-redis-password@127.0.0.1:{}/", redis.port),
            None,
        ),
        settings(url.clone(), None),
    ] {
        let cache = alawael::cache::Cache::connect(&refused).await.unwrap();
        assert_eq!(
            cache.get_text("tls-check", Duration::from_secs(60)).await,
            None
        );
    }
}
