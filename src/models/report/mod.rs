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

crate::api_enum!(
    /// What a report computes; the parameters each takes are listed on `Report`.
    ReportType {
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
);

crate::api_enum!(
    /// Where a report request is in its life.
    ReportStatus {
        /// Waiting for a worker.
        Queued,
        /// A worker is computing it.
        Running,
        /// Computed: `result` holds it.
        Ready,
        /// Not computed: `error` says why.
        Failed,
    }
);
