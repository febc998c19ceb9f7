//! Staff accounts: the stored record, its API and the account mutations.

pub mod api;
pub mod record;

/// The model's fields on the schema's roots.
pub type Query = api::UserQuery;
pub type Mutation = api::UserMutation;
pub type Subscription = async_graphql::EmptySubscription;
