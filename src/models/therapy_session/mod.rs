//! What happened in each session of an enrolment: record, rules, API.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::SessionQuery;
pub type Mutation = api::SessionMutation;
pub type Subscription = async_graphql::EmptySubscription;
