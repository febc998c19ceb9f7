//! Named measurements: record, rules, API and the live stream.

pub mod api;
pub mod record;
pub mod rules;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::AnalyticsEventRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &[];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = false;

/// The model's fields on the schema's roots.
pub type Query = api::AnalyticsEventQuery;
pub type Mutation = api::AnalyticsEventMutation;
pub type Subscription = api::AnalyticsEventSubscription;

crate::ordering! {
    /// Fields `analyticsEvents` can be ordered by.
    pub enum AnalyticsEventOrderField {
        /// By time.
        At = "AT" => "at",
    }
    /// How `analyticsEvents` is ordered.
    input AnalyticsEventOrder;
}
