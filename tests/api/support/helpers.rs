//! `spawn_app`: the real application on port 0, with a database of its own,
//! migrated and seeded with the four development accounts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use alawael::cache::Cache;
use alawael::config::{self, Environment, Settings};
use alawael::db::{Db, migrations};
use alawael::startup::Application;
use alawael::state::AppState;
use serde_json::{Value, json};

pub const PASSWORD: &str = "test-seed-password-1";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A connection string that names `database` instead of the one in `uri`.
pub fn with_database(uri: &str, database: &str) -> String {
    let (scheme, rest) = uri.split_once("://").expect("a MongoDB URI has a scheme");
    let (hosts, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{hosts}/{database}{query}")
}

pub fn unique_database() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// The master key the tests seal with (not the published development key,
/// which production refuses).
pub const TEST_MASTER_KEY: &str = "test:YWxhd2FlbC10ZXN0LW1hc3Rlci1rZXktMzJieXRlcyE=";

/// Test settings pointing at a fresh database; `REDIS_URL` from the environment.
pub fn test_settings(environment: Environment) -> Settings {
    let base = std::env::var("MONGODB_URI").expect("MONGODB_URI is set by scripts/test");
    let mut vars = HashMap::new();
    vars.insert(
        "MONGODB_URI".to_string(),
        with_database(&base, &unique_database()),
    );
    if let Ok(redis) = std::env::var("REDIS_URL") {
        vars.insert("REDIS_URL".to_string(), redis);
    }
    vars.insert("SEED_PASSWORD".to_string(), PASSWORD.to_string());
    vars.insert(
        "ALAWAEL_MASTER_KEY".to_string(),
        TEST_MASTER_KEY.to_string(),
    );
    vars.insert(
        "JWT_SECRET".to_string(),
        "a-test-secret-that-is-long-enough-to-use".to_string(),
    );
    let mut settings =
        config::load_from(Path::new("config"), environment, &vars).expect("test settings load");
    // One serving thread in every environment: the test's runtime serves, and
    // nothing outlives the test (a test asks for more when it tests them).
    settings.server.threads = 1;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(Environment::Test);
    tweak(&mut settings);
    spawn_with_settings(settings).await
}

pub async fn spawn_with_settings(settings: Settings) -> TestApp {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let db = Db::connect(&settings.database)
        .await
        .expect("database reachable");
    migrations::up(&db, &alawael::models::registry::indexes())
        .await
        .expect("migrations apply");
    alawael::seed::load_parts(&db, &settings.seed, false)
        .await
        .expect("seed accounts");
    let cache = Cache::connect(&settings.redis).await.expect("cache");
    let app =
        Application::from_parts(settings, db, cache, Some("127.0.0.1:0")).expect("app builds");
    let port = app.port();
    let state = app.state();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        state,
        http: reqwest::Client::new(),
        server,
    }
}

impl TestApp {
    /// The same database and state, talking to another server (a separate
    /// process serving the same database) at `port`.
    pub fn at_port(&self, port: u16) -> TestApp {
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            state: self.state.clone(),
            http: reqwest::Client::new(),
            server: tokio::spawn(async { Ok(()) }),
        }
    }

    /// Sends one GraphQL operation and returns the JSON body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), 200, "GraphQL answers 200");
        response.json().await.expect("JSON body")
    }

    /// Signs in as a seeded account (`admin`, `manager`, `therapist`, `user`).
    pub async fn login(&self, who: &str) -> String {
        self.login_full(who).await["accessToken"]
            .as_str()
            .expect("access token")
            .to_string()
    }

    pub async fn login_full(&self, who: &str) -> Value {
        let body = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken expiresIn user { id email role } } }",
                json!({ "e": format!("{who}@alawael.local"), "p": PASSWORD }),
            )
            .await;
        assert!(body["errors"].is_null(), "login as {who} failed: {body}");
        body["data"]["login"].clone()
    }

    /// The global id of a seeded account.
    pub async fn user_id(&self, who: &str) -> String {
        self.login_full(who).await["user"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Creates an asset as ADMIN; returns its id.
    pub async fn create_asset(&self, token: &str, name: &str, serial: Option<&str>) -> String {
        let body = self
            .gql(
                Some(token),
                "mutation($i: CreateAssetInput!) { createAsset(input: $i) { id } }",
                json!({ "i": { "name": name, "category": "MEDICAL", "value": { "amountMinor": 150000, "currency": "SAR" }, "serialNumber": serial } }),
            )
            .await;
        assert!(body["errors"].is_null(), "createAsset failed: {body}");
        body["data"]["createAsset"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// A GET to a path of the app, e.g. `/health/ready`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// The audit entries about one entity, newest first.
    pub async fn audit_for(
        &self,
        entity_type: &str,
        id: bson::oid::ObjectId,
    ) -> Vec<alawael::models::audit_log_entry::entry::AuditLogEntryRecord> {
        self.state
            .db
            .audit()
            .for_entity(entity_type, &id.to_hex())
            .await
            .expect("audit entries")
    }

    /// Database commands this app has started so far.
    pub fn db_commands(&self) -> u64 {
        self.state.db.commands_started()
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no error>")
}

/// The SHA-256 of a text, in hexadecimal (persisted-query hashes).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Percent-encodes a query-string value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
