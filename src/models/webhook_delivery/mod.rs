//! One event for one webhook and how sending it went: record and API.

pub mod api;
pub mod record;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::WebhookDeliveryRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &[];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = false;

/// The model's fields on the schema's roots.
pub type Query = crate::graphql::NoFields;
pub type Mutation = crate::graphql::NoFields;
pub type Subscription = crate::graphql::NoStreams;

crate::ordering! {
    /// Fields `Webhook.deliveries` can be ordered by.
    pub enum WebhookDeliveryOrderField {
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
        /// By the time of the next attempt.
        NextAttemptAt = "NEXT_ATTEMPT_AT" => "nextAttemptAt",
    }
    /// How deliveries are ordered.
    input WebhookDeliveryOrder;
}
