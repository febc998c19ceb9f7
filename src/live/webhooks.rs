//! Webhook deliveries: queued from a change's domain event names (one per
//! webhook and name, written once per change), then sent by the sender
//! loop with the Standard Webhooks headers (`webhook-id`, the delivery's
//! id, stable across attempts so receivers can drop repeats;
//! `webhook-timestamp`; `webhook-signature`, signed with the current
//! secret and, during a rotation's grace period, the previous one too).
//! The target's addresses are checked again before every attempt and the
//! connection is pinned to the checked address; redirects are not
//! followed. Failures retry with exponential backoff and jitter up to the
//! attempt limit (then DEAD); a webhook failing too often in a row is
//! disabled and says why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{DateTime, Document};
use serde_json::{Value, json};

use super::Host;
use super::payload::{derived_id, row_json};
use crate::db::DbResult;
use crate::db::model::{Model, change_event};
use crate::db::outbox::Entry;
use crate::events::ChangeKind;
use crate::models::audit_log_entry::changes::Change;
use crate::models::events as names;
use crate::models::webhook::record::{WebhookRecord, Webhooks};
use crate::models::webhook::rules::{DeliveryStatus, Refusal, TargetRules, resolve_target, sign};
use crate::models::webhook_delivery::record::{Outcome, WebhookDeliveryRecord};

/// What a delivery of a change says about its row: the row's global id and
/// kind, the names of the fields that changed, and the fields its model
/// declares public; with `personal` (a webhook ADMIN granted personal
/// data) also its personal fields, never the sensitive, sealed, secret or
/// internal ones.
pub fn payload_data(entry: &Entry, changes: &[Change], row: &Document, personal: bool) -> Value {
    let hidden = |field: &str| {
        [
            &entry.sensitive,
            &entry.sealed,
            &entry.secret,
            &entry.internal,
        ]
        .iter()
        .any(|list| list.iter().any(|f| f == field))
    };
    let mut shown = Document::new();
    for (field, value) in row {
        let public = field == "_id" || entry.public.iter().any(|f| f == field);
        let granted = personal && entry.personal.iter().any(|f| f == field);
        if (public || granted) && !hidden(field) {
            shown.insert(field.clone(), value.clone());
        }
    }
    let mut data = row_json(&entry.entity, &shown, &[]);
    if let Value::Object(object) = &mut data {
        object.insert("kind".into(), Value::String(entry.entity.clone()));
        let changed: Vec<Value> = changes
            .iter()
            .filter(|c| !entry.internal.contains(&c.field) && !entry.secret.contains(&c.field))
            .map(|c| Value::String(c.field.clone()))
            .collect();
        object.insert("changedFields".into(), Value::Array(changed));
    }
    data
}

/// Announces a delivery's new state (`webhookDeliveryUpdated`).
pub fn publish_delivery(app: &dyn Host, kind: ChangeKind, delivery: WebhookDeliveryRecord) {
    if let Some(event) = change_event(kind, delivery) {
        app.bus().publish(event);
    }
}

/// Announces a webhook the sender changed (disabled it).
pub fn publish_webhook(app: &dyn Host, webhook: WebhookRecord) {
    if let Some(event) = change_event(ChangeKind::Updated, webhook) {
        app.bus().publish(event);
    }
}

/// Queues the deliveries of a change to every active webhook that wants one of its names.
pub async fn enqueue_change(
    app: &dyn Host,
    entry: &Entry,
    raised: &[String],
    changes: &[Change],
    row: &Document,
) -> DbResult<()> {
    if raised.is_empty() {
        return Ok(());
    }
    let hooks = app.live().webhooks(app.db()).await?;
    let thin = payload_data(entry, changes, row, false);
    let personal = payload_data(entry, changes, row, true);
    let now = DateTime::now();
    let timestamp = now.try_to_rfc3339_string().unwrap_or_default();
    let mut deliveries = Vec::new();
    for hook in hooks.iter() {
        for name in raised.iter().filter(|n| names::wants(&hook.events, n)) {
            let data = if hook.include_personal_data {
                &personal
            } else {
                &thin
            };
            let payload = json!({ "type": name, "timestamp": timestamp, "data": data }).to_string();
            deliveries.push(WebhookDeliveryRecord {
                id: derived_id(entry.id, &format!("{}:{name}", hook.id.to_hex())),
                webhook_id: hook.id,
                event: name.clone(),
                payload,
                status: DeliveryStatus::Pending,
                attempts: 0,
                round: 0,
                next_attempt_at: now,
                lease_owner: None,
                lease_until: DateTime::from_millis(0),
                response_status: None,
                response_snippet: None,
                latency_ms: None,
                last_error: None,
                created_at: now,
                updated_at: now,
            });
        }
    }
    if deliveries.is_empty() {
        return Ok(());
    }
    Webhooks::new(app.db()).enqueue(&deliveries).await?;
    for delivery in deliveries {
        publish_delivery(app, ChangeKind::Created, delivery);
    }
    app.live().wake_sender.notify_one();
    Ok(())
}

/// Forgets the cached webhooks whenever one changes (here or elsewhere).
pub async fn directory_loop(app: Arc<dyn Host>) {
    let mut events = app.bus().subscribe();
    let mut closing = app.closing();
    loop {
        tokio::select! {
            _ = super::closed(&mut closing) => return,
            event = events.recv() => match event {
                Ok(event) if event.of_entity(WebhookRecord::ENTITY).is_some() => app.live().forget_webhooks().await,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => app.live().forget_webhooks().await,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Claims and sends due deliveries, a few at a time, until shutdown; then
/// lets the attempts under way finish (each is bounded by the timeout).
/// Dropping this task aborts them too, as a crash would.
pub async fn sender_loop(app: Arc<dyn Host>) {
    let settings = app.settings().webhooks.clone();
    let concurrency = settings.concurrency.max(1);
    let mut running = tokio::task::JoinSet::new();
    let mut closing = app.closing();
    loop {
        while running.len() >= concurrency {
            tokio::select! {
                _ = super::closed(&mut closing) => break,
                _ = running.join_next() => {}
            }
        }
        if app.is_shutting_down() {
            break;
        }
        while running.try_join_next().is_some() {}
        let now = DateTime::now();
        let until = DateTime::from_millis(
            now.timestamp_millis() + i64::try_from(settings.lease_secs * 1000).unwrap_or(60_000),
        );
        match Webhooks::new(app.db())
            .claim(&app.live().instance, now, until)
            .await
        {
            Ok(Some(delivery)) => {
                let app = app.clone();
                running.spawn(async move { deliver(&*app, delivery).await });
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "claiming a webhook delivery failed"),
        }
        tokio::select! {
            _ = super::closed(&mut closing) => break,
            _ = app.live().wake_sender.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(settings.poll_ms)) => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// Renews a lease while it lives; dropping it stops the renewal.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn backoff(app: &dyn Host, attempts: i32) -> Duration {
    let settings = &app.settings().webhooks;
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let full = settings
        .backoff_base_ms
        .saturating_mul(1u64 << exponent)
        .min(settings.backoff_max_ms);
    // Jitter: between half and all of the step, so retries of many deliveries spread out.
    let jittered = full / 2 + rand::random::<u64>() % (full / 2 + 1);
    Duration::from_millis(jittered)
}

fn later(after: Duration) -> DateTime {
    DateTime::from_millis(
        DateTime::now().timestamp_millis()
            + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 4),
    )
}

/// One attempt of one claimed delivery, and its outcome stored.
async fn deliver(app: &dyn Host, delivery: WebhookDeliveryRecord) {
    let store = Webhooks::new(app.db());
    let settings = &app.settings().webhooks;
    let hook = match store.get(delivery.webhook_id).await {
        Ok(hook) => hook,
        Err(error) => {
            tracing::warn!(%error, "reading a webhook failed; the delivery is retried when its lease ends");
            return;
        }
    };
    let started = Instant::now();
    // The lease is renewed while the attempt runs, so a slow receiver does
    // not let another worker take the delivery; a worker that dies stops
    // renewing and is replaced once the lease runs out.
    let renewal = {
        let (db, owner, lease) = (
            app.db().clone(),
            app.live().instance.clone(),
            settings.lease_secs.max(1),
        );
        let (id, attempt) = (delivery.id, delivery.attempts);
        Renewal(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(lease * 500)).await;
                let until = later(Duration::from_secs(lease));
                if Webhooks::new(&db)
                    .renew(id, &owner, attempt, until)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }))
    };
    let result = match &hook {
        None => Err((None, "the webhook was deleted".to_string(), true)),
        Some(hook) if !hook.active => Err((None, "the webhook is disabled".to_string(), true)),
        Some(hook) => send(app, hook, &delivery).await,
    };
    drop(renewal);
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let outcome = match result {
        Ok((status, snippet)) => Outcome {
            status: DeliveryStatus::Succeeded,
            next_attempt_at: DateTime::now(),
            response_status: Some(status),
            response_snippet: Some(snippet),
            latency_ms,
            error: None,
        },
        Err((status, error, final_)) => {
            let dead = final_ || delivery.attempts >= settings.max_attempts;
            Outcome {
                status: if dead {
                    DeliveryStatus::Dead
                } else {
                    DeliveryStatus::Failed
                },
                next_attempt_at: if dead {
                    DateTime::now()
                } else {
                    later(backoff(app, delivery.attempts))
                },
                response_status: status,
                response_snippet: None,
                latency_ms,
                error: Some(error),
            }
        }
    };
    let succeeded = outcome.status == DeliveryStatus::Succeeded;
    let counted = hook.as_ref().is_some_and(|h| h.active);
    match store
        .settle(&delivery, &app.live().instance, &outcome)
        .await
    {
        Ok(Some(settled)) => {
            metrics::counter!("alawael_webhook_attempts_total", "result" => if succeeded { "success" } else { "failure" }).increment(1);
            publish_delivery(app, ChangeKind::Updated, settled);
        }
        Ok(None) => {
            tracing::warn!(delivery = %delivery.id, "a delivery's lease ran out while it was sent; another worker owns it now");
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "storing a delivery's outcome failed; it is retried when its lease ends");
            return;
        }
    }
    if !counted {
        return;
    }
    if succeeded {
        if let Err(error) = store.succeeded(delivery.webhook_id).await {
            tracing::warn!(%error, "resetting a webhook's failure count failed");
        }
    } else {
        match store
            .failed(delivery.webhook_id, settings.disable_after_failures)
            .await
        {
            Ok(Some(disabled)) => {
                tracing::warn!(webhook = %disabled.id, reason = ?disabled.disabled_reason, "webhook disabled");
                app.live().forget_webhooks().await;
                publish_webhook(app, disabled);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "counting a webhook failure failed"),
        }
    }
}

/// How much of a receiver's answer is read (its start is kept as a snippet).
const ANSWER_BYTES: usize = 4096;

/// Sends once: the response status and the start of its body, or
/// (status, reason, whether retrying is pointless).
async fn send(
    app: &dyn Host,
    hook: &WebhookRecord,
    delivery: &WebhookDeliveryRecord,
) -> Result<(i32, String), (Option<i32>, String, bool)> {
    let target = resolve_target(&hook.url, TargetRules::of(&app.settings().webhooks))
        .await
        .map_err(|Refusal(why)| (None, format!("refused: {why}"), false))?;
    // The URL dialled is the one checked, on the address checked; no proxy
    // from the environment stands between (it would dial what it likes).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_millis(app.settings().webhooks.timeout_ms))
        .resolve(target.host.trim_matches(['[', ']']), target.address)
        .user_agent("Alawael-Webhooks/1")
        .build()
        .map_err(|e| (None, format!("cannot build the request: {e}"), false))?;
    let id = format!("msg_{}", delivery.id.to_hex());
    let timestamp = chrono::Utc::now().timestamp();
    let signatures: Vec<String> = hook
        .signing_secrets(DateTime::now())
        .into_iter()
        .filter_map(|secret| sign(secret, &id, timestamp, &delivery.payload))
        .collect();
    let mut response = client
        .post(target.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(|e| {
            let why = if e.is_timeout() {
                "the receiver did not answer in time".to_string()
            } else {
                format!("the request failed: {}", without_url(&e))
            };
            (None, why, false)
        })?;
    let status = i32::from(response.status().as_u16());
    // The answer is read up to a bound, however much the receiver sends.
    let mut body = Vec::new();
    while body.len() < ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(ANSWER_BYTES - body.len())]);
            }
            _ => break,
        }
    }
    let snippet: String = String::from_utf8_lossy(&body).chars().take(256).collect();
    if (200..300).contains(&status) {
        Ok((status, snippet))
    } else {
        Err((
            Some(status),
            format!("the receiver answered {status}"),
            false,
        ))
    }
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}
