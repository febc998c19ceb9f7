//! Webhooks and their deliveries: records, rules (URLs, signatures), API.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::WebhookQuery;
pub type Mutation = api::WebhookMutation;
pub type Subscription = api::WebhookSubscription;
