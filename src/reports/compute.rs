//! The dispatcher: a report's type and stored parameters to its computation
//! (one file per type), and how a computation fails. Counts and sums are
//! `$group` stages, the rows a report lists come from projected finds (see
//! `reads`). Every result is a JSON object whose lists hold rows (no client
//! value becomes a key); ids are global ids and instants RFC 3339 in UTC.

use serde_json::Value;

use super::params::{self, Parameters};
use super::{
    asset_inventory, audit_summary, beneficiary_progress, program_occupancy, therapist_workload,
};
use crate::db::{Db, DbError};
use crate::models::report::rules::ReportType;

/// Why a computation did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The parameters do not fit: the report fails with this reason.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<mongodb::error::Error> for Failure {
    fn from(error: mongodb::error::Error) -> Self {
        Self::Db(error.into())
    }
}

impl From<bson::ser::Error> for Failure {
    fn from(error: bson::ser::Error) -> Self {
        Self::Db(error.into())
    }
}

/// A report's result, or why there is none.
pub type Computed = Result<Value, Failure>;

/// Computes a `kind` report from its stored parameter text.
pub async fn compute(db: &Db, kind: ReportType, parameters: &str) -> Computed {
    match params::parse(kind, parameters).map_err(Failure::Invalid)? {
        Parameters::AssetInventory { category } => asset_inventory::compute(db, category).await,
        Parameters::ProgramOccupancy { program } => program_occupancy::compute(db, program).await,
        Parameters::BeneficiaryProgress {
            beneficiary,
            window,
        } => beneficiary_progress::compute(db, beneficiary, window).await,
        Parameters::TherapistWorkload { window } => therapist_workload::compute(db, window).await,
        Parameters::AuditSummary { window } => audit_summary::compute(db, window).await,
    }
}
