//! A beneficiary in a programme with a therapist: record, status rules, API.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::EnrollmentQuery;
pub type Mutation = api::EnrollmentMutation;
pub type Subscription = async_graphql::EmptySubscription;
