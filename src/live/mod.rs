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

use tokio::sync::{Notify, RwLock};
use tokio::task::JoinHandle;

use crate::models::webhook::record::WebhookRecord;
use crate::state::AppState;

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
    pub async fn webhooks(&self, app: &AppState) -> crate::db::DbResult<Arc<Vec<WebhookRecord>>> {
        if let Some((read, hooks)) = self.directory.read().await.as_ref()
            && read.elapsed() < DIRECTORY_TTL
        {
            return Ok(hooks.clone());
        }
        let hooks = Arc::new(
            crate::models::webhook::record::Webhooks::new(&app.db)
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
pub fn start(app: Arc<AppState>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(outbox::recovery_loop(app.clone())),
        tokio::spawn(webhooks::sender_loop(app.clone())),
        tokio::spawn(webhooks::directory_loop(app.clone())),
        tokio::spawn(sweeper::sweep_loop(app)),
    ]
}

/// Forgets cached accounts that changed, here or on another instance.
pub async fn accounts_loop(app: Arc<AppState>) {
    use crate::events::Event;
    use tokio::sync::broadcast::error::RecvError;
    let mut events = app.bus.subscribe();
    loop {
        match events.recv().await {
            Ok(Event::AccountChanged { user }) => app.accounts.forget(user),
            Ok(Event::Record { entity, id, .. }) if &*entity == "User" => app.accounts.forget(id),
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => app.accounts.forget_all(),
            Err(RecvError::Closed) => return,
        }
    }
}

/// Sleeps `pause`, or less when shutdown begins (then returns false).
pub async fn wait(app: &AppState, pause: Duration) -> bool {
    let mut closing = app.lifecycle.closing();
    tokio::select! {
        _ = closed(&mut closing) => false,
        _ = tokio::time::sleep(pause) => !app.lifecycle.is_shutting_down(),
    }
}

/// Resolves once shutdown has begun.
pub async fn closed(closing: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}
