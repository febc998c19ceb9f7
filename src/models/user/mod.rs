//! Staff accounts: the stored record, its API and the account mutations.

pub mod api;
pub mod record;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::UserRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &["user.created", "user.updated", "user.deactivated"];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots.
pub type Query = api::UserQuery;
pub type Mutation = api::UserMutation;
pub type Subscription = crate::graphql::NoStreams;
