//! The append-only, hash-chained audit log: entries, the writer every
//! change goes through, verification, and its API (ADMIN).

pub mod api;
pub mod chain;
pub mod changes;
pub mod entry;
pub mod request_api;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = entry::AuditLogEntryRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &[];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = false;

/// The model's fields on the schema's roots.
pub type Query = api::AuditLogEntryQuery;
pub type Mutation = crate::graphql::NoFields;
pub type Subscription = crate::graphql::NoStreams;
