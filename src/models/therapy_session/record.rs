//! The `therapy_sessions` collection: what happened in each session of an
//! enrolment. A THERAPIST sees and records their own; ADMIN and MANAGER read
//! all; USER none.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use super::rules::Attendance;
use crate::db::model::{Access, Clause, Model, Scope};
use crate::db::store::{ForUpdate, Record};
use crate::db::{DbResult, filters};
use crate::domain::Role;
use crate::domain::roles::CLINICAL;
use crate::vault::Sealed;

pub const COLLECTION: &str = "therapy_sessions";

/// A stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TherapySessionRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub enrollment_id: ObjectId,
    pub beneficiary_id: ObjectId,
    pub therapist_id: ObjectId,
    pub program_id: ObjectId,
    #[serde(default)]
    pub schedule_id: Option<ObjectId>,
    pub started_at: DateTime,
    pub duration_minutes: i32,
    pub attendance: Attendance,
    #[serde(default)]
    /// Sealed under the beneficiary's data key.
    pub notes: Option<Sealed>,
    #[serde(default)]
    pub progress_score: Option<i32>,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

/// A validated change to a session (see `ForUpdate`).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TherapySessionForUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_minutes: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attendance: Option<Attendance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Option<Sealed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_score: Option<Option<i32>>,
}

impl ForUpdate for TherapySessionForUpdate {}

impl Record for TherapySessionRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

impl Model for TherapySessionRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::TherapySession;
    const SENSITIVE: &'static [&'static str] = &["notes"];
    const SEALED: &'static [&'static str] = &["notes"];
    const SUBJECT: Option<&'static str> = Some("beneficiaryId");
    const PERSONAL: &'static [&'static str] = &["notes", "progressScore", "attendance"];
    const PUBLIC: &'static [&'static str] = &["programId", "startedAt", "durationMinutes"];
    const READERS: &'static [(&'static str, &'static [Role])] = &[("notes", CLINICAL)];
    type Order = super::TherapySessionOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            ("beneficiaryId", doc! { "beneficiaryId": 1 }, false),
            ("enrollmentId", doc! { "enrollmentId": 1 }, false),
            ("therapistId", doc! { "therapistId": 1 }, false),
        ]
    }

    async fn scope(access: &Access) -> DbResult<Scope> {
        Ok(match access.viewer() {
            Some(v) if v.is_manager() => Scope::All,
            Some(v) if v.role == Role::Therapist => {
                Scope::AnyOf(vec![Clause::equals("therapistId", v.id)])
            }
            _ => Scope::Nothing,
        })
    }
}

/// Which sessions a list shows.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub enrollment: Option<ObjectId>,
    pub beneficiary: Option<ObjectId>,
    pub therapist: Option<ObjectId>,
    pub attendance: Vec<Attendance>,
    pub started_from: Option<DateTime>,
    pub started_to: Option<DateTime>,
}

impl SessionFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        for (field, value) in [
            ("enrollmentId", self.enrollment),
            ("beneficiaryId", self.beneficiary),
            ("therapistId", self.therapist),
        ] {
            if let Some(id) = value {
                filter.insert(field, id);
            }
        }
        filters::one_of(&mut filter, "attendance", &self.attendance)?;
        filters::range(&mut filter, "startedAt", self.started_from, self.started_to);
        Ok(filter)
    }
}
