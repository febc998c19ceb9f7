//! The event bus behind subscriptions, webhooks and cache invalidation:
//! every change a mutation makes is published here after it is stored.
//! Events reach this instance's subscribers at once through a broadcast
//! channel (slow receivers lose the oldest events instead of growing
//! memory) and, when Redis is configured, every other instance through
//! Redis pub/sub (`relay`). Without Redis, or while it is down, the bus is
//! in-process only and recovers by itself when Redis comes back.

mod relay;

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bson::Document;
use bson::oid::ObjectId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

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

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "created" => Some(Self::Created),
            "updated" => Some(Self::Updated),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// The stored row an event is about, as it is after the change (as it
/// was, for a deletion). It travels as its stored document (what crosses
/// Redis); subscribers take it back as their record type, decoded at most
/// once per instance however many subscribers read it.
#[derive(Clone)]
pub struct Snapshot(Arc<SnapshotInner>);

struct SnapshotInner {
    document: Document,
    typed: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Snapshot {
    /// A snapshot of `record`, without the fields named in `secret` (they
    /// never leave the process: a password hash, say).
    pub fn of<T: Serialize + Any + Send + Sync>(
        record: Arc<T>,
        secret: &[&str],
    ) -> bson::ser::Result<Self> {
        let mut document = bson::to_document(&*record)?;
        for field in secret {
            document.remove(*field);
        }
        let typed = OnceLock::new();
        let _ = typed.set(record as Arc<dyn Any + Send + Sync>);
        Ok(Self(Arc::new(SnapshotInner { document, typed })))
    }

    /// A snapshot that arrived as a document (from another instance).
    pub fn from_document(document: Document) -> Self {
        Self(Arc::new(SnapshotInner {
            document,
            typed: OnceLock::new(),
        }))
    }

    /// The row as stored (secret fields removed).
    pub fn document(&self) -> &Document {
        &self.0.document
    }

    /// The row, when it is a `T`.
    pub fn get<T: DeserializeOwned + Any + Send + Sync>(&self) -> Option<Arc<T>> {
        if let Some(typed) = self.0.typed.get() {
            return typed.clone().downcast::<T>().ok();
        }
        let decoded: Arc<T> = Arc::new(bson::from_document(self.0.document.clone()).ok()?);
        let typed = self
            .0
            .typed
            .get_or_init(|| decoded as Arc<dyn Any + Send + Sync>);
        typed.clone().downcast::<T>().ok()
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
        entity: Arc<str>,
        kind: ChangeKind,
        id: ObjectId,
        snapshot: Snapshot,
    },
    /// An account was deactivated or its role changed: its open sessions
    /// (websockets) must end, so the next one sees the change.
    AccountChanged { user: ObjectId },
    /// The trusted documents stored in Redis changed (`alawael documents`):
    /// instances that load them read them again.
    TrustedDocumentsChanged,
    /// A person's data key was destroyed (erasure): instances drop it from
    /// memory.
    KeyDestroyed { subject: ObjectId },
    /// One session of an account ended (logout, `revokeSession`): its
    /// websockets close, and instances read the account again.
    SessionEnded { user: ObjectId, session: String },
}

impl Event {
    /// A change of a row of `entity`.
    pub fn record(entity: &str, kind: ChangeKind, id: ObjectId, snapshot: Snapshot) -> Self {
        Self::Record {
            entity: Arc::from(entity),
            kind,
            id,
            snapshot,
        }
    }

    /// The snapshot when this is a change of `entity`.
    pub fn of_entity(&self, wanted: &str) -> Option<(ChangeKind, &Snapshot)> {
        match self {
            Self::Record {
                entity,
                kind,
                snapshot,
                ..
            } if &**entity == wanted => Some((*kind, snapshot)),
            _ => None,
        }
    }
}

/// The key that signs the bus's messages on Redis, shared by the
/// instances (`redis.events_key`, or derived from the token secret they
/// share): an instance acts only on messages it can verify, so nobody who
/// can merely reach Redis can make the instances obey a forged event.
#[derive(Clone)]
pub struct EventKey(hmac::Hmac<sha2::Sha256>);

impl EventKey {
    /// The key of `secret`, under a label of its own.
    pub fn new(secret: &str) -> Self {
        use hmac::Mac;
        let mut derive =
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(b"alawael event channel key")
                .expect("HMAC takes any key length");
        derive.update(secret.as_bytes());
        let key = derive.finalize().into_bytes();
        Self(
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key)
                .expect("HMAC takes any key length"),
        )
    }

    /// The configured key: `redis.events_key`, else derived from the token secret.
    pub fn of(settings: &crate::config::Settings) -> Self {
        use secrecy::ExposeSecret;
        match &settings.redis.events_key {
            Some(key) => Self::new(key.expose_secret()),
            None => Self::new(&format!("from token secret:{}", settings.auth.secret())),
        }
    }

    fn tag(&self, channel: &str, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(channel.as_bytes());
        mac.update(b"\0");
        mac.update(body);
        mac
    }

    /// `body` signed for `channel`: the 32-byte tag, then the body.
    pub fn sign(&self, channel: &str, body: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        let mut signed = self.tag(channel, body).finalize().into_bytes().to_vec();
        signed.extend_from_slice(body);
        signed
    }

    /// The body of a message signed for `channel` with this key; `None`
    /// for an unsigned, altered or foreign one.
    pub fn verify<'a>(&self, channel: &str, message: &'a [u8]) -> Option<&'a [u8]> {
        use hmac::Mac;
        if message.len() < 32 {
            return None;
        }
        let (tag, body) = message.split_at(32);
        self.tag(channel, body).verify_slice(tag).ok()?;
        Some(body)
    }
}

/// The Redis channel of the bus of the deployment using `database`.
pub fn channel(database: &str) -> String {
    format!("alawael:{database}:events")
}

/// `event` as it crosses Redis on `channel`, signed, for a process that
/// publishes without a bus of its own (the command line); every instance
/// receives it.
pub fn wire(event: &Event, channel: &str, key: &EventKey) -> Option<Vec<u8>> {
    let body = relay::encode(&uuid::Uuid::new_v4().simple().to_string(), event)?;
    Some(key.sign(channel, &body))
}

/// The bus. Cloning shares it; the Redis relay stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    sender: broadcast::Sender<Event>,
    outgoing: Option<mpsc::Sender<Event>>,
    stop: CancellationToken,
    /// Whether the relay is subscribed to Redis right now.
    linked: Arc<AtomicBool>,
}

impl Drop for BusInner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl EventBus {
    /// An in-process bus.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            inner: Arc::new(BusInner {
                sender,
                outgoing: None,
                stop: CancellationToken::new(),
                linked: Arc::default(),
            }),
        }
    }

    /// A bus shared with every instance that uses the same Redis and the
    /// same `channel`. Must be called inside the runtime (it starts the
    /// relay's two tasks).
    pub fn with_redis(
        capacity: usize,
        client: redis::Client,
        channel: String,
        key: EventKey,
    ) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        let stop = CancellationToken::new();
        let linked = Arc::new(AtomicBool::new(false));
        let outgoing = relay::start(
            client,
            channel,
            key,
            sender.clone(),
            stop.clone(),
            linked.clone(),
        );
        Self {
            inner: Arc::new(BusInner {
                sender,
                outgoing: Some(outgoing),
                stop,
                linked,
            }),
        }
    }

    /// Delivers `event` here at once and hands it to the relay for the
    /// other instances (never waiting: a full relay queue drops and counts).
    pub fn publish(&self, event: Event) {
        if let Some(outgoing) = &self.inner.outgoing
            && outgoing.try_send(event.clone()).is_err()
        {
            metrics::counter!("alawael_events_relay_dropped_total").increment(1);
        }
        // No subscriber is not an error.
        let _ = self.inner.sender.send(event);
    }

    /// Whether events cross to other instances right now (Redis configured
    /// and the relay subscribed).
    pub fn is_shared(&self) -> bool {
        self.inner.linked.load(Ordering::Relaxed)
    }

    /// Live receivers: open subscriptions plus websocket connections.
    pub fn receivers(&self) -> usize {
        self.inner.sender.receiver_count()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.sender.subscribe()
    }
}
