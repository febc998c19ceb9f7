//! The event bus behind subscriptions (and, later, webhooks): every change a
//! mutation makes is published here after it is stored. In-process for now,
//! a broadcast channel whose slow receivers lose the oldest events instead of
//! growing memory.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::broadcast;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// It was created.
    Created,
    /// It was changed.
    Updated,
    /// It was deleted; the event carries its last state.
    Deleted,
}

/// The stored row an event is about, as it is after the change (as it
/// was, for a deletion); subscribers take it back as their record type.
#[derive(Clone)]
pub struct Snapshot(Arc<dyn Any + Send + Sync>);

impl Snapshot {
    pub fn of<T: Any + Send + Sync>(record: Arc<T>) -> Self {
        Self(record)
    }

    /// The row, when it is a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.clone().downcast::<T>().ok()
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    /// A row of a model changed (`entity` is the model's name).
    Record {
        entity: &'static str,
        kind: ChangeKind,
        id: bson::oid::ObjectId,
        snapshot: Snapshot,
    },
    /// An account was deactivated or its role changed: its open sessions
    /// (websockets) must end, so the next one sees the change.
    AccountChanged { user: bson::oid::ObjectId },
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }

    pub fn publish(&self, event: Event) {
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }

    /// Live receivers: open subscriptions plus websocket connections.
    pub fn receivers(&self) -> usize {
        self.sender.receiver_count()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}
