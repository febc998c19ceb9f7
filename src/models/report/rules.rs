//! Reports computed in the background: what can be asked for, and where a
//! request is in its life (QUEUED → RUNNING → READY or FAILED).

pub use super::{ReportStatus, ReportType};

impl ReportType {
    /// The name clients use (`ASSET_INVENTORY`).
    pub fn name(self) -> &'static str {
        match self {
            Self::AssetInventory => "ASSET_INVENTORY",
            Self::ProgramOccupancy => "PROGRAM_OCCUPANCY",
            Self::BeneficiaryProgress => "BENEFICIARY_PROGRESS",
            Self::TherapistWorkload => "THERAPIST_WORKLOAD",
            Self::AuditSummary => "AUDIT_SUMMARY",
        }
    }

    /// Only ADMIN may ask for it (it reads the audit log).
    pub fn admin_only(self) -> bool {
        matches!(self, Self::AuditSummary)
    }
}

impl ReportStatus {
    /// READY and FAILED are final.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Ready | Self::Failed)
    }
}

/// The reason a report fails with after `attempts` workers stopped on it.
pub fn gave_up_reason(attempts: i32) -> String {
    format!("the worker stopped {attempts} times while computing this report")
}
