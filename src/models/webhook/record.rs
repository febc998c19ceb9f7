//! The `webhooks` and `webhook_deliveries` collections (ADMIN only). A
//! delivery is one event for one webhook; a worker claims each attempt of a
//! due delivery under a unique key with an expiring lease, so two workers
//! never send the same attempt and a worker that died is replaced once its
//! lease runs out. A result is stored only while the lease is still the
//! sender's.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::ReturnDocument;
use serde::{Deserialize, Serialize};

use crate::db::claims::{Claim, claim};
use crate::db::model::{Access, Model, Scope};
use crate::db::store::{ForUpdate, Record, Store};
use crate::db::{Db, DbResult};
use crate::models::webhook_delivery::record::{Outcome, WebhookDeliveryRecord};
use crate::order_fields;

pub const WEBHOOKS: &str = "webhooks";
pub const DELIVERIES: &str = "webhook_deliveries";
/// One row per claimed attempt (`<delivery>:<round>:<attempt>`).
pub const CLAIMS: &str = "webhook_claims";

/// The secret that signed before the last rotation, until `until`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    pub secret: String,
    pub until: DateTime,
}

/// A stored webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub secret: String,
    #[serde(default)]
    pub previous_secret: Option<PreviousSecret>,
    pub active: bool,
    pub consecutive_failures: i32,
    #[serde(default)]
    pub disabled_at: Option<DateTime>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Granted by ADMIN: payloads also carry the personal fields a model
    /// declares, never its sensitive or sealed ones.
    #[serde(default)]
    pub include_personal_data: bool,
    pub created_by: ObjectId,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

impl WebhookRecord {
    /// The secrets that sign a message now: the current one, and the
    /// previous one during its grace period.
    pub fn signing_secrets(&self, now: DateTime) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some(previous) = &self.previous_secret
            && previous.until > now
        {
            secrets.push(previous.secret.as_str());
        }
        secrets
    }
}

/// A validated change to a webhook (see `ForUpdate`): what an ADMIN edits,
/// the state that pausing or resuming sets, and a rotated secret.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookForUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Option<DateTime>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_personal_data: Option<bool>,
}

impl ForUpdate for WebhookForUpdate {}

impl WebhookForUpdate {
    /// Resumes a paused or disabled webhook: failures forgotten.
    pub fn resume(&mut self) {
        self.active = Some(true);
        self.consecutive_failures = Some(0);
        self.disabled_at = Some(None);
        self.disabled_reason = Some(None);
    }

    /// Pauses a webhook at `now`, saying who did.
    pub fn pause(&mut self, now: DateTime, reason: &str) {
        self.active = Some(false);
        self.disabled_at = Some(Some(now));
        self.disabled_reason = Some(Some(reason.to_string()));
    }
}

impl Record for WebhookRecord {
    const COLLECTION: &'static str = WEBHOOKS;
    fn id(&self) -> ObjectId {
        self.id
    }
}

order_fields! {
    /// Orders of `webhooks`.
    pub enum WebhookOrder {
        CreatedAt = "CREATED_AT" => "createdAt",
        Url = "URL" => "url",
    }
}

pub fn admins_only(access: &Access) -> Scope {
    match access.viewer() {
        Some(v) if v.role == crate::domain::Role::Admin => Scope::All,
        _ => Scope::Nothing,
    }
}

impl Model for WebhookRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::Webhook;
    const PUBLIC: &'static [&'static str] = &["active", "events"];
    const SENSITIVE: &'static [&'static str] = &["secret", "previousSecret"];
    const SECRET: &'static [&'static str] = &["secret", "previousSecret"];
    type Order = WebhookOrder;

    async fn scope(access: &Access) -> DbResult<Scope> {
        Ok(admins_only(access))
    }
}

pub struct Webhooks {
    db: Db,
}

impl Webhooks {
    pub fn new(db: &Db) -> Self {
        Self { db: db.clone() }
    }

    fn hooks(&self) -> mongodb::Collection<Document> {
        self.db.collection(WEBHOOKS)
    }

    fn deliveries(&self) -> mongodb::Collection<Document> {
        self.db.collection(DELIVERIES)
    }

    /// Every active webhook (a small table: read whole).
    pub async fn active(&self) -> DbResult<Vec<WebhookRecord>> {
        let found: Vec<Document> = self
            .hooks()
            .find(doc! { "active": true })
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        crate::db::decode_all(found)
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<WebhookRecord>> {
        let found = self
            .hooks()
            .find_one(doc! { "_id": id })
            .max_time(self.db.max_time())
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    /// Stores deliveries; ones already stored (same `_id`) are skipped.
    pub async fn enqueue(&self, deliveries: &[WebhookDeliveryRecord]) -> DbResult<()> {
        Store::<WebhookDeliveryRecord>::new(&self.db)
            .insert_once(deliveries)
            .await
    }

    /// Takes the next due delivery for `owner` until `until`, counting the
    /// attempt. Each attempt number (per redelivery round) is claimed once
    /// (`db::claims`), so two workers never make the same attempt; an
    /// attempt whose worker stopped before recording it is counted, and the
    /// next one claimed.
    pub async fn claim(
        &self,
        owner: &str,
        now: DateTime,
        until: DateTime,
    ) -> DbResult<Option<WebhookDeliveryRecord>> {
        let due: Vec<Document> = self
            .deliveries()
            .find(doc! {
                "status": { "$in": ["PENDING", "FAILED"] },
                "nextAttemptAt": { "$lte": now },
                "leaseUntil": { "$lte": now },
            })
            .sort(doc! { "nextAttemptAt": 1 })
            .limit(8)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?;
        for found in due {
            let mut delivery: WebhookDeliveryRecord = bson::from_document(found)?;
            for _ in 0..3 {
                let attempt = delivery.attempts + 1;
                let key = format!("{}:{}:{attempt}", delivery.id.to_hex(), delivery.round);
                match claim(&self.db, CLAIMS, &key, owner, until).await? {
                    Claim::Won => {
                        self.deliveries()
                            .update_one(
                                doc! { "_id": delivery.id },
                                doc! { "$set": {
                                    "attempts": attempt, "leaseOwner": owner,
                                    "leaseUntil": until, "updatedAt": now,
                                } },
                            )
                            .await?;
                        delivery.attempts = attempt;
                        delivery.lease_owner = Some(owner.to_string());
                        delivery.lease_until = until;
                        return Ok(Some(delivery));
                    }
                    Claim::Held { until: held, .. } if held > now => break,
                    Claim::Held { .. } => {
                        self.deliveries()
                            .update_one(
                                doc! { "_id": delivery.id, "attempts": delivery.attempts },
                                doc! { "$set": { "attempts": attempt } },
                            )
                            .await?;
                        delivery.attempts = attempt;
                    }
                }
            }
        }
        Ok(None)
    }

    /// Extends `owner`'s lease on an attempt it is making.
    pub async fn renew(
        &self,
        id: ObjectId,
        owner: &str,
        attempt: i32,
        until: DateTime,
    ) -> DbResult<()> {
        self.deliveries()
            .update_one(
                doc! { "_id": id, "leaseOwner": owner, "attempts": attempt },
                doc! { "$set": { "leaseUntil": until } },
            )
            .await?;
        Ok(())
    }

    /// Stores an attempt's outcome if `owner` still holds the lease on that attempt.
    pub async fn settle(
        &self,
        delivery: &WebhookDeliveryRecord,
        owner: &str,
        outcome: &Outcome,
    ) -> DbResult<Option<WebhookDeliveryRecord>> {
        let found = self
            .deliveries()
            .find_one_and_update(
                doc! {
                    "_id": delivery.id, "leaseOwner": owner,
                    "attempts": delivery.attempts, "round": delivery.round,
                },
                doc! { "$set": {
                    "status": bson::to_bson(&outcome.status)?,
                    "nextAttemptAt": outcome.next_attempt_at,
                    "leaseUntil": DateTime::from_millis(0),
                    "responseStatus": outcome.response_status,
                    "responseSnippet": outcome.response_snippet.clone(),
                    "latencyMs": outcome.latency_ms,
                    "lastError": outcome.error.clone(),
                    "updatedAt": DateTime::now(),
                } },
            )
            .return_document(ReturnDocument::After)
            .max_time(self.db.max_time())
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    /// Counts a failure of a webhook; disables it at `limit` in a row.
    /// Returns the webhook when this call disabled it.
    pub async fn failed(&self, id: ObjectId, limit: i32) -> DbResult<Option<WebhookRecord>> {
        let after = self
            .hooks()
            .find_one_and_update(
                doc! { "_id": id },
                doc! { "$inc": { "consecutiveFailures": 1 } },
            )
            .return_document(ReturnDocument::After)
            .max_time(self.db.max_time())
            .await?;
        let Some(after) = after else { return Ok(None) };
        let failures = after.get_i32("consecutiveFailures").unwrap_or(0);
        if failures < limit {
            return Ok(None);
        }
        let now = DateTime::now();
        let reason = format!("disabled after {failures} failed deliveries in a row");
        let disabled = self
            .hooks()
            .find_one_and_update(
                doc! { "_id": id, "active": true },
                doc! { "$set": { "active": false, "disabledAt": now, "disabledReason": reason, "updatedAt": now } },
            )
            .return_document(ReturnDocument::After)
            .max_time(self.db.max_time())
            .await?;
        Ok(disabled.map(bson::from_document).transpose()?)
    }

    /// A delivery succeeded: the failure streak ends.
    pub async fn succeeded(&self, id: ObjectId) -> DbResult<()> {
        self.hooks()
            .update_one(
                doc! { "_id": id, "consecutiveFailures": { "$ne": 0 } },
                doc! { "$set": { "consecutiveFailures": 0 } },
            )
            .await?;
        Ok(())
    }

    /// Queues a delivery again from its first attempt, unless an attempt
    /// is under way (`None` then, as for a missing delivery).
    pub async fn redeliver(&self, id: ObjectId) -> DbResult<Option<WebhookDeliveryRecord>> {
        let now = DateTime::now();
        let found = self
            .deliveries()
            .find_one_and_update(
                doc! { "_id": id, "$or": [
                    { "leaseUntil": { "$lte": now } },
                    { "status": { "$in": ["SUCCEEDED", "DEAD"] } },
                ] },
                doc! {
                    "$set": {
                        "status": "PENDING", "attempts": 0, "nextAttemptAt": now,
                        "leaseUntil": DateTime::from_millis(0), "updatedAt": now,
                        "lastError": bson::Bson::Null,
                    },
                    "$inc": { "round": 1 },
                },
            )
            .return_document(ReturnDocument::After)
            .max_time(self.db.max_time())
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    /// Removes deliveries created before `before`, at most `limit`.
    pub async fn sweep(&self, before: DateTime, limit: u32) -> DbResult<u64> {
        crate::db::retention::delete_older(&self.db, DELIVERIES, "createdAt", before, limit).await
    }
}
