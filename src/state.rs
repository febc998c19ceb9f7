//! The application state every request shares: settings, the database and
//! cache handles, the event bus, token and cursor keys, and the lifecycle
//! flags that graceful shutdown flips.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::auth::accounts::Account;
use crate::auth::tokens::TokenKeys;
use crate::auth::{AuthError, Caller, Principal};
use crate::cache::Cache;
use crate::config::Settings;
use crate::cursor::CursorCodec;
use crate::db::Db;
use crate::events::EventBus;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub cache: Arc<Cache>,
    pub bus: EventBus,
    pub tokens: TokenKeys,
    pub cursors: CursorCodec,
    pub lifecycle: Arc<Lifecycle>,
    /// The background workers' shared handles (webhook directory, wake-ups).
    pub live: Arc<crate::live::Live>,
    /// Callers' accounts, so a request does not read them from the database.
    pub accounts: Arc<crate::auth::accounts::AccountCache>,
    /// Room for operations executing at once (`server.max_concurrent_operations`).
    pub admission: Arc<tokio::sync::Semaphore>,
    /// Answers of read operations, dropped when a write touches what they show.
    pub responses: crate::response_cache::ResponseCache,
    /// The trusted documents (empty unless `[documents]` names a source).
    pub trusted: Arc<crate::documents::trusted::Trusted>,
    /// Encryption at rest: people's data keys, wrapped by the master keys.
    pub vault: crate::vault::Vault,
    /// Uses of API keys counted since they were last stored.
    pub key_uses: Arc<KeyUses>,
    /// Callers' quotas kept in process (while Redis is away).
    pub quotas: Arc<crate::auth::quota::Quotas>,
}

/// Uses of API keys counted in memory, stored every few seconds
/// (`live::key_uses_loop`) rather than written on every request.
#[derive(Default)]
pub struct KeyUses(
    std::sync::Mutex<std::collections::HashMap<bson::oid::ObjectId, (i64, bson::DateTime)>>,
);

impl KeyUses {
    pub fn count(&self, key: bson::oid::ObjectId, at: bson::DateTime) {
        if let Ok(mut uses) = self.0.lock() {
            let entry = uses.entry(key).or_insert((0, at));
            entry.0 += 1;
            entry.1 = at;
        }
    }

    /// The uses counted so far, forgotten here.
    pub fn take(&self) -> std::collections::HashMap<bson::oid::ObjectId, (i64, bson::DateTime)> {
        self.0
            .lock()
            .map(|mut u| std::mem::take(&mut *u))
            .unwrap_or_default()
    }

    /// Stores the uses counted so far.
    pub async fn store(&self, db: &Db) -> crate::db::DbResult<()> {
        let uses = self.take();
        if uses.is_empty() {
            return Ok(());
        }
        crate::db::api_keys::ApiKeys::new(db).add_uses(uses).await
    }
}

/// Who a request's token speaks for, until when, in which session.
pub struct Session {
    pub caller: Caller,
    /// When the access token expires (Unix seconds).
    pub expires_at: Option<i64>,
    /// The session (refresh-token family) the token belongs to.
    pub id: Option<String>,
}

impl AppState {
    /// An API key (`ApiKey alw_…`): a service principal with its role
    /// ceiling and scopes, while the key is live. Its use is counted.
    async fn authenticate_key(&self, key: &str) -> Result<Session, AuthError> {
        use crate::db::api_keys::{self, ApiKeys};
        let id = api_keys::id_of(key).ok_or(AuthError::BadKey)?;
        let account = match self.accounts.get(id) {
            Some(account) => account,
            None => {
                let record = ApiKeys::new(&self.db)
                    .get(id)
                    .await?
                    .ok_or(AuthError::BadKey)?;
                let account = Account {
                    active: record.revoked_at.is_none(),
                    role: record.role,
                    name: record.name.clone(),
                    sessions_since_ms: 0,
                    ended: Vec::new(),
                    key: Some(crate::auth::accounts::KeyAccount {
                        hash: record.hash.clone(),
                        scopes: crate::domain::scopes::Scopes::parse(&record.scopes)
                            .unwrap_or_default(),
                        expires_ms: record.expires_at.map(|t| t.timestamp_millis()),
                    }),
                };
                self.accounts.put(id, account.clone());
                account
            }
        };
        let Some(grant) = &account.key else {
            return Err(AuthError::BadKey);
        };
        if !api_keys::same_hash(&grant.hash, &api_keys::hash(key)) {
            return Err(AuthError::BadKey);
        }
        let now = bson::DateTime::now();
        if !account.active
            || grant
                .expires_ms
                .is_some_and(|t| t <= now.timestamp_millis())
        {
            return Err(AuthError::KeyEnded);
        }
        self.key_uses.count(id, now);
        metrics::counter!("alawael_api_key_requests_total").increment(1);
        Ok(Session {
            caller: Caller::User(Principal {
                id,
                role: account.role,
                name: account.name.clone(),
                key: Some(grant.scopes),
            }),
            expires_at: grant.expires_ms.map(|t| t.div_euclid(1000)),
            id: None,
        })
    }

    /// The state of another serving thread: its own database client and
    /// Redis connection (made on the runtime this is called on); everything
    /// else (settings, caches kept in process, the event bus, the lifecycle,
    /// admission) is this state's, so the threads act as one instance.
    pub fn replica(&self) -> anyhow::Result<Self> {
        let cache = Arc::new(self.cache.replica());
        let db = self.db.replica()?;
        Ok(Self {
            settings: self.settings.clone(),
            vault: self.vault.replica(&db),
            key_uses: self.key_uses.clone(),
            quotas: self.quotas.clone(),
            db,
            responses: self.responses.replica(cache.clone()),
            cache,
            bus: self.bus.clone(),
            tokens: self.tokens.clone(),
            cursors: self.cursors.clone(),
            lifecycle: self.lifecycle.clone(),
            live: self.live.clone(),
            accounts: self.accounts.clone(),
            admission: self.admission.clone(),
            trusted: self.trusted.clone(),
        })
    }

    /// Resolves the `Authorization` header: absent means anonymous; anything
    /// present must be a valid token of an active account, or the whole
    /// request fails with `UNAUTHENTICATED`. The account comes from the
    /// account cache; the database is read only on a miss.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        Ok(self.authenticate_session(authorization).await?.caller)
    }

    /// Like `authenticate`, also returning when the token expires (Unix
    /// seconds) and its session, so a long-lived websocket can end with either.
    pub async fn authenticate_session(
        &self,
        authorization: Option<&str>,
    ) -> Result<Session, AuthError> {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(Session {
                caller: Caller::Anonymous,
                expires_at: None,
                id: None,
            });
        };
        if let Some(key) = header.strip_prefix("ApiKey ") {
            return self.authenticate_key(key.trim()).await;
        }
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(AuthError::NotBearer)?;
        let (id, claims) = self.tokens.verify(token)?;
        let account = match self.accounts.get(id) {
            Some(account) => account,
            None => {
                let Some(user) = self.db.users().get(id).await? else {
                    return Err(AuthError::NoAccount);
                };
                let now = bson::DateTime::now();
                let account = Account {
                    active: user.active,
                    role: user.role,
                    name: user.name,
                    sessions_since_ms: user.sessions_since.map_or(0, |t| t.timestamp_millis()),
                    ended: user
                        .ended_sessions
                        .into_iter()
                        .filter(|e| e.until > now)
                        .map(|e| e.id)
                        .collect(),
                    key: None,
                };
                self.accounts.put(id, account.clone());
                account
            }
        };
        if !account.active {
            return Err(AuthError::Deactivated);
        }
        if account.key.is_some() || !account.admits(claims.issued_ms(), &claims.sid) {
            return Err(AuthError::SessionEnded);
        }
        Ok(Session {
            caller: Caller::User(Principal {
                id,
                role: account.role,
                name: account.name,
                key: None,
            }),
            expires_at: Some(claims.exp),
            id: Some(claims.sid).filter(|s| !s.is_empty()),
        })
    }
}

impl crate::live::Host for AppState {
    fn settings(&self) -> &Settings {
        &self.settings
    }
    fn db(&self) -> &Db {
        &self.db
    }
    fn bus(&self) -> &EventBus {
        &self.bus
    }
    fn vault(&self) -> &crate::vault::Vault {
        &self.vault
    }
    fn responses(&self) -> &crate::response_cache::ResponseCache {
        &self.responses
    }
    fn accounts(&self) -> &crate::auth::accounts::AccountCache {
        &self.accounts
    }
    fn live(&self) -> &crate::live::Live {
        &self.live
    }
    fn is_shutting_down(&self) -> bool {
        self.lifecycle.is_shutting_down()
    }
    fn closing(&self) -> watch::Receiver<bool> {
        self.lifecycle.closing()
    }
}

/// Ready or shutting down; websockets watch `closing` to say goodbye.
pub struct Lifecycle {
    shutting_down: AtomicBool,
    closing: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        let (closing, _) = watch::channel(false);
        Self {
            shutting_down: AtomicBool::new(false),
            closing,
        }
    }
}

impl Lifecycle {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Readiness turns 503 and every websocket is told to close (1001).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.closing.send_replace(true);
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}
