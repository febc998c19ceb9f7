//! A beneficiary in a programme with a therapist: record, status rules, API.

pub mod api;
pub mod record;
pub mod rules;
pub mod seed;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::EnrollmentRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &[
    "enrollment.created",
    "enrollment.updated",
    "enrollment.activated",
    "enrollment.completed",
    "enrollment.withdrawn",
];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots.
pub type Query = api::EnrollmentQuery;
pub type Mutation = api::EnrollmentMutation;
pub type Subscription = crate::graphql::NoStreams;

crate::ordering! {
    /// Fields enrolment lists can be ordered by.
    pub enum EnrollmentOrderField {
        /// By first day.
        StartDate = "START_DATE" => "startDate",
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
        /// By last change.
        UpdatedAt = "UPDATED_AT" => "updatedAt",
    }
    /// How an enrolment list is ordered.
    input EnrollmentOrder;
}

crate::api_enum!(
    /// Where an enrolment is in its life: PENDING → ACTIVE → COMPLETED, or
    /// PENDING/ACTIVE → WITHDRAWN.
    EnrollmentStatus {
        /// Accepted, not yet started; holds a place.
        Pending,
        /// Running; holds a place.
        Active,
        /// Finished.
        Completed,
        /// Left before the end; the place is freed.
        Withdrawn,
    }
);
