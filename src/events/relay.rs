//! The bus across instances: one task publishes this instance's events on
//! a Redis channel, another receives every instance's events from it and
//! hands the others' to the local broadcast channel. Events travel as BSON
//! tagged with the sending bus's random origin, so an instance skips its
//! own (it delivered them already), and signed with the instances' shared
//! key (`EventKey`): a message without a valid signature is dropped and
//! counted (`alawael_events_relay_rejected_total`). No event carries a
//! person's personal fields (snapshots leave out `Model::PERSONAL`). Redis down: events stay local, each
//! task retries with a growing pause (up to five seconds) and picks up
//! where it left off once Redis answers; nothing restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bson::{Document, doc};
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{ChangeKind, Event, EventKey, Snapshot};

/// Events waiting for the publisher; beyond this they are dropped (and counted).
const QUEUE: usize = 4096;
const MAX_PAUSE: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn start(
    client: redis::Client,
    channel: String,
    key: EventKey,
    local: broadcast::Sender<Event>,
    stop: CancellationToken,
    linked: Arc<AtomicBool>,
) -> mpsc::Sender<Event> {
    let origin = uuid::Uuid::new_v4().simple().to_string();
    let (outgoing, queue) = mpsc::channel(QUEUE);
    tokio::spawn(publish_loop(
        client.clone(),
        channel.clone(),
        key.clone(),
        origin.clone(),
        queue,
        stop.clone(),
    ));
    tokio::spawn(receive_loop(
        client, channel, key, origin, local, stop, linked,
    ));
    outgoing
}

pub(super) fn encode(origin: &str, event: &Event) -> Option<Vec<u8>> {
    let message = match event {
        Event::Record {
            entity,
            kind,
            id,
            snapshot,
        } => doc! {
            "o": origin, "t": "record", "e": &**entity, "k": kind.as_str(), "i": id,
            "s": snapshot.document().clone(),
        },
        Event::AccountChanged { user } => doc! { "o": origin, "t": "account", "i": user },
        Event::TrustedDocumentsChanged => doc! { "o": origin, "t": "trusted" },
        Event::KeyDestroyed { subject } => doc! { "o": origin, "t": "key", "i": subject },
        Event::SessionEnded { user, session } => {
            doc! { "o": origin, "t": "session", "i": user, "s": session }
        }
    };
    bson::to_vec(&message).ok()
}

/// The event of a message received on `channel`, unless this instance
/// sent it; a message not signed with `key` is dropped and counted.
fn receive(key: &EventKey, channel: &str, origin: &str, message: &[u8]) -> Option<Event> {
    let Some(body) = key.verify(channel, message) else {
        metrics::counter!("alawael_events_relay_rejected_total").increment(1);
        tracing::warn!(
            "dropped a message on the event channel that is not signed with the instances' key"
        );
        return None;
    };
    decode(origin, body)
}

/// The event in `bytes` unless this instance sent it.
fn decode(origin: &str, bytes: &[u8]) -> Option<Event> {
    let message: Document = bson::from_slice(bytes).ok()?;
    if message.get_str("o").ok()? == origin {
        return None;
    }
    let id = || message.get_object_id("i").ok();
    match message.get_str("t").ok()? {
        "record" => Some(Event::record(
            message.get_str("e").ok()?,
            ChangeKind::parse(message.get_str("k").ok()?)?,
            id()?,
            Snapshot::from_document(message.get_document("s").ok()?.clone()),
        )),
        "account" => Some(Event::AccountChanged { user: id()? }),
        "trusted" => Some(Event::TrustedDocumentsChanged),
        "key" => Some(Event::KeyDestroyed { subject: id()? }),
        "session" => Some(Event::SessionEnded {
            user: id()?,
            session: message.get_str("s").ok()?.to_string(),
        }),
        _ => None,
    }
}

async fn pause(stop: &CancellationToken, failures: u32) {
    let pause = (Duration::from_millis(200) * 2u32.saturating_pow(failures.min(5))).min(MAX_PAUSE);
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(pause) => {}
    }
}

async fn publish_loop(
    client: redis::Client,
    channel: String,
    key: EventKey,
    origin: String,
    mut queue: mpsc::Receiver<Event>,
    stop: CancellationToken,
) {
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    let mut down_until: Option<tokio::time::Instant> = None;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = queue.recv() => match event { Some(event) => event, None => return },
        };
        if down_until.is_some_and(|t| tokio::time::Instant::now() < t) {
            metrics::counter!("alawael_events_relay_dropped_total").increment(1);
            continue;
        }
        if connection.is_none() {
            match tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection()).await {
                Ok(Ok(opened)) => connection = Some(opened),
                _ => {
                    down_until = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                    metrics::counter!("alawael_events_relay_dropped_total").increment(1);
                    continue;
                }
            }
        }
        let (Some(redis), Some(bytes)) = (connection.as_mut(), encode(&origin, &event)) else {
            continue;
        };
        let mut command = redis::cmd("PUBLISH");
        command.arg(&channel).arg(key.sign(&channel, &bytes));
        match tokio::time::timeout(TIMEOUT, command.query_async::<i64>(redis)).await {
            Ok(Ok(_)) => {
                down_until = None;
                metrics::counter!("alawael_events_relayed_total").increment(1);
            }
            _ => {
                tracing::warn!(
                    "publishing an event on Redis failed; it reached this instance only"
                );
                metrics::counter!("alawael_events_relay_dropped_total").increment(1);
                connection = None;
                down_until = Some(tokio::time::Instant::now() + Duration::from_secs(1));
            }
        }
    }
}

async fn receive_loop(
    client: redis::Client,
    channel: String,
    key: EventKey,
    origin: String,
    local: broadcast::Sender<Event>,
    stop: CancellationToken,
    linked: Arc<AtomicBool>,
) {
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            _ = stop.cancelled() => return,
            subscribed = tokio::time::timeout(TIMEOUT, subscribed) => subscribed,
        };
        let Ok(Ok(pubsub)) = pubsub else {
            if failures == 0 {
                tracing::warn!(
                    "cannot subscribe to the event channel on Redis; events stay on this instance until it answers"
                );
            }
            metrics::gauge!("alawael_events_relay_connected").set(0.0);
            failures += 1;
            pause(&stop, failures).await;
            continue;
        };
        if failures > 0 {
            tracing::info!("subscribed to the event channel on Redis again");
        }
        metrics::gauge!("alawael_events_relay_connected").set(1.0);
        linked.store(true, Ordering::Relaxed);
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                message = messages.next() => match message {
                    Some(message) => {
                        if let Some(event) = receive(&key, &channel, &origin, message.get_payload_bytes()) {
                            let _ = local.send(event);
                        }
                    }
                    None => break,
                },
            }
        }
        linked.store(false, Ordering::Relaxed);
        tracing::warn!(
            "the Redis event channel closed; events stay on this instance until it is back"
        );
        metrics::gauge!("alawael_events_relay_connected").set(0.0);
        failures = 1;
        pause(&stop, failures).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Row {
        #[serde(rename = "_id")]
        id: bson::oid::ObjectId,
        name: String,
        secret: String,
    }

    #[test]
    fn a_record_event_crosses_without_its_secret_fields_and_skips_its_sender() {
        let row = Arc::new(Row {
            id: bson::oid::ObjectId::new(),
            name: "Wheelchair".into(),
            secret: "hash".into(),
        });
        let event = Event::record(
            "Row",
            ChangeKind::Updated,
            row.id,
            Snapshot::of(row.clone(), &["secret"]).expect("serializes"),
        );
        let bytes = encode("a", &event).expect("encodes");
        assert!(decode("a", &bytes).is_none(), "the sender skips its own");
        let Some(Event::Record {
            entity,
            kind,
            id,
            snapshot,
        }) = decode("b", &bytes)
        else {
            panic!("decodes on another instance");
        };
        assert_eq!((&*entity, kind, id), ("Row", ChangeKind::Updated, row.id));
        assert_eq!(snapshot.document().get_str("name").ok(), Some("Wheelchair"));
        assert!(!snapshot.document().contains_key("secret"));
        assert!(
            snapshot.get::<Row>().is_none(),
            "a secret-less row is not a Row"
        );
    }

    #[test]
    fn a_trusted_documents_change_crosses_without_an_id() {
        let bytes = encode("cli", &Event::TrustedDocumentsChanged).expect("encodes");
        assert!(matches!(
            decode("server", &bytes),
            Some(Event::TrustedDocumentsChanged)
        ));
    }
}
