//! Reports computed in the background: record and queue, rules, API.

pub mod api;
pub mod record;
pub mod rules;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::ReportRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &["report.requested", "report.created"];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = false;

/// The model's fields on the schema's roots.
pub type Query = api::ReportQuery;
pub type Mutation = api::ReportMutation;
pub type Subscription = api::ReportSubscription;

crate::ordering! {
    /// Fields `reports` can be ordered by.
    pub enum ReportOrderField {
        /// By request time.
        CreatedAt = "CREATED_AT" => "createdAt",
        /// By last status change.
        UpdatedAt = "UPDATED_AT" => "updatedAt",
    }
    /// How `reports` is ordered.
    input ReportOrder;
}
