//! Bookings of an asset, a room or a therapist: record, slot rules, API.

pub mod api;
pub mod record;
pub mod rules;
pub mod seed;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::ScheduleRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &["schedule.created", "schedule.updated", "schedule.cancelled"];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots.
pub type Query = api::ScheduleQuery;
pub type Mutation = api::ScheduleMutation;
pub type Subscription = crate::graphql::NoStreams;

crate::ordering! {
    /// Fields `schedules` can be ordered by.
    pub enum ScheduleOrderField {
        /// By start time.
        StartDate = "START_DATE" => "startDate",
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
    }
    /// How `schedules` is ordered.
    input ScheduleOrder;
}

crate::api_enum!(
    /// What a schedule books.
    ScheduleResourceType {
        /// An asset; `resourceId` is its global id.
        Asset,
        /// A room; `resourceId` is its code (letters, digits, `-`).
        Room,
        /// A therapist; `resourceId` is their user global id.
        Therapist,
    }
);

crate::api_enum!(
    /// Where a booking is in its life.
    ScheduleStatus {
        /// Booked; holds its time.
        Scheduled,
        /// Called off; its time is free again.
        Cancelled,
        /// Took place.
        Completed,
    }
);
