//! The `disability_programs` collection: the centre's programmes. Every
//! signed-in caller reads them; ADMIN and MANAGER change them.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use super::rules::{ProgramCategory, ProgramStatus};
use crate::db::model::Model;
use crate::db::money::StoredMoney;
use crate::db::store::{ForUpdate, Record};
use crate::db::{DbResult, filters};
use crate::order_fields;

pub const COLLECTION: &str = "disability_programs";

/// A stored programme.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisabilityProgramRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    pub category: ProgramCategory,
    #[serde(default)]
    pub description: Option<String>,
    pub capacity: i32,
    pub duration_weeks: i32,
    pub fee: StoredMoney,
    pub status: ProgramStatus,
    #[serde(default)]
    pub manager_id: Option<ObjectId>,
    #[serde(default)]
    pub therapist_ids: Vec<ObjectId>,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

/// A validated change to a programme (see `ForUpdate`).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisabilityProgramForUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<ProgramCategory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_weeks: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<StoredMoney>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ProgramStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<Option<ObjectId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub therapist_ids: Option<Vec<ObjectId>>,
}

impl ForUpdate for DisabilityProgramForUpdate {}

impl Record for DisabilityProgramRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

order_fields! {
    /// Orders of `disabilityPrograms`.
    pub enum ProgramOrder {
        Name = "NAME" => "name",
        CreatedAt = "CREATED_AT" => "createdAt",
        UpdatedAt = "UPDATED_AT" => "updatedAt",
        Capacity = "CAPACITY" => "capacity",
    }
}

impl Model for DisabilityProgramRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::DisabilityProgram;
    const PUBLIC: &'static [&'static str] =
        &["name", "category", "status", "capacity", "durationWeeks"];
    type Order = ProgramOrder;

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

/// Which programmes a list shows.
#[derive(Debug, Clone, Default)]
pub struct ProgramFilter {
    pub categories: Vec<ProgramCategory>,
    pub statuses: Vec<ProgramStatus>,
    pub manager: Option<ObjectId>,
    pub therapist: Option<ObjectId>,
    /// Regex-escaped text matched case-insensitively in the name and description.
    pub search: Option<String>,
}

impl ProgramFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        filters::one_of(&mut filter, "category", &self.categories)?;
        filters::one_of(&mut filter, "status", &self.statuses)?;
        if let Some(manager) = self.manager {
            filter.insert("managerId", manager);
        }
        if let Some(therapist) = self.therapist {
            filter.insert("therapistIds", therapist);
        }
        filters::search(
            &mut filter,
            &["name", "description"],
            self.search.as_deref(),
        );
        Ok(filter)
    }
}
