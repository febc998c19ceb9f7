//! The clinic's enums as GraphQL sees them: mirrors of `domain::clinic`
//! (the compiler checks that every value is mirrored), documented for
//! GraphiQL. The layers below stay free of async-graphql.

use async_graphql::Enum;

use crate::domain::{clinic, inventory, reports};
use crate::events;

/// What a staff member may do.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::Role")]
pub enum Role {
    /// IT or centre director: everything.
    Admin,
    /// Programme or department manager.
    Manager,
    /// Clinician working with the beneficiaries enrolled with them.
    Therapist,
    /// Front desk and other staff.
    User,
}

/// What happened to an object.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "events::ChangeKind")]
pub enum ChangeKind {
    /// It was created.
    Created,
    /// It was changed.
    Updated,
    /// It was deleted; the event carries its last state.
    Deleted,
}

/// What kind of thing an asset is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "inventory::AssetCategory")]
pub enum AssetCategory {
    /// Office supplies and small equipment.
    Office,
    /// General equipment (therapy, gym, workshop).
    Equipment,
    /// Medical devices.
    Medical,
    /// Computers, phones and networking.
    It,
    /// Cars, vans and buses.
    Vehicle,
    /// Desks, chairs, beds and shelving.
    Furniture,
}

/// Where an asset is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "inventory::AssetStatus")]
pub enum AssetStatus {
    /// Ready to be used or assigned.
    Available,
    /// In use by someone.
    InUse,
    /// Out of service for maintenance.
    Maintenance,
    /// No longer in service.
    Retired,
}

/// What a programme works on.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::ProgramCategory")]
pub enum ProgramCategory {
    /// Physiotherapy and motor skills.
    Physical,
    /// Speech and language therapy.
    Speech,
    /// Occupational therapy: everyday skills.
    Occupational,
    /// Behavioural therapy.
    Behavioral,
    /// Special education.
    Educational,
    /// Vocational training.
    Vocational,
}

/// Whether a programme takes enrolments.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::ProgramStatus")]
pub enum ProgramStatus {
    /// Running and taking enrolments.
    Active,
    /// Temporarily not taking enrolments.
    Paused,
    /// Closed for good.
    Archived,
}

/// A beneficiary's gender as recorded.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::Gender")]
pub enum Gender {
    /// Male.
    Male,
    /// Female.
    Female,
}

/// How severe a disability is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::Severity")]
pub enum Severity {
    /// Mild.
    Mild,
    /// Moderate.
    Moderate,
    /// Severe.
    Severe,
    /// Profound.
    Profound,
}

/// Whether a beneficiary is currently served.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::BeneficiaryStatus")]
pub enum BeneficiaryStatus {
    /// Served by the centre.
    Active,
    /// Not currently served.
    Inactive,
}

/// Where an enrolment is in its life: PENDING → ACTIVE → COMPLETED, or
/// PENDING/ACTIVE → WITHDRAWN.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::EnrollmentStatus")]
pub enum EnrollmentStatus {
    /// Accepted, not yet started; holds a place.
    Pending,
    /// Running; holds a place.
    Active,
    /// Finished.
    Completed,
    /// Left before the end; the place is freed.
    Withdrawn,
}

/// Whether the beneficiary came to a session.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::Attendance")]
pub enum Attendance {
    /// The beneficiary attended.
    Attended,
    /// The beneficiary did not come.
    Absent,
    /// The session was called off.
    Cancelled,
}

/// What a schedule books.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::ScheduleResourceType")]
pub enum ScheduleResourceType {
    /// An asset; `resourceId` is its global id.
    Asset,
    /// A room; `resourceId` is its code (letters, digits, `-`).
    Room,
    /// A therapist; `resourceId` is their user global id.
    Therapist,
}

/// Where a booking is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "clinic::ScheduleStatus")]
pub enum ScheduleStatus {
    /// Booked; holds its time.
    Scheduled,
    /// Called off; its time is free again.
    Cancelled,
    /// Took place.
    Completed,
}

/// What a report computes; the parameters each takes are listed on `Report`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "reports::ReportType")]
pub enum ReportType {
    /// Assets and their value per category and status.
    AssetInventory,
    /// Places and PENDING/ACTIVE enrolments per programme.
    ProgramOccupancy,
    /// One beneficiary's sessions, progress scores and enrolments.
    BeneficiaryProgress,
    /// Sessions, minutes and active enrolments per therapist.
    TherapistWorkload,
    /// Audit entries per action and entity type (ADMIN).
    AuditSummary,
}

/// Where a report request is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "reports::ReportStatus")]
pub enum ReportStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is computing it.
    Running,
    /// Computed: `result` holds it.
    Ready,
    /// Not computed: `error` says why.
    Failed,
}

/// Converts a list of mirrored values to stored ones.
pub fn stored<A: Copy + Into<B>, B>(values: Option<Vec<A>>) -> Vec<B> {
    values
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}

/// Where a webhook delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::webhooks::DeliveryStatus")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt (or being sent).
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// The last attempt failed; another follows at `nextAttemptAt`.
    Failed,
    /// Every attempt failed (or the webhook is gone or disabled); only a redelivery sends it again.
    Dead,
}
