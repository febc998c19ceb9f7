//! Typed settings, loaded in layers: `config/default.toml`, then
//! `config/<ALAWAEL_ENV>.toml`, then `ALAWAEL__SECTION__KEY` variables, then the
//! shortcuts `MONGODB_URI`, `REDIS_URL`, `JWT_SECRET` and `SEED_PASSWORD`.
//! Unknown keys are errors; secrets are wrapped so they never print.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The base64 of the development master key (`vault::DEVELOPMENT_MASTER_KEY`),
/// refused in production.
const DEVELOPMENT_MASTER_KEY_TEXT: &str = "YWxhd2FlbC1kZXZlbG9wbWVudC1tYXN0ZXIta2V5ISE=";

/// The secret development falls back to without `JWT_SECRET`; production refuses it.
pub const DEVELOPMENT_JWT_SECRET: &str = "alawael-development-secret-do-not-use-in-production";
/// The documented development password of the seeded accounts.
pub const DEVELOPMENT_SEED_PASSWORD: &str = "alawael-dev-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }

    fn parse(value: &str) -> Result<Self, ConfigError> {
        match value {
            "development" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "production" => Ok(Self::Production),
            other => Err(ConfigError::Invalid(format!(
                "ALAWAEL_ENV is {other:?}; use development, test or production"
            ))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be read or does not fit the settings' shape.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// The settings were read but break a rule.
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub graphql: GraphqlSettings,
    pub websocket: WebsocketSettings,
    pub webhooks: WebhookSettings,
    pub retention: RetentionSettings,
    pub seed: SeedSettings,
    pub reports: ReportSettings,
    pub response_cache: ResponseCacheSettings,
    pub documents: DocumentSettings,
    pub vault: VaultSettings,
    pub quotas: QuotaSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    server: ServerSettings,
    database: DatabaseSettings,
    redis: RedisSettings,
    auth: AuthSettings,
    graphql: GraphqlSettings,
    websocket: WebsocketSettings,
    webhooks: WebhookSettings,
    retention: RetentionSettings,
    seed: SeedSettings,
    reports: ReportSettings,
    response_cache: ResponseCacheSettings,
    documents: DocumentSettings,
    vault: VaultSettings,
    quotas: QuotaSettings,
}

/// A bucket: units a minute, and how many may be spent at once.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub per_minute: u64,
    pub burst: u64,
}

/// Quotas per caller, charged by each operation's cost (one unit a field,
/// lists multiplying by their rows): per account by role, per API key, per
/// client address for anonymous callers; and stricter buckets of their own
/// for the operations an attacker repeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    pub enabled: bool,
    pub anonymous: LimitSettings,
    pub user: LimitSettings,
    pub therapist: LimitSettings,
    pub manager: LimitSettings,
    pub admin: LimitSettings,
    pub api_key: LimitSettings,
    /// Per API key (its id), instead of `api_key`.
    #[serde(default)]
    pub keys: std::collections::HashMap<String, LimitSettings>,
    /// `login` (per address), `refreshToken` (per address),
    /// `exportBeneficiaryData` and `eraseBeneficiary` (per caller),
    /// `requestReport` (per caller): operations a minute.
    pub login: LimitSettings,
    pub refresh_token: LimitSettings,
    pub personal_data: LimitSettings,
    pub request_report: LimitSettings,
}

/// Encryption at rest: where the master keys come from (never the
/// database) and where the wrapped data keys are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// The master keys as `id:base64` (32 bytes), the wrapping one first,
    /// older ones after it during a rotation (`ALAWAEL_MASTER_KEY`).
    #[serde(default)]
    pub master_keys: Option<SecretString>,
    /// A file holding the master keys instead, one `id:base64` per line.
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// The database holding the wrapped data keys; the API's database name
    /// with `_vault` when unset. Back it up apart from the data.
    #[serde(default)]
    pub database: Option<String>,
    /// Data keys kept unwrapped in memory.
    pub key_cache: usize,
}

impl VaultSettings {
    /// Whether neither a key nor a key file is given (development then
    /// uses the published development key; production refuses to start).
    pub fn uses_development_key(&self) -> bool {
        self.master_keys.is_none() && self.master_key_file.is_none()
    }
}

/// Trusted documents: the operations this server runs when `trusted_only`
/// is on, from a manifest file and/or the Redis set `alawael documents` edits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSettings {
    /// Serve only trusted documents; anything else is `PERSISTED_QUERY_REQUIRED`.
    pub trusted_only: bool,
    /// A manifest (Apollo's persisted-query manifest or GraphQL Code
    /// Generator's `persisted-documents.json`), read at start and on SIGHUP.
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    /// Also load the documents stored in Redis by `alawael documents add`.
    pub from_redis: bool,
    /// Let untrusted introspection (`__schema`, `__type`) through.
    pub allow_introspection: bool,
    /// Automatic persisted queries are registered only for a signed-in
    /// caller (on in production): anonymous callers may still use them.
    pub register_signed_in_only: bool,
    /// Bytes of persisted-query texts kept in this process, in front of Redis.
    pub persisted_memory_bytes: usize,
}

/// Outgoing webhooks: who may be called, and how deliveries are retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Only `https://` targets (on in production).
    pub require_https: bool,
    /// Allow targets on loopback addresses (tests, local development).
    pub allow_loopback: bool,
    /// Allow targets on private, link-local and shared address ranges.
    pub allow_private: bool,
    pub timeout_ms: u64,
    /// Attempts before a delivery is DEAD.
    pub max_attempts: i32,
    /// The first retry waits about this long, doubling each time (with jitter) up to the maximum.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Consecutive failed attempts after which the webhook is disabled.
    pub disable_after_failures: i32,
    /// How long a worker holds a delivery it is sending before another may take it.
    pub lease_secs: u64,
    /// How often the worker looks for due deliveries (it is also woken at once).
    pub poll_ms: u64,
    /// Deliveries sent at once by one instance.
    pub concurrency: usize,
    /// How long the previous secret still signs after a rotation.
    pub secret_grace_secs: u64,
}

/// How long rows are kept, and how the sweeper removes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub analytics_days: u32,
    pub reports_days: u32,
    pub deliveries_days: u32,
    /// Seconds between sweeps (one instance sweeps at a time).
    pub interval_secs: u64,
    /// Rows removed per command.
    pub batch_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// `/metrics` answers only with `Authorization: Bearer <this>`
    /// (`ALAWAEL_METRICS_TOKEN`).
    #[serde(default)]
    pub metrics_token: Option<SecretString>,
    /// Without a token, whether `/metrics` is open to anyone who reaches the
    /// server (development and tests); off, it answers 404 (production).
    pub metrics_public: bool,
    pub bind: String,
    pub request_timeout_secs: u64,
    pub body_limit_bytes: usize,
    pub cors_origins: Vec<String>,
    pub graphiql: bool,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted
    /// proxy), read from the right.
    pub trust_forwarded_for: bool,
    /// The proxies in front of the server (CIDRs): `X-Forwarded-For` counts
    /// only from them, and their own entries are skipped. Empty: the peer is
    /// the one proxy.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Seconds between readiness turning 503 and the listener closing.
    pub shutdown_drain_secs: u64,
    /// Seconds in-flight requests get to finish once the listener closed.
    pub shutdown_grace_secs: u64,
    /// Run the background workers (webhook sender, outbox recovery,
    /// retention sweeper) in this process. Off only where the database's
    /// commands must be the requests' alone (command-count tests).
    pub background_workers: bool,
    /// Serving threads, each a single-threaded runtime with its own database
    /// and Redis connections, accepting from one listener; 0 means one per CPU.
    pub threads: usize,
    /// Operations executing at once (answers from the response cache do not
    /// count). More wait up to `admission_wait_ms`, then are refused with
    /// `SERVICE_UNAVAILABLE`, so an overload is shed at once instead of
    /// piling work on the database that nobody waits for any more.
    pub max_concurrent_operations: usize,
    pub admission_wait_ms: u64,
    #[serde(default)]
    pub tls_cert_path: Option<PathBuf>,
    #[serde(default)]
    pub tls_key_path: Option<PathBuf>,
}

/// More serving threads than this is a mistake, not a tuning: each opens a
/// database pool and a Redis connection of its own.
pub const MAX_SERVING_THREADS: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A MongoDB connection string; its path names the database (default `alawael`).
    pub uri: SecretString,
    pub min_pool_size: u32,
    pub max_pool_size: u32,
    pub connect_timeout_ms: u64,
    pub server_selection_timeout_ms: u64,
    /// Time limit attached to every query (`maxTimeMS`).
    pub max_time_ms: u64,
    pub retry_writes: bool,
    pub majority_writes: bool,
    /// Operations (and commands) slower than this are logged.
    pub slow_command_ms: u64,
    /// Per-command monitoring: counts by command and collection, reads
    /// without a time limit. Costs a copy of every reply.
    pub command_events: bool,
    pub startup_attempts: u32,
    pub startup_backoff_ms: u64,
}

impl DatabaseSettings {
    pub fn max_time(&self) -> Duration {
        Duration::from_millis(self.max_time_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    #[serde(default)]
    pub url: Option<SecretString>,
    /// Signs the event channel's messages; every instance of a deployment
    /// needs the same (`ALAWAEL_EVENTS_KEY`). Derived from the token secret
    /// when unset.
    #[serde(default)]
    pub events_key: Option<SecretString>,
    /// The CA (PEM) a `rediss://` server's certificate is checked against,
    /// instead of the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    pub response_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default)]
    pub jwt_secret: Option<SecretString>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    /// How long a caller's account (active, role) is used from memory at
    /// most; changes made through the API drop it at once on every instance.
    pub account_cache_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub account_failures_max: u32,
    pub account_failures_window_secs: u64,
    pub address_failures_max: u32,
    pub address_failures_window_secs: u64,
}

impl AuthSettings {
    /// The signing secret; `load` guarantees it is set.
    pub fn secret(&self) -> &str {
        self.jwt_secret
            .as_ref()
            .map(|s| s.expose_secret())
            .unwrap_or(DEVELOPMENT_JWT_SECRET)
    }
}

/// Extra nesting GraphiQL's introspection query needs (its `ofType`
/// chain), allowed beyond `max_depth` to introspection: by the document
/// limits and by the schema's own backstop.
pub const INTROSPECTION_DEPTH: usize = 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_directives: usize,
    /// Field selections in the document once fragments are expanded.
    pub max_fields: usize,
    pub max_query_length: usize,
    /// Operations allowed in one array batch; 0 turns batches off.
    pub max_batch_size: usize,
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// Introspection and "did you mean" suggestions.
    pub introspection: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketSettings {
    pub init_timeout_secs: u64,
    pub max_subscriptions: usize,
    pub max_message_bytes: usize,
    /// Messages queued for one client before its operations wait (and its
    /// subscriptions lose events).
    pub send_buffer_messages: usize,
    /// Bytes read from a socket at a time, allocated per connection; a
    /// longer message grows it, up to `max_message_bytes`.
    pub read_buffer_bytes: usize,
    /// Seconds between `ka` keep-alives of the legacy graphql-ws protocol.
    pub keepalive_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSettings {
    pub password: SecretString,
}

/// Whole answers of read operations kept for the max age their fields
/// declare (see `graphql::hints`): in Redis when it is configured, in this
/// process otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseCacheSettings {
    pub enabled: bool,
    /// No answer is kept longer than this, whatever its fields declare.
    pub max_age_cap_secs: u32,
    /// Answers larger than this (bytes of JSON) are not kept.
    pub max_entry_bytes: usize,
    /// Answers kept in this process when Redis is not configured.
    pub local_entries: usize,
}

/// The background worker that computes requested reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Run the worker in this process (several processes may run it).
    pub worker: bool,
    /// How often an idle worker looks for queued reports (a request in this
    /// process wakes it at once), and how often `reportUpdated` re-reads its report.
    pub poll_interval_ms: u64,
    /// How long a claim lasts unless renewed; a worker renews it every third of this.
    pub lease_secs: u64,
    /// Claims a report may take; one more makes it FAILED.
    pub max_attempts: i32,
}

impl ReportSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 20_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_directives: 20,
            max_fields: 1000,
            max_query_length: 20_000,
            max_batch_size: 0,
            default_page_size: 20,
            max_page_size: 100,
            introspection: true,
        }
    }
}

/// Where the `config/` folder is: `ALAWAEL_CONFIG_DIR`, else `./config`.
pub fn config_dir() -> PathBuf {
    std::env::var_os("ALAWAEL_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"))
}

/// Loads the settings for `ALAWAEL_ENV` from the process environment.
pub fn load() -> Result<Settings, ConfigError> {
    let env = std::env::var("ALAWAEL_ENV").unwrap_or_else(|_| "development".into());
    let environment = Environment::parse(&env)?;
    let vars: HashMap<String, String> = std::env::vars().collect();
    load_from(&config_dir(), environment, &vars)
}

/// Loads settings from `dir` for `environment`, reading variables from `vars`
/// (tests pass their own).
pub fn load_from(
    dir: &Path,
    environment: Environment,
    vars: &HashMap<String, String>,
) -> Result<Settings, ConfigError> {
    let prefixed: config::Map<String, String> = vars
        .iter()
        .filter(|(k, _)| k.starts_with("ALAWAEL__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut builder = config::Config::builder()
        .add_source(config::File::from(dir.join("default.toml")).required(true))
        .add_source(
            config::File::from(dir.join(format!("{}.toml", environment.as_str()))).required(false),
        )
        .add_source(
            config::Environment::with_prefix("ALAWAEL")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("server.cors_origins")
                .with_list_parse_key("server.trusted_proxies")
                .try_parsing(true)
                .source(Some(prefixed)),
        );
    for (name, key) in [
        ("MONGODB_URI", "database.uri"),
        ("REDIS_URL", "redis.url"),
        ("JWT_SECRET", "auth.jwt_secret"),
        ("SEED_PASSWORD", "seed.password"),
        ("ALAWAEL_MASTER_KEY", "vault.master_keys"),
        ("ALAWAEL_EVENTS_KEY", "redis.events_key"),
        ("ALAWAEL_METRICS_TOKEN", "server.metrics_token"),
    ] {
        if let Some(value) = vars.get(name).filter(|v| !v.is_empty()) {
            let value = value.clone();
            builder = builder.set_override(key, value)?;
        }
    }
    let file: FileSettings = builder.build()?.try_deserialize()?;
    let settings = Settings {
        environment,
        server: file.server,
        database: file.database,
        redis: file.redis,
        auth: file.auth,
        graphql: file.graphql,
        websocket: file.websocket,
        webhooks: file.webhooks,
        retention: file.retention,
        seed: file.seed,
        reports: file.reports,
        response_cache: file.response_cache,
        documents: file.documents,
        vault: file.vault,
        quotas: file.quotas,
    };
    settings.check()?;
    Ok(settings)
}

impl Settings {
    fn check(&self) -> Result<(), ConfigError> {
        let production = self.environment == Environment::Production;
        match self.auth.jwt_secret.as_ref().map(|s| s.expose_secret()) {
            None if production => {
                return Err(ConfigError::Invalid(
                    "JWT_SECRET is not set; production needs a secret of at least 32 characters"
                        .into(),
                ));
            }
            Some(DEVELOPMENT_JWT_SECRET) if production => {
                return Err(ConfigError::Invalid(
                    "JWT_SECRET is the published development secret; set a private one".into(),
                ));
            }
            Some(secret) if production && secret.len() < 32 => {
                return Err(ConfigError::Invalid(
                    "JWT_SECRET is shorter than 32 characters".into(),
                ));
            }
            _ => {}
        }
        let vault = &self.vault;
        if vault.master_keys.is_some() && vault.master_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "give the master keys as ALAWAEL_MASTER_KEY or vault.master_key_file, not both"
                    .into(),
            ));
        }
        if production && vault.uses_development_key() {
            return Err(ConfigError::Invalid(
                "no master key: production needs ALAWAEL_MASTER_KEY or vault.master_key_file (make one with `alawael keys generate`)".into(),
            ));
        }
        if production
            && vault
                .master_keys
                .as_ref()
                .is_some_and(|k| k.expose_secret().contains(DEVELOPMENT_MASTER_KEY_TEXT))
        {
            return Err(ConfigError::Invalid(
                "ALAWAEL_MASTER_KEY holds the published development key; generate a private one"
                    .into(),
            ));
        }
        if self.auth.refresh_token_ttl_secs > 365 * 24 * 3600 {
            return Err(ConfigError::Invalid(
                "auth.refresh_token_ttl_secs is at most a year (365 days)".into(),
            ));
        }
        if self.server.tls_cert_path.is_some() != self.server.tls_key_path.is_some() {
            return Err(ConfigError::Invalid(
                "server.tls_cert_path and server.tls_key_path go together".into(),
            ));
        }
        let r = &self.reports;
        if r.poll_interval_ms < 10 || r.lease_secs == 0 || r.max_attempts < 1 {
            return Err(ConfigError::Invalid(
                "reports: poll_interval_ms is at least 10, lease_secs and max_attempts at least 1"
                    .into(),
            ));
        }
        let d = &self.documents;
        if d.from_redis && self.redis.url.is_none() {
            return Err(ConfigError::Invalid(
                "documents.from_redis needs Redis: set REDIS_URL (or redis.url)".into(),
            ));
        }
        if d.trusted_only && d.manifest.is_none() && !d.from_redis {
            return Err(ConfigError::Invalid(
                "documents.trusted_only needs documents.manifest or documents.from_redis".into(),
            ));
        }
        if self.server.threads > MAX_SERVING_THREADS {
            return Err(ConfigError::Invalid(format!(
                "server.threads is at most {MAX_SERVING_THREADS} (0 means one per CPU); each \
                 thread opens its own database pool and Redis connection"
            )));
        }
        if self.server.max_concurrent_operations == 0 {
            return Err(ConfigError::Invalid(
                "server.max_concurrent_operations is at least 1".into(),
            ));
        }
        if self.response_cache.max_age_cap_secs == 0 {
            return Err(ConfigError::Invalid(
                "response_cache.max_age_cap_secs is at least 1 (turn the cache off with enabled = false)"
                    .into(),
            ));
        }
        let g = &self.graphql;
        if g.max_page_size == 0 || g.default_page_size == 0 || g.default_page_size > g.max_page_size
        {
            return Err(ConfigError::Invalid(
                "graphql.default_page_size must be between 1 and graphql.max_page_size".into(),
            ));
        }
        Ok(())
    }

    /// Seeding accounts in production needs a private `SEED_PASSWORD`.
    pub fn check_seed_password(&self) -> Result<(), ConfigError> {
        if self.environment == Environment::Production
            && self.seed.password.expose_secret() == DEVELOPMENT_SEED_PASSWORD
        {
            return Err(ConfigError::Invalid(
                "SEED_PASSWORD is the published development password; set a private one to seed in production".into(),
            ));
        }
        Ok(())
    }

    /// True when no `JWT_SECRET` was given and the development secret is in use.
    pub fn uses_development_secret(&self) -> bool {
        self.auth.jwt_secret.is_none()
    }
}
