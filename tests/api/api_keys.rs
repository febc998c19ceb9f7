//! API keys for partner systems (SECURITY.md 34): shown once, stored
//! hashed, scoped, with a role ceiling, expiring, revocable at once; never
//! reaching a field outside their scopes, by any path.

use std::process::Command;
use std::time::{Duration, Instant};

use bson::doc;
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::clinic::{create_beneficiary, ok};
use crate::support::helpers::{TestApp, error_code, spawn_app};

const CREATE: &str = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id name scopes role uses } } }";

async fn create(app: &TestApp, admin: &str, input: Value) -> (String, String) {
    let made = ok(app, admin, CREATE, json!({ "i": input }), "createApiKey").await;
    (
        made["key"].as_str().unwrap().to_string(),
        made["apiKey"]["id"].as_str().unwrap().to_string(),
    )
}

/// One operation sent with `header: value`.
async fn with_header(app: &TestApp, header: &str, value: &str, query: &str) -> Value {
    app.http
        .post(format!("{}/graphql", app.address))
        .header(header, value)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn as_key(app: &TestApp, key: &str, query: &str) -> Value {
    with_header(app, "authorization", &format!("ApiKey {key}"), query).await
}

#[tokio::test]
async fn a_key_reads_what_its_scopes_cover_and_nothing_else() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let manager = app.user_id("manager").await;
    ok(
        &app,
        &admin,
        "mutation($m: ID!) { createAsset(input: { name: \"Hoist\", category: EQUIPMENT, value: { amountMinor: 1, currency: \"SAR\" }, status: IN_USE, assignedToId: $m }) { id } }",
        json!({ "m": manager }),
        "createAsset",
    )
    .await;
    let person = create_beneficiary(&app, &admin, "Key Person", "KEY1234567").await;
    let (key, id) = create(
        &app,
        &admin,
        json!({ "name": "inventory partner", "scopes": ["assets:read"], "role": "MANAGER" }),
    )
    .await;
    assert!(key.starts_with("alw_"));

    // Shown once: the list never shows it, the database keeps only a hash.
    let listed = ok(
        &app,
        &admin,
        "{ apiKeys { id name scopes role } }",
        json!({}),
        "apiKeys",
    )
    .await;
    assert!(!listed.to_string().contains(&key[30..]), "{listed}");
    let stored: Vec<bson::Document> = app
        .state
        .db
        .collection("api_keys")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let text = format!("{stored:?}");
    assert!(!text.contains(&key[30..]), "the key is stored");

    // It reads assets, by header or by X-Api-Key.
    let assets = as_key(
        &app,
        &key,
        "{ assets(first: 5) { totalCount nodes { name } } }",
    )
    .await;
    assert_eq!(assets["data"]["assets"]["totalCount"], 1, "{assets}");
    let by_header = with_header(
        &app,
        "x-api-key",
        &key,
        "{ assets(first: 1) { totalCount } }",
    )
    .await;
    assert_eq!(by_header["data"]["assets"]["totalCount"], 1, "{by_header}");

    // Nothing outside its scopes, by any path.
    for query in [
        "{ beneficiaries(first: 1) { nodes { fullName } } }".to_string(),
        format!("{{ node(id: \"{person}\") {{ ... on Beneficiary {{ fullName }} }} }}"),
        "{ assets(first: 1) { nodes { assignedTo { email } } } }".to_string(),
        "{ users(first: 1) { nodes { name } } }".to_string(),
        "{ me { id } }".to_string(),
        "{ sessions { id } }".to_string(),
        "mutation { deleteAsset(id: \"QXNzZXQ6MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw\") }".to_string(),
        format!("mutation {{ exportBeneficiaryData(id: \"{person}\") }}"),
    ] {
        let body = as_key(&app, &key, &query).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}: {body}");
        assert!(!body.to_string().contains("Key Person"), "{body}");
    }
    // The role ceiling still applies inside its scopes.
    let (limited, _) = create(
        &app,
        &admin,
        json!({ "name": "read-only", "scopes": ["assets:read", "assets:write"], "role": "USER" }),
    )
    .await;
    let write = as_key(
        &app,
        &limited,
        "mutation { createAsset(input: { name: \"X\", category: EQUIPMENT, value: { amountMinor: 1, currency: \"SAR\" }, status: AVAILABLE }) { id } }",
    )
    .await;
    assert_eq!(error_code(&write), "FORBIDDEN", "{write}");

    // Its uses are counted (stored every few seconds).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let keys = ok(
            &app,
            &admin,
            "{ apiKeys { id uses lastUsedAt } }",
            json!({}),
            "apiKeys",
        )
        .await;
        let mine = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .unwrap()
            .clone();
        if mine["uses"].as_i64().unwrap() >= 2 {
            assert!(mine["lastUsedAt"].is_string());
            break;
        }
        assert!(Instant::now() < deadline, "uses are counted: {mine}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Creation is audited without the key.
    let audit = ok(
        &app,
        &admin,
        "{ auditLog(first: 10, filter: { entityType: \"ApiKey\" }) { nodes { action changes { field after } } } }",
        json!({}),
        "auditLog",
    )
    .await;
    assert!(audit.to_string().contains("apikey.create"), "{audit}");
    assert!(!audit.to_string().contains(&key[30..]));
}

#[tokio::test]
async fn a_key_ends_when_revoked_or_expired_and_a_forged_one_never_works() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let (key, id) = create(
        &app,
        &admin,
        json!({ "name": "p", "scopes": ["assets:read"] }),
    )
    .await;
    assert!(as_key(&app, &key, "{ assets(first: 1) { totalCount } }").await["errors"].is_null());
    let revoked = ok(
        &app,
        &admin,
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        json!({ "id": id }),
        "revokeApiKey",
    )
    .await;
    assert!(revoked["revokedAt"].is_string());
    let body = as_key(&app, &key, "{ assets(first: 1) { totalCount } }").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (short, _) = create(
        &app,
        &admin,
        json!({ "name": "short", "scopes": ["assets:read"], "expiresAt": soon }),
    )
    .await;
    assert!(as_key(&app, &short, "{ assets(first: 1) { totalCount } }").await["errors"].is_null());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let body = as_key(&app, &short, "{ assets(first: 1) { totalCount } }").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    let (live, _) = create(
        &app,
        &admin,
        json!({ "name": "live", "scopes": ["assets:read"] }),
    )
    .await;
    let mut forged = live.clone();
    forged.pop();
    forged.push(if live.ends_with('A') { 'B' } else { 'A' });
    for bad in [
        forged.as_str(),
        "alw_nothing",
        "alw_000000000000000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let body = as_key(&app, bad, "{ assets(first: 1) { totalCount } }").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{bad}: {body}");
    }
    // Only ADMIN makes keys; a key never makes one.
    let manager = app.login("manager").await;
    let refused = app
        .gql(
            Some(&manager),
            CREATE,
            json!({ "i": { "name": "m", "scopes": [] } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let unknown = app
        .gql(
            Some(&admin),
            CREATE,
            json!({ "i": { "name": "m", "scopes": ["assets:delete"] } }),
        )
        .await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT", "{unknown}");
}

#[tokio::test]
async fn operators_create_list_and_revoke_keys_from_the_command_line() {
    let app = spawn_app().await;
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_alawael"))
            .args(args)
            .env_clear()
            .env("ALAWAEL_ENV", "test")
            .env("JWT_SECRET", app.state.settings.auth.secret())
            .env(
                "MONGODB_URI",
                app.state.settings.database.uri.expose_secret(),
            )
            .env(
                "REDIS_URL",
                app.state
                    .settings
                    .redis
                    .url
                    .as_ref()
                    .map(|u| u.expose_secret().to_string())
                    .unwrap_or_default(),
            )
            .output()
            .unwrap()
    };
    let made = cli(&[
        "apikey",
        "create",
        "--name",
        "reports partner",
        "--scopes",
        "reports:read,assets:read",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key = String::from_utf8_lossy(&made.stdout).trim().to_string();
    assert!(key.starts_with("alw_"), "{key}");
    assert!(as_key(&app, &key, "{ assets(first: 1) { totalCount } }").await["errors"].is_null());
    let listed = String::from_utf8_lossy(&cli(&["apikey", "list"]).stdout).to_string();
    assert!(
        listed.contains("reports partner") && listed.contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(&key[30..]));
    let id = listed.split_whitespace().next().unwrap().to_string();
    let revoked = cli(&["apikey", "revoke", &id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    // Every server hears of it through the event channel: refused at once.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let body = as_key(&app, &key, "{ assets(first: 1) { totalCount } }").await;
        if error_code(&body) == "UNAUTHENTICATED" {
            break;
        }
        assert!(Instant::now() < deadline, "still accepted: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_key_subscribes_over_a_websocket_within_its_scopes() {
    use crate::websockets::{connect, next, send};
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let (key, _) = create(
        &app,
        &admin,
        json!({ "name": "ws", "scopes": ["assets:read"], "role": "MANAGER" }),
    )
    .await;
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "apiKey": key } }),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { reportUpdated(id: \"x\") { id } }" } }),
    )
    .await;
    let refused = next(&mut socket).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(refused.to_string().contains("FORBIDDEN"), "{refused}");
    send(
        &mut socket,
        json!({ "id": "2", "type": "subscribe", "payload": { "query": "{ assets(first: 1) { totalCount } }" } }),
    )
    .await;
    let answered = next(&mut socket).await.unwrap();
    assert_eq!(
        answered["payload"]["data"]["assets"]["totalCount"], 0,
        "{answered}"
    );
}
