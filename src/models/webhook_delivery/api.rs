//! Webhook deliveries in the API (ADMIN only): the `WebhookDelivery` type,
//! its order and filter inputs, and its status. Redelivery and the
//! `webhookDeliveryUpdated` subscription are the webhook's.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, SimpleObject};

use super::record::WebhookDeliveryRecord;
pub use super::{WebhookDeliveryOrder, WebhookDeliveryOrderField};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::Listed;
use crate::graphql::scalars::DateTime;
use crate::models::webhook::api::Webhook;

/// Which deliveries a list shows.
#[derive(InputObject, Default)]
pub struct WebhookDeliveryFilter {
    /// Only these statuses.
    pub status: Option<Vec<DeliveryStatus>>,
    /// Only these event names.
    pub events: Option<Vec<String>>,
}

/// One event for one webhook, and how sending it went.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct WebhookDelivery {
    #[graphql(skip)]
    pub record: Arc<WebhookDeliveryRecord>,
    /// The domain event name.
    pub event: String,
    /// The JSON body sent (and signed), the same on every attempt.
    pub payload: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// The receiver's HTTP status on the last attempt.
    pub response_status: Option<i32>,
    /// The start of the receiver's last answer (256 characters at most).
    pub response_snippet: Option<String>,
    /// How long the last attempt took, in milliseconds.
    pub latency_ms: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl crate::graphql::rows::Plain for WebhookDelivery {}

impl Listed for WebhookDelivery {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for WebhookDelivery {
    type Record = WebhookDeliveryRecord;
    fn wrap(record: Arc<WebhookDeliveryRecord>) -> Self {
        Self {
            event: record.event.clone(),
            payload: record.payload.clone(),
            status: record.status.into(),
            attempts: record.attempts,
            response_status: record.response_status,
            response_snippet: record.response_snippet.clone(),
            latency_ms: record.latency_ms,
            last_error: record.last_error.clone(),
            record,
        }
    }
    fn record(&self) -> &WebhookDeliveryRecord {
        &self.record
    }
}

#[ComplexObject]
impl WebhookDelivery {
    /// The delivery's global id (its `webhook-id` header is `msg_` and the hex id inside).
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// The webhook it is for (`null` once that webhook is deleted).
    async fn webhook(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Webhook>> {
        Ok(model::load::<Webhook>(ctx, self.record.webhook_id).await?)
    }

    /// When the next attempt is due (PENDING, FAILED).
    async fn next_attempt_at(&self) -> DateTime {
        self.record.next_attempt_at.into()
    }

    /// When the record was created.
    async fn created_at(&self) -> DateTime {
        self.record.created_at.into()
    }

    /// When the record last changed.
    async fn updated_at(&self) -> DateTime {
        self.record.updated_at.into()
    }
}

/// Where a webhook delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::models::webhook::rules::DeliveryStatus")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt (or being sent).
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// The last attempt failed; another follows at `nextAttemptAt`.
    Failed,
    /// Every attempt failed (or the webhook is gone or disabled); only a redelivery sends it again.
    Dead,
}
