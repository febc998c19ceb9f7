//! The master keys (SECURITY.md 27): rotation rewraps every data key with
//! the new master key while the old one still unwraps, resumes after a
//! crash, is audited; no master key is ever stored or printed; values kept
//! in clear before sealing are sealed by `alawael migrate up`.

use std::process::{Command, Output};

use alawael::vault::{MasterKeys, Vault};
use bson::oid::ObjectId;
use bson::{Bson, Document, doc};
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::support::clinic::{create_beneficiary, ok};
use crate::support::helpers::{TEST_MASTER_KEY, TestApp, spawn_app};

const NEW_KEY: &str = "k2:bmV3LW1hc3Rlci1rZXktZm9yLXRoZS1yb3RhdGlvbiE=";
const GONE_KEY: &str = "gone:a2V5LW5vYm9keS1nYXZlLXRoZS1jb21tYW5kLWxpbmU=";

/// The binary against the app's database, with these master keys.
fn cli(app: &TestApp, keys: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alawael"))
        .args(args)
        .env_clear()
        .env("ALAWAEL_ENV", "test")
        .env("JWT_SECRET", app.state.settings.auth.secret())
        .env(
            "MONGODB_URI",
            app.state.settings.database.uri.expose_secret(),
        )
        .env("ALAWAEL_MASTER_KEY", keys)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn vault(app: &TestApp, keys: &str) -> Vault {
    Vault::new(
        MasterKeys::parse(keys).unwrap(),
        &app.state.db,
        app.state.vault.database(),
        100,
    )
}

async fn all(db: &mongodb::Database) -> String {
    let mut out = String::new();
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
            out.push_str(&Bson::Document(row).into_relaxed_extjson().to_string());
        }
    }
    out
}

#[tokio::test]
async fn a_rotation_rewraps_every_key_resumes_after_a_crash_and_is_audited() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let mut people = Vec::new();
    for (name, national) in [
        ("Rana One", "ROT000001"),
        ("Rana Two", "ROT000002"),
        ("Rana Three", "ROT000003"),
    ] {
        people.push(create_beneficiary(&app, &admin, name, national).await);
    }
    let ids: Vec<ObjectId> = people
        .iter()
        .map(|p| alawael::domain::GlobalId::decode(p).unwrap().id)
        .collect();
    let status = cli(&app, TEST_MASTER_KEY, &["keys", "status"]);
    assert!(
        text(&status).contains("4 keys wrapped by `test`"),
        "{}",
        text(&status)
    );

    // A key wrapped by a master key the command is not given, sorted
    // between the second and the third person: the first run stops there,
    // as a crash would, with part of the keys rewrapped.
    let mut between = ids[1].bytes();
    between[11] = between[11].wrapping_add(1);
    let stray = ObjectId::from_bytes(between);
    assert!(
        stray < ids[2],
        "the stray key sorts before the third person"
    );
    vault(&app, GONE_KEY).create_key(stray).await.unwrap();
    let rotation = format!("{NEW_KEY},{TEST_MASTER_KEY}");
    let cut = cli(&app, &rotation, &["keys", "rotate"]);
    assert!(!cut.status.success(), "{}", text(&cut));
    assert!(text(&cut).contains("master key `gone`"), "{}", text(&cut));
    let status = text(&cli(&app, &rotation, &["keys", "status"]));
    assert!(status.contains("3 keys wrapped by `k2`"), "{status}");
    assert!(status.contains("1 keys wrapped by `test`"), "{status}");

    // Meanwhile a server given both keys reads everyone.
    let both = vault(&app, &rotation);
    for id in &ids {
        assert!(both.key(*id).await.unwrap().is_some());
    }
    // Run again with the missing key: it resumes and finishes.
    let resumed = cli(&app, &format!("{rotation},{GONE_KEY}"), &["keys", "rotate"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("2 keys rewrapped"),
        "{}",
        text(&resumed)
    );
    let status = text(&cli(&app, NEW_KEY, &["keys", "status"]));
    assert!(status.contains("5 keys wrapped by `k2`"), "{status}");
    // The new key alone opens everything now.
    let new_only = vault(&app, NEW_KEY);
    let stored = app
        .state
        .db
        .collection("beneficiaries")
        .find_one(doc! { "_id": ids[0] })
        .await
        .unwrap()
        .unwrap();
    let sealed = alawael::vault::Sealed::parse(stored.get_str("nationalId").unwrap()).unwrap();
    assert_eq!(
        new_only.open(&sealed).await.unwrap().as_deref(),
        Some("ROT000001")
    );
    assert!(
        new_only
            .blind_index("nationalId", "ROT000001")
            .await
            .is_ok()
    );

    let audit = ok(
        &app,
        &admin,
        "{ auditLog(first: 10, filter: { entityType: \"MasterKey\" }) { nodes { action } } }",
        json!({}),
        "auditLog",
    )
    .await;
    let actions: Vec<&str> = audit["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["action"].as_str())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "keys.rotate.start")
            .count(),
        2,
        "{audit}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "keys.rotate.finish")
            .count(),
        1,
        "{audit}"
    );
    let verified = ok(
        &app,
        &admin,
        "{ verifyAuditChain { ok } }",
        json!({}),
        "verifyAuditChain",
    )
    .await;
    assert_eq!(verified["ok"], true);

    // No master key is stored anywhere, nor printed by the command line.
    let client = app.state.db.client();
    let stored = format!(
        "{}{}",
        all(app.state.db.database()).await,
        all(&client.database(app.state.vault.database())).await
    );
    for key in [TEST_MASTER_KEY, NEW_KEY, GONE_KEY] {
        let secret = key.split_once(':').unwrap().1;
        assert!(!stored.contains(secret), "a master key is stored");
        for output in [&cut, &resumed] {
            assert!(!text(output).contains(secret), "a master key is printed");
        }
    }
}

#[tokio::test]
async fn migrate_up_seals_the_values_kept_in_clear_before_values_were_sealed() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let id = ObjectId::new();
    let now = bson::DateTime::now();
    app.state
        .db
        .collection("beneficiaries")
        .insert_one(doc! {
            "_id": id, "fullName": "Old Record", "nationalId": "OLD123456", "nationalIdKey": "OLD123456",
            "dateOfBirth": "2012-07-09", "gender": "MALE", "disabilityType": "autism", "severity": "MILD",
            "guardian": { "name": "Old Guardian", "phone": "+966 55 111 2222", "relation": "father" },
            "medicalNotes": "old clear notes", "status": "ACTIVE", "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    let session = ObjectId::new();
    app.state
        .db
        .collection("therapy_sessions")
        .insert_one(doc! {
            "_id": session, "enrollmentId": ObjectId::new(), "beneficiaryId": id,
            "therapistId": ObjectId::new(), "programId": ObjectId::new(),
            "startedAt": now, "durationMinutes": 30, "attendance": "ATTENDED",
            "notes": "old clear session notes", "createdAt": now, "updatedAt": now,
        })
        .await
        .unwrap();
    let output = cli(&app, TEST_MASTER_KEY, &["migrate", "up"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("1 beneficiaries and 1 session notes"),
        "{}",
        text(&output)
    );
    let stored = all(app.state.db.database()).await;
    for clear in [
        "OLD123456",
        "2012-07-09",
        "Old Guardian",
        "old clear notes",
        "old clear session notes",
    ] {
        assert!(!stored.contains(clear), "{clear} is still in clear");
    }
    let global =
        alawael::domain::GlobalId::new(alawael::domain::NodeKind::Beneficiary, id).encode();
    let read = ok(
        &app,
        &admin,
        "query($id: ID!) { beneficiary(id: $id) { nationalId dateOfBirth birthYear guardian { name } medicalNotes } }",
        json!({ "id": global }),
        "beneficiary",
    )
    .await;
    assert_eq!(
        read,
        json!({ "nationalId": "OLD123456", "dateOfBirth": "2012-07-09", "birthYear": 2012,
                "guardian": { "name": "Old Guardian" }, "medicalNotes": "old clear notes" })
    );
    let found = ok(
        &app,
        &admin,
        "{ beneficiaries(first: 5, filter: { nationalId: \"old123456\" }) { nodes { fullName } } }",
        json!({}),
        "beneficiaries",
    )
    .await;
    assert_eq!(found["nodes"], json!([{ "fullName": "Old Record" }]));
    // Once done, nothing is left to seal.
    let again = cli(&app, TEST_MASTER_KEY, &["migrate", "up"]);
    assert!(!text(&again).contains("sealed"), "{}", text(&again));
}
