//! The append-only, hash-chained audit log: entries, the writer every
//! change goes through, verification, and its API (ADMIN).

pub mod api;
pub mod record;

/// The model's fields on the schema's roots.
pub type Query = api::AuditQuery;
pub type Mutation = crate::graphql::NoFields;
pub type Subscription = async_graphql::EmptySubscription;
