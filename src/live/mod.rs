//! What runs beside the requests: settling the outbox (the audit entry,
//! analytics events, webhook deliveries and the bus event that follow each
//! change), the webhook sender, and the retention sweeper. Each instance
//! runs them all; leases and claims keep several instances from doing the
//! same work twice.

pub mod analytics;
pub mod lease;
pub mod outbox;
pub mod payload;
pub mod sweeper;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, RwLock, watch};
use tokio::task::JoinHandle;

use crate::auth::accounts::AccountCache;
use crate::config::Settings;
use crate::db::Db;
use crate::events::EventBus;
use crate::models::webhook::record::WebhookRecord;
use crate::response_cache::ResponseCache;

/// What the workers use of the application: its handles, lent by whoever
/// holds them (`state::AppState`), so `live` never depends on the state
/// that is built from it.
pub trait Host: Send + Sync {
    fn settings(&self) -> &Settings;
    fn db(&self) -> &Db;
    fn bus(&self) -> &EventBus;
    /// Answers to drop when a write touches what they show.
    fn responses(&self) -> &ResponseCache;
    /// Callers' accounts, forgotten when they change.
    fn accounts(&self) -> &AccountCache;
    /// This instance's worker handles.
    fn live(&self) -> &Live;
    /// People's data keys (sealing personal values in audit entries).
    fn vault(&self) -> &crate::vault::Vault;
    /// Whether shutdown has begun.
    fn is_shutting_down(&self) -> bool;
    /// Turns true when shutdown begins.
    fn closing(&self) -> watch::Receiver<bool>;
}

/// A shared host is a host (the state is shared as `Arc<AppState>`).
impl<H: Host + ?Sized> Host for Arc<H> {
    fn settings(&self) -> &Settings {
        (**self).settings()
    }
    fn db(&self) -> &Db {
        (**self).db()
    }
    fn bus(&self) -> &EventBus {
        (**self).bus()
    }
    fn vault(&self) -> &crate::vault::Vault {
        (**self).vault()
    }
    fn responses(&self) -> &ResponseCache {
        (**self).responses()
    }
    fn accounts(&self) -> &AccountCache {
        (**self).accounts()
    }
    fn live(&self) -> &Live {
        (**self).live()
    }
    fn is_shutting_down(&self) -> bool {
        (**self).is_shutting_down()
    }
    fn closing(&self) -> watch::Receiver<bool> {
        (**self).closing()
    }
}

/// Shared by the request path and the workers of one instance.
pub struct Live {
    /// This process, as lease owner.
    pub instance: String,
    /// Wakes the webhook sender when deliveries were queued.
    pub wake_sender: Notify,
    /// The active webhooks, read at most every few seconds (and at once
    /// after a webhook changes on this or another instance).
    directory: RwLock<Option<(Instant, Arc<Vec<WebhookRecord>>)>>,
}

const DIRECTORY_TTL: Duration = Duration::from_secs(5);

impl Default for Live {
    fn default() -> Self {
        Self {
            instance: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            wake_sender: Notify::new(),
            directory: RwLock::new(None),
        }
    }
}

impl Live {
    /// The active webhooks.
    pub async fn webhooks(&self, db: &Db) -> crate::db::DbResult<Arc<Vec<WebhookRecord>>> {
        if let Some((read, hooks)) = self.directory.read().await.as_ref()
            && read.elapsed() < DIRECTORY_TTL
        {
            return Ok(hooks.clone());
        }
        let hooks = Arc::new(
            crate::models::webhook::record::Webhooks::new(db)
                .active()
                .await?,
        );
        *self.directory.write().await = Some((Instant::now(), hooks.clone()));
        Ok(hooks)
    }

    /// A webhook changed: read them again next time.
    pub async fn forget_webhooks(&self) {
        *self.directory.write().await = None;
    }
}

/// The running workers; dropping this stops them.
pub struct Workers(pub Vec<JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &self.0 {
            worker.abort();
        }
    }
}

/// Starts this instance's workers; they stop when shutdown begins.
pub fn start(app: Arc<dyn Host>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(outbox::recovery_loop(app.clone())),
        tokio::spawn(webhooks::sender_loop(app.clone())),
        tokio::spawn(webhooks::directory_loop(app.clone())),
        tokio::spawn(sweeper::sweep_loop(app)),
    ]
}

/// Forgets cached accounts that changed, and data keys destroyed by an
/// erasure, here or on another instance.
pub async fn accounts_loop(app: Arc<dyn Host>) {
    use crate::events::Event;
    use tokio::sync::broadcast::error::RecvError;
    let mut events = app.bus().subscribe();
    loop {
        match events.recv().await {
            Ok(Event::AccountChanged { user } | Event::SessionEnded { user, .. }) => {
                app.accounts().forget(user)
            }
            Ok(Event::Record { entity, id, .. }) if &*entity == "User" => app.accounts().forget(id),
            Ok(Event::KeyDestroyed { subject }) => app.vault().forget(subject),
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => {
                app.accounts().forget_all();
                app.vault().forget_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Sleeps `pause`, or less when shutdown begins (then returns false).
pub async fn wait(app: &dyn Host, pause: Duration) -> bool {
    let mut closing = app.closing();
    tokio::select! {
        _ = closed(&mut closing) => false,
        _ = tokio::time::sleep(pause) => !app.is_shutting_down(),
    }
}

/// Resolves once shutdown has begun.
pub async fn closed(closing: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}
