//! The `webhook_deliveries` collection: one event for one webhook, with
//! its attempts, lease and outcome (ADMIN only). The queue operations that
//! claim and settle attempts are the webhook's (`webhook::record::Webhooks`).

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use crate::db::model::{Access, Model, Scope};
use crate::db::store::Record;
use crate::db::{DbResult, filters};
use crate::models::webhook::record::{DELIVERIES, admins_only};
use crate::models::webhook::rules::DeliveryStatus;

/// A stored delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub webhook_id: ObjectId,
    /// The domain event name.
    pub event: String,
    /// The exact JSON body sent (and signed) on every attempt.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// Redeliveries so far: each starts a new round of attempts.
    #[serde(default)]
    pub round: i32,
    pub next_attempt_at: DateTime,
    #[serde(default)]
    pub lease_owner: Option<String>,
    pub lease_until: DateTime,
    #[serde(default)]
    pub response_status: Option<i32>,
    #[serde(default)]
    pub response_snippet: Option<String>,
    #[serde(default)]
    pub latency_ms: Option<i64>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

impl Record for WebhookDeliveryRecord {
    const COLLECTION: &'static str = DELIVERIES;
    fn id(&self) -> ObjectId {
        self.id
    }
}

impl Model for WebhookDeliveryRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::WebhookDelivery;
    type Order = super::WebhookDeliveryOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            ("webhookId", doc! { "webhookId": 1 }, false),
            ("due", doc! { "status": 1, "nextAttemptAt": 1 }, false),
        ]
    }

    async fn scope(access: &Access) -> DbResult<Scope> {
        Ok(admins_only(access))
    }
}

/// Which deliveries a list shows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub webhook: Option<ObjectId>,
    pub statuses: Vec<DeliveryStatus>,
    pub events: Vec<String>,
}

impl DeliveryFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        if let Some(webhook) = self.webhook {
            filter.insert("webhookId", webhook);
        }
        filters::one_of(&mut filter, "status", &self.statuses)?;
        filters::one_of(&mut filter, "event", &self.events)?;
        Ok(filter)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: DeliveryStatus,
    pub next_attempt_at: DateTime,
    pub response_status: Option<i32>,
    pub response_snippet: Option<String>,
    pub latency_ms: i64,
    pub error: Option<String>,
}
