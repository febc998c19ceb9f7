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
                };
                self.accounts.put(id, account.clone());
                account
            }
        };
        if !account.active {
            return Err(AuthError::Deactivated);
        }
        if !account.admits(claims.issued_ms(), &claims.sid) {
            return Err(AuthError::SessionEnded);
        }
        Ok(Session {
            caller: Caller::User(Principal {
                id,
                role: account.role,
                name: account.name,
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
