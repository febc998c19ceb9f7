//! The centre's programmes: record, rules, API.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::ProgramQuery;
pub type Mutation = api::ProgramMutation;
pub type Subscription = async_graphql::EmptySubscription;
