//! The centre's programmes: record, rules, API.

pub mod api;
pub mod record;
pub mod rules;
pub mod seed;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::DisabilityProgramRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &["program.created", "program.updated", "program.deleted"];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots.
pub type Query = api::DisabilityProgramQuery;
pub type Mutation = api::DisabilityProgramMutation;
pub type Subscription = crate::graphql::NoStreams;
