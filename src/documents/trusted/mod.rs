//! Trusted documents: the operations a production server runs when
//! `documents.trusted_only` is on. They come from a manifest file and/or
//! the Redis set edited by `alawael documents` (`store`), are held in
//! process (a request needs one hash-set lookup, no Redis), and are read
//! again on SIGHUP and, for the Redis set, whenever the command line
//! announces a change on the event bus. A reload that fails keeps the set
//! in use.

pub mod admit;
pub mod manifest;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::config::Settings;
use crate::events::Event;
use manifest::ManifestError;

/// One trusted operation: its id (the SHA-256 of `body`, lowercase hex),
/// the name and type the tools gave it (or the body says), and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    pub name: Option<String>,
    pub kind: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustedError {
    #[error("cannot read the manifest {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the manifest {} is refused, nothing was loaded: {source}", path.display())]
    Manifest {
        path: PathBuf,
        source: ManifestError,
    },
    #[error(
        "Redis is not configured: set REDIS_URL (or redis.url) to keep trusted documents there"
    )]
    NoRedis,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer in time")]
    Timeout,
    #[error("the trusted document {id} stored in Redis is unusable: {reason}")]
    Stored { id: String, reason: String },
}

/// A SHA-256 digest, the key of the set.
pub type Digest32 = [u8; 32];

/// The trusted set of this process, swapped whole on reload.
#[derive(Default)]
pub struct Trusted {
    set: RwLock<Arc<HashMap<Digest32, Arc<str>>>>,
}

impl Trusted {
    /// The text of the trusted document with this digest.
    pub fn get(&self, digest: &Digest32) -> Option<Arc<str>> {
        self.set.read().ok()?.get(digest).cloned()
    }

    pub fn contains(&self, digest: &Digest32) -> bool {
        self.set.read().is_ok_and(|set| set.contains_key(digest))
    }

    pub fn len(&self) -> usize {
        self.set.read().map(|set| set.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes `operations` the set.
    pub fn replace(&self, operations: Vec<Operation>) {
        let set: HashMap<Digest32, Arc<str>> = operations
            .into_iter()
            .map(|op| (digest(&op.body), Arc::from(op.body)))
            .collect();
        metrics::gauge!("alawael_trusted_documents").set(set.len() as f64);
        if let Ok(mut current) = self.set.write() {
            *current = Arc::new(set);
        }
    }
}

/// The SHA-256 of a text.
pub fn digest(text: &str) -> Digest32 {
    Sha256::digest(text.as_bytes()).into()
}

/// A manifest file's operations, verified.
pub fn read_manifest(path: &Path) -> Result<Vec<Operation>, TrustedError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrustedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    manifest::parse(&text).map_err(|source| TrustedError::Manifest {
        path: path.to_path_buf(),
        source,
    })
}

/// The configured documents: the manifest's and/or the Redis set's.
pub async fn load(settings: &Settings, database: &str) -> Result<Vec<Operation>, TrustedError> {
    let documents = &settings.documents;
    let mut operations = match &documents.manifest {
        Some(path) => read_manifest(path)?,
        None => Vec::new(),
    };
    if documents.from_redis {
        let mut store = store::Store::open(settings, database).await?;
        operations.extend(store.list().await?);
    }
    Ok(operations)
}

/// Reads the documents `settings` configure (Redis keys under `database`)
/// again and makes them the `trusted` set; on failure the set in use stays.
/// Returns how many documents are trusted.
pub async fn reload(
    settings: &Settings,
    database: &str,
    trusted: &Trusted,
) -> Result<usize, TrustedError> {
    match load(settings, database).await {
        Ok(operations) => {
            trusted.replace(operations);
            metrics::counter!("alawael_trusted_documents_reloads_total", "result" => "ok")
                .increment(1);
            Ok(trusted.len())
        }
        Err(error) => {
            metrics::counter!("alawael_trusted_documents_reloads_total", "result" => "failed")
                .increment(1);
            Err(error)
        }
    }
}

async fn reload_logged(settings: &Settings, database: &str, trusted: &Trusted, why: &str) {
    match reload(settings, database, trusted).await {
        Ok(count) => tracing::info!(count, why, "trusted documents reloaded"),
        Err(error) => {
            tracing::error!(%error, why, "trusted documents not reloaded; the previous set stays")
        }
    }
}

/// Reloads `trusted` (as `reload` does) on SIGHUP, and on a change of the
/// Redis set announced on the bus (`events`, subscribed to it) when it is
/// used; runs until the bus closes.
pub async fn watch(
    settings: Arc<Settings>,
    database: String,
    mut events: broadcast::Receiver<Event>,
    trusted: Arc<Trusted>,
) {
    let from_redis = settings.documents.from_redis;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let signalled = async {
            #[cfg(unix)]
            if let Some(hangup) = hangup.as_mut() {
                return hangup.recv().await;
            }
            std::future::pending::<Option<()>>().await
        };
        tokio::select! {
            Some(()) = signalled => reload_logged(&settings, &database, &trusted, "SIGHUP").await,
            event = events.recv() => match event {
                Ok(Event::TrustedDocumentsChanged) | Err(RecvError::Lagged(_)) if from_redis => {
                    reload_logged(&settings, &database, &trusted, "the stored trusted documents changed").await;
                }
                Err(RecvError::Closed) => return,
                _ => {}
            },
        }
    }
}
