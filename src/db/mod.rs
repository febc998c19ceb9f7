//! The data layer's machinery: the database handle (one MongoDB client,
//! FerretDB in development and CI), monitoring, stores, keyset pages, row
//! scopes, claims, migrations and the outbox. A model's own collection
//! lives in `models::<model>::record`. Every query carries the configured
//! time limit (`maxTimeMS`).

pub mod api_keys;
pub mod claims;
pub mod dates;
pub mod filters;
pub mod migrations;
pub mod model;
pub mod money;
pub mod monitor;
pub mod outbox;
pub mod page;
pub mod raw;
pub mod refresh_tokens;
pub mod retention;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bson::{Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, WriteConcern};
use mongodb::{Client, Database};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;
pub use monitor::CommandMonitor;

/// Errors of the data layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique index refused the write; the text says which value clashed.
    #[error("{0}")]
    Duplicate(String),
    /// The server could not be reached or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] mongodb::error::Error),
    /// A filter, ordering or count reads a field the caller may not read
    /// (`Model::READERS`); the path is for the log, not the client.
    #[error("reading `{0}` is not allowed to this caller")]
    Forbidden(String),
    /// Anything else (a driver, decoding or server error).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type DbResult<T> = Result<T, DbError>;

impl From<mongodb::error::Error> for DbError {
    fn from(error: mongodb::error::Error) -> Self {
        if duplicate_key(&error) {
            return Self::Duplicate("a record with this value already exists".into());
        }
        match *error.kind {
            ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::Shutdown => Self::Unavailable(error),
            // 50: MaxTimeMSExpired; 89/9001: network timeouts reported by the server.
            ErrorKind::Command(ref c) if matches!(c.code, 50 | 89 | 9001 | 91 | 189) => {
                Self::Unavailable(error)
            }
            _ => Self::Other(error.into()),
        }
    }
}

impl From<bson::de::Error> for DbError {
    fn from(error: bson::de::Error) -> Self {
        Self::Other(error.into())
    }
}

impl From<bson::ser::Error> for DbError {
    fn from(error: bson::ser::Error) -> Self {
        Self::Other(error.into())
    }
}

/// Decodes documents read from a collection into records.
pub fn decode_all<T: serde::de::DeserializeOwned>(docs: Vec<Document>) -> DbResult<Vec<T>> {
    docs.into_iter()
        .map(|d| bson::from_document(d).map_err(DbError::from))
        .collect()
}

/// Whether `error` is a unique-index violation. MongoDB says E11000;
/// FerretDB 1.24 says so for inserts, but for `findAndModify` it answers
/// `InternalError` (code 1) with its backend's own words.
pub fn duplicate_key(error: &mongodb::error::Error) -> bool {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => {
            e.code == 11000 || (e.code == 1 && backend_unique_violation(&e.message))
        }
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

/// A unique-constraint failure in FerretDB's backend, passed on as text:
/// SQLite's "UNIQUE constraint failed", PostgreSQL's SQLSTATE 23505.
fn backend_unique_violation(message: &str) -> bool {
    message.contains("UNIQUE constraint failed") || message.contains("(SQLSTATE 23505)")
}

/// Which server answers: it changes what indexes and transactions are used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    MongoDb { version: String },
    FerretDb { version: String },
}

/// The shared database handle; cheap to clone.
#[derive(Clone)]
pub struct Db {
    client: Client,
    /// Kept to open the same client again in another serving thread.
    options: ClientOptions,
    database: Database,
    max_time: Duration,
    monitor: Arc<CommandMonitor>,
    server: ServerKind,
}

/// The database a connection string names (`alawael` when it names none).
pub fn database_name(options: &ClientOptions) -> String {
    options
        .default_database
        .clone()
        .unwrap_or_else(|| "alawael".to_string())
}

impl Db {
    /// Connects with the configured pool, timeouts and write concern, then
    /// waits for the server with bounded retries; never waits forever.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let mut options = ClientOptions::parse(settings.uri.expose_secret()).await?;
        let monitor = Arc::new(CommandMonitor::new(
            Duration::from_millis(settings.slow_command_ms),
            settings.command_events,
        ));
        options.app_name = Some("alawael".into());
        options.min_pool_size = Some(settings.min_pool_size);
        options.max_pool_size = Some(settings.max_pool_size);
        options.connect_timeout = Some(Duration::from_millis(settings.connect_timeout_ms));
        options.server_selection_timeout =
            Some(Duration::from_millis(settings.server_selection_timeout_ms));
        options.retry_writes = Some(settings.retry_writes);
        options.retry_reads = Some(true);
        if settings.majority_writes {
            options.write_concern = Some(
                WriteConcern::builder()
                    .w(mongodb::options::Acknowledgment::Majority)
                    .w_timeout(Duration::from_millis(settings.max_time_ms))
                    .journal(true)
                    .build(),
            );
        }
        if settings.command_events {
            options.command_event_handler = Some(monitor.command_handler());
        }
        options.cmap_event_handler = Some(monitor.pool_handler());
        let name = database_name(&options);
        check_database_name(&name)?;
        let client = Client::with_options(options.clone())?;
        let database = client.database(&name);

        let mut attempt = 0;
        let server = loop {
            attempt += 1;
            match server_kind(&database).await {
                Ok(kind) => break kind,
                Err(error) if attempt < settings.startup_attempts => {
                    tracing::warn!(attempt, max = settings.startup_attempts, %error, "waiting for the database");
                    tokio::time::sleep(Duration::from_millis(settings.startup_backoff_ms)).await;
                }
                Err(error) => {
                    anyhow::bail!("the database did not answer after {attempt} attempts: {error}")
                }
            }
        };
        tracing::info!(database = %name, server = ?server, "connected to the database");
        Ok(Self {
            client,
            options,
            database,
            max_time: settings.max_time(),
            monitor,
            server,
        })
    }

    /// The same database through a client of its own, for another serving
    /// thread: its connection pool and monitors run on the runtime this is
    /// called on, so that thread's operations never wait on another's.
    /// Commands still count in this handle's monitor.
    pub fn replica(&self) -> anyhow::Result<Self> {
        let client = Client::with_options(self.options.clone())?;
        let database = client.database(self.database.name());
        Ok(Self {
            client,
            options: self.options.clone(),
            database,
            max_time: self.max_time,
            monitor: self.monitor.clone(),
            server: self.server.clone(),
        })
    }

    /// Another database on the same client (the key store's).
    pub fn sibling(&self, name: &str) -> Self {
        Self {
            database: self.client.database(name),
            ..self.clone()
        }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn name(&self) -> &str {
        self.database.name()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The time limit every query carries.
    pub fn max_time(&self) -> Duration {
        self.max_time
    }

    pub fn server(&self) -> &ServerKind {
        &self.server
    }

    pub fn is_ferretdb(&self) -> bool {
        matches!(self.server, ServerKind::FerretDb { .. })
    }

    /// Database commands this handle has started (heartbeats and handshakes are not commands).
    pub fn commands_started(&self) -> u64 {
        self.monitor.commands_started()
    }

    /// Operations sent (pool checkouts): counted whether or not command
    /// events are on.
    pub fn operations(&self) -> u64 {
        self.monitor.operations()
    }

    /// Reads sent without a time limit; every query should carry one.
    pub fn reads_without_time_limit(&self) -> u64 {
        self.monitor.unlimited_reads()
    }

    /// A round trip to the server, for readiness.
    pub async fn ping(&self) -> DbResult<()> {
        self.database.run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }

    pub fn refresh_tokens(&self) -> refresh_tokens::RefreshTokens {
        refresh_tokens::RefreshTokens::new(self)
    }

    /// A per-request handle that applies `viewer`'s row scope to every read.
    pub fn access(&self, viewer: Option<model::Viewer>) -> model::Access {
        model::Access::new(self.clone(), viewer)
    }

    pub fn collection(&self, name: &str) -> mongodb::Collection<Document> {
        self.database.collection(name)
    }
}

/// FerretDB's restriction on database names, which we apply everywhere.
fn check_database_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    anyhow::ensure!(
        ok,
        "database name {name:?} must match ^[a-zA-Z0-9_-]{{1,63}}$"
    );
    Ok(())
}

async fn server_kind(database: &Database) -> mongodb::error::Result<ServerKind> {
    let info = database.run_command(doc! { "buildInfo": 1 }).await?;
    let version = info.get_str("version").unwrap_or("unknown").to_string();
    Ok(match info.get_str("ferretdbVersion") {
        Ok(ferret) => ServerKind::FerretDb {
            version: ferret.to_string(),
        },
        Err(_) => ServerKind::MongoDb { version },
    })
}

#[cfg(test)]
mod tests {
    use super::backend_unique_violation;

    #[test]
    fn both_backends_unique_violations_are_recognised() {
        assert!(backend_unique_violation(
            "[msg_findandmodify.go:196] UNIQUE constraint failed: assets.serialKey"
        ));
        assert!(backend_unique_violation(
            "[collection.go:218] ERROR: duplicate key value violates unique constraint \
             \"assets_serialkey_unique_idx\" (SQLSTATE 23505)"
        ));
        assert!(!backend_unique_violation(
            "ERROR: null value in column violates not-null constraint (SQLSTATE 23502)"
        ));
    }
}
