//! The event bus behind subscriptions (and, later, webhooks): every change a
//! mutation makes is published here after it is stored. In-process for now,
//! a broadcast channel whose slow receivers lose the oldest events instead of
//! growing memory.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::db::assets::AssetRecord;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ChangeKind {
    /// It was created.
    Created,
    /// It was changed.
    Updated,
    /// It was deleted; the event carries its last state.
    Deleted,
}

#[derive(Debug, Clone)]
pub enum Event {
    Asset {
        kind: ChangeKind,
        asset: Arc<AssetRecord>,
    },
    /// A row of a model changed (`entity` is the model's name).
    Record {
        entity: &'static str,
        kind: ChangeKind,
        id: bson::oid::ObjectId,
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
