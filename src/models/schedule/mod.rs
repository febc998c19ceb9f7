//! Bookings of an asset, a room or a therapist: record, slot rules, API.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::ScheduleQuery;
pub type Mutation = api::ScheduleMutation;
pub type Subscription = async_graphql::EmptySubscription;
