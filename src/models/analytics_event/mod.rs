//! Named measurements: record, rules, API and the live stream.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::AnalyticsQuery;
pub type Mutation = api::AnalyticsMutation;
pub type Subscription = api::AnalyticsSubscription;
