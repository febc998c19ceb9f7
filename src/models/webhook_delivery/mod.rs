//! One event for one webhook and how sending it went: record and API.

pub mod api;
pub mod record;

/// The model's fields on the schema's roots.
pub type Query = crate::graphql::NoFields;
pub type Mutation = crate::graphql::NoFields;
pub type Subscription = async_graphql::EmptySubscription;
