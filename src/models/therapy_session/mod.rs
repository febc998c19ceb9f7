//! What happened in each session of an enrolment: record, rules, API.

pub mod api;
pub mod record;
pub mod rules;
pub mod seed;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::TherapySessionRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &[
    "session.recorded",
    "session.created",
    "session.updated",
    "session.deleted",
];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots.
pub type Query = api::TherapySessionQuery;
pub type Mutation = api::TherapySessionMutation;
pub type Subscription = crate::graphql::NoStreams;

crate::ordering! {
    /// Fields session lists can be ordered by.
    pub enum TherapySessionOrderField {
        /// By start time.
        StartedAt = "STARTED_AT" => "startedAt",
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
    }
    /// How a session list is ordered.
    input TherapySessionOrder;
}

crate::api_enum!(
    /// Whether the beneficiary came to a session.
    Attendance {
        /// The beneficiary attended.
        Attended,
        /// The beneficiary did not come.
        Absent,
        /// The session was called off.
        Cancelled,
    }
);
