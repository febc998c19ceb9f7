//! Reports computed in the background: record and queue, rules, API.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::ReportQuery;
pub type Mutation = api::ReportMutation;
pub type Subscription = api::ReportSubscription;
