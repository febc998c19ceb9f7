//! The `beneficiaries` collection: the people the centre serves, and the
//! personal data that export and erasure act on. The national id, date of
//! birth, guardian and medical notes are stored sealed under the person's
//! data key (`vault`); the birth year stays readable for ordering. A stored
//! `nationalIdKey` (the national id's keyed blind index, or `erased:<id>`
//! once erased) carries the unique index and the lookup by national id.
//!
//! Scope: ADMIN, MANAGER and USER see every row (USER only names, enforced by
//! the API's field guards); a THERAPIST sees the beneficiaries of the
//! enrolments they run.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::rules::{BeneficiaryStatus, Gender, Severity};
use crate::db::model::{Access, Clause, Model, Scope};
use crate::db::store::{ForUpdate, Record};
use crate::db::{DbResult, filters};
use crate::domain::Role;
use crate::domain::roles::CLINICAL;
use crate::models::enrollment::record::EnrollmentRecord;
use crate::vault::Sealed;

pub const COLLECTION: &str = "beneficiaries";
/// What an erased beneficiary's name reads.
pub const ERASED_NAME: &str = "[erased]";

/// Who looks after a beneficiary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guardian {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub relation: Option<String>,
}

/// The beneficiary's (or guardian's) consent to processing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub data_processing: bool,
    pub recorded_at: DateTime,
}

/// A stored beneficiary.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeneficiaryRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub full_name: String,
    /// Sealed; absent once erased.
    #[serde(default)]
    pub national_id: Option<Sealed>,
    /// The national id's blind index (`Vault::blind_index`), or `erased:<id>`.
    pub national_id_key: String,
    /// `YYYY-MM-DD`, sealed; absent once erased.
    #[serde(default)]
    pub date_of_birth: Option<Sealed>,
    /// The year of `date_of_birth`, for ordering and age bands; absent once erased.
    #[serde(default)]
    pub birth_year: Option<i32>,
    pub gender: Gender,
    pub disability_type: String,
    pub severity: Severity,
    /// A `Guardian` as JSON, sealed.
    #[serde(default)]
    pub guardian: Option<Sealed>,
    /// Sealed.
    #[serde(default)]
    pub medical_notes: Option<Sealed>,
    #[serde(default)]
    pub consent: Option<Consent>,
    pub status: BeneficiaryStatus,
    #[serde(default)]
    pub erased_at: Option<DateTime>,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

/// A validated change to a beneficiary (see `ForUpdate`). A new national
/// id comes with its `nationalIdKey`, a new birth date with its year.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BeneficiaryForUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national_id: Option<Sealed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national_id_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<Sealed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disability_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardian: Option<Option<Sealed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medical_notes: Option<Option<Sealed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<Option<Consent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BeneficiaryStatus>,
}

impl BeneficiaryForUpdate {
    /// Whether it sets a field that identifies the person (refused once erased).
    pub fn identifies(&self) -> bool {
        self.full_name.is_some()
            || self.national_id.is_some()
            || self.date_of_birth.is_some()
            || self.guardian.is_some()
            || self.medical_notes.is_some()
    }
}

impl ForUpdate for BeneficiaryForUpdate {}

impl Record for BeneficiaryRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

/// The fields that identify a person: erased, and never in an export of someone else.
pub const IDENTIFYING: &[&str] = &[
    "fullName",
    "nationalId",
    "nationalIdKey",
    "dateOfBirth",
    "birthYear",
    "guardian",
    "medicalNotes",
];

impl Model for BeneficiaryRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::Beneficiary;
    const INTERNAL: &'static [&'static str] = &["nationalIdKey"];
    const SENSITIVE: &'static [&'static str] = &["nationalId", "nationalIdKey", "medicalNotes"];
    const SEALED: &'static [&'static str] =
        &["nationalId", "dateOfBirth", "guardian", "medicalNotes"];
    const SUBJECT: Option<&'static str> = Some("_id");
    const PERSONAL: &'static [&'static str] = &[
        "fullName",
        "nationalId",
        "nationalIdKey",
        "dateOfBirth",
        "birthYear",
        "gender",
        "disabilityType",
        "severity",
        "guardian",
        "medicalNotes",
        "consent",
    ];
    const PUBLIC: &'static [&'static str] = &["status"];
    /// USER reads a beneficiary's name and nothing else.
    const READERS: &'static [(&'static str, &'static [Role])] = &[
        ("nationalId", CLINICAL),
        ("nationalIdKey", CLINICAL),
        ("dateOfBirth", CLINICAL),
        ("birthYear", CLINICAL),
        ("gender", CLINICAL),
        ("disabilityType", CLINICAL),
        ("severity", CLINICAL),
        ("guardian", CLINICAL),
        ("medicalNotes", CLINICAL),
        ("consent", CLINICAL),
        ("status", CLINICAL),
        ("erasedAt", CLINICAL),
        ("createdAt", CLINICAL),
        ("updatedAt", CLINICAL),
    ];
    type Order = super::BeneficiaryOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            ("nationalIdKey_unique", doc! { "nationalIdKey": 1 }, true),
            (
                "severity_status",
                doc! { "severity": 1, "status": 1 },
                false,
            ),
        ]
    }

    async fn scope(access: &Access) -> DbResult<Scope> {
        let Some(viewer) = access.viewer() else {
            return Ok(Scope::Nothing);
        };
        if viewer.role != Role::Therapist {
            return Ok(Scope::All);
        }
        // FerretDB refuses `maxTimeMS` on `distinct`; a projected `find` carries it.
        let rows: Vec<Document> = access
            .db()
            .collection(EnrollmentRecord::COLLECTION)
            .find(doc! { "therapistId": viewer.id })
            .projection(doc! { "_id": 0, "beneficiaryId": 1 })
            .max_time(access.db().max_time())
            .await?
            .try_collect()
            .await?;
        let mut ids: Vec<Bson> = rows
            .into_iter()
            .filter_map(|r| r.get_object_id("beneficiaryId").ok().map(Bson::ObjectId))
            .collect();
        ids.sort_by_key(|b| b.to_string());
        ids.dedup();
        Ok(Scope::AnyOf(vec![Clause {
            field: "_id",
            values: ids,
        }]))
    }
}

/// Which beneficiaries a list shows.
#[derive(Debug, Clone, Default)]
pub struct BeneficiaryFilter {
    /// Regex-escaped text matched case-insensitively in the full name.
    pub search: Option<String>,
    /// The blind index of an exact national id.
    pub national_id_key: Option<String>,
    pub severities: Vec<Severity>,
    pub statuses: Vec<BeneficiaryStatus>,
    pub genders: Vec<Gender>,
    /// `Some(true)`: only erased; `Some(false)`: only not erased.
    pub erased: Option<bool>,
}

impl BeneficiaryFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        filters::search(&mut filter, &["fullName"], self.search.as_deref());
        if let Some(key) = &self.national_id_key {
            filter.insert("nationalIdKey", key);
        }
        filters::one_of(&mut filter, "severity", &self.severities)?;
        filters::one_of(&mut filter, "status", &self.statuses)?;
        filters::one_of(&mut filter, "gender", &self.genders)?;
        match self.erased {
            Some(true) => {
                filter.insert("erasedAt", doc! { "$type": "date" });
            }
            Some(false) => {
                filter.insert("erasedAt", Bson::Null);
            }
            None => {}
        }
        Ok(filter)
    }
}

/// The stored form of erasure: every identifying field cleared, the rest kept
/// for statistics.
pub fn erasure(id: ObjectId, at: DateTime) -> Document {
    doc! {
        "fullName": ERASED_NAME,
        "nationalId": Bson::Null,
        "nationalIdKey": format!("erased:{}", id.to_hex()),
        "dateOfBirth": Bson::Null,
        "birthYear": Bson::Null,
        "guardian": Bson::Null,
        "medicalNotes": Bson::Null,
        "erasedAt": at,
        "updatedAt": at,
    }
}
