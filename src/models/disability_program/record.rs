//! The `disability_programs` collection: its indexes and what a webhook may
//! always carry. The record and its order fields are declared in `mod.rs`.

use bson::{Document, doc};

pub use super::{DisabilityProgramForUpdate, DisabilityProgramOrderField, DisabilityProgramRecord};
use crate::db::model::Model;

pub const COLLECTION: &str = "disability_programs";

impl Model for DisabilityProgramRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::DisabilityProgram;
    const PUBLIC: &'static [&'static str] =
        &["name", "category", "status", "capacity", "durationWeeks"];
    type Order = DisabilityProgramOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            (
                "category_status",
                doc! { "category": 1, "status": 1 },
                false,
            ),
            ("managerId", doc! { "managerId": 1 }, false),
        ]
    }
}
