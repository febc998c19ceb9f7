//! Beneficiaries: the `Beneficiary` type, its queries, and create and update
//! (ADMIN, MANAGER). USER sees `id` and `fullName` only; every other field
//! answers `FORBIDDEN` to USER. A THERAPIST sees only the beneficiaries of
//! their enrolments (the data layer's scope), so the sensitive fields they
//! can read are those of their own beneficiaries.

pub use super::{BeneficiaryStatus, Gender, Severity};
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};
use bson::oid::ObjectId;
use bson::{DateTime as BsonDateTime, doc};

use super::record::{
    BeneficiaryFilter as DbFilter, BeneficiaryForUpdate, BeneficiaryRecord, Consent as DbConsent,
    Guardian as DbGuardian,
};
pub use super::{BeneficiaryOrder, BeneficiaryOrderField};
use crate::domain::text;
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::ContextExt;
use crate::graphql::enums::stored;
use crate::graphql::guards::{ANY_ROLE, CLINICAL, MANAGERS, RoleGuard};
use crate::graphql::inputs::search_pattern;
use crate::graphql::inputs::{clearable, required};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, connection_cost};
use crate::graphql::scalars::{Date, DateTime};
use crate::graphql::sealed;
use crate::models::enrollment::api::{
    Enrollment, EnrollmentFilter, EnrollmentOrder, enrollments_of,
};
use crate::models::therapy_session::api::{
    TherapySession, TherapySessionFilter, TherapySessionOrder, sessions_of,
};
use crate::vault::{DataKey, Sealed};

const DUPLICATE: &str = "a beneficiary with this national id already exists";

/// A person the centre serves.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Beneficiary {
    #[graphql(skip)]
    pub record: Arc<BeneficiaryRecord>,
    /// The person's full name (`[erased]` once their data is erased).
    pub full_name: String,
}

impl crate::graphql::rows::Plain for Beneficiary {}

impl Listed for Beneficiary {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for Beneficiary {
    type Record = BeneficiaryRecord;
    fn wrap(record: Arc<BeneficiaryRecord>) -> Self {
        Self {
            full_name: record.full_name.clone(),
            record,
        }
    }
    fn record(&self) -> &BeneficiaryRecord {
        &self.record
    }
}

/// Who looks after a beneficiary.
#[derive(SimpleObject, Clone)]
pub struct Guardian {
    /// The guardian's name.
    pub name: String,
    /// How to reach them.
    pub phone: Option<String>,
    /// How they are related (mother, father, ...).
    pub relation: Option<String>,
}

/// Consent to the processing of the beneficiary's data.
#[derive(SimpleObject, Clone)]
pub struct Consent {
    /// Whether processing is agreed to.
    pub data_processing: bool,
    /// When the answer was recorded.
    pub recorded_at: DateTime,
}

#[alawael_macros::connections]
#[ComplexObject]
impl Beneficiary {
    /// The beneficiary's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// National id (ADMIN, MANAGER and the beneficiary's therapists).
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn national_id(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(sealed::open(ctx, self.record.national_id.as_ref()).await?)
    }

    /// Date of birth.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn date_of_birth(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Date>> {
        let opened = sealed::open(ctx, self.record.date_of_birth.as_ref()).await?;
        Ok(opened.as_deref().and_then(Date::from_stored))
    }

    /// The year of birth (what lists order by: the date itself is stored
    /// sealed).
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn birth_year(&self) -> Option<i32> {
        self.record.birth_year
    }

    /// Gender as recorded.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn gender(&self) -> Gender {
        self.record.gender
    }

    /// The kind of disability (free text, e.g. "cerebral palsy").
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn disability_type(&self) -> &str {
        &self.record.disability_type
    }

    /// How severe it is.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn severity(&self) -> Severity {
        self.record.severity
    }

    /// Who looks after them.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn guardian(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Guardian>> {
        let Some(opened) = sealed::open(ctx, self.record.guardian.as_ref()).await? else {
            return Ok(None);
        };
        let g: DbGuardian = serde_json::from_str(&opened).map_err(ApiError::internal)?;
        Ok(Some(Guardian {
            name: g.name,
            phone: g.phone,
            relation: g.relation,
        }))
    }

    /// Medical notes (ADMIN, MANAGER and the beneficiary's therapists).
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn medical_notes(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(sealed::open(ctx, self.record.medical_notes.as_ref()).await?)
    }

    /// Consent to data processing.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn consent(&self) -> Option<Consent> {
        self.record.consent.as_ref().map(|c| Consent {
            data_processing: c.data_processing,
            recorded_at: c.recorded_at.into(),
        })
    }

    /// Whether the centre currently serves them.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn status(&self) -> BeneficiaryStatus {
        self.record.status
    }

    /// When their personal data was erased, if it was.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn erased_at(&self) -> Option<DateTime> {
        self.record.erased_at.map(Into::into)
    }

    /// Their enrolments, a page at a time (a THERAPIST sees their own).
    #[graphql(
        guard = "RoleGuard::new(CLINICAL)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn enrollments(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which enrolments to list.")] filter: Option<EnrollmentFilter>,
        #[graphql(desc = "The ordering; by start date when absent.")] order_by: Option<
            EnrollmentOrder,
        >,
    ) -> async_graphql::Result<Connection<Enrollment>> {
        Ok(enrollments_of(ctx, "beneficiaryId", self.record.id, page, filter, order_by).await?)
    }

    /// Their therapy sessions, a page at a time (a THERAPIST sees their own).
    #[graphql(
        guard = "RoleGuard::new(CLINICAL)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which sessions to list.")] filter: Option<TherapySessionFilter>,
        #[graphql(desc = "The ordering; by start time when absent.")] order_by: Option<
            TherapySessionOrder,
        >,
    ) -> async_graphql::Result<Connection<TherapySession>> {
        Ok(sessions_of(ctx, "beneficiaryId", self.record.id, page, filter, order_by).await?)
    }

    /// When the record was created.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn created_at(&self) -> DateTime {
        self.record.created_at.into()
    }

    /// When the record last changed.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn updated_at(&self) -> DateTime {
        self.record.updated_at.into()
    }
}

/// Which beneficiaries `beneficiaries` lists.
#[derive(InputObject, Default)]
pub struct BeneficiaryFilter {
    /// Case-insensitive text found in the full name.
    search: Option<String>,
    /// Exactly this national id (not for USER).
    national_id: Option<String>,
    /// Only these severities.
    severity: Option<Vec<Severity>>,
    /// Only these statuses.
    status: Option<Vec<BeneficiaryStatus>>,
    /// Only these genders.
    gender: Option<Vec<Gender>>,
    /// `true`: only erased people; `false`: only people not erased.
    erased: Option<bool>,
}

/// A guardian as entered.
#[derive(InputObject)]
pub struct GuardianInput {
    /// The guardian's name.
    name: String,
    /// How to reach them.
    phone: Option<String>,
    /// How they are related (mother, father, ...).
    relation: Option<String>,
}

/// Consent as given.
#[derive(InputObject)]
pub struct ConsentInput {
    /// Whether processing is agreed to; recorded with the current time.
    data_processing: bool,
}

/// A new beneficiary.
#[derive(InputObject)]
pub struct CreateBeneficiaryInput {
    /// Full name.
    full_name: String,
    /// National id: 5 to 20 letters and digits; unique.
    national_id: String,
    /// Date of birth.
    date_of_birth: Date,
    /// Gender as recorded.
    gender: Gender,
    /// The kind of disability.
    disability_type: String,
    /// How severe it is.
    severity: Severity,
    /// Who looks after them.
    guardian: Option<GuardianInput>,
    /// Medical notes.
    medical_notes: Option<String>,
    /// Consent to data processing.
    consent: Option<ConsentInput>,
    /// Whether the centre serves them; ACTIVE when absent.
    status: Option<BeneficiaryStatus>,
}

/// Changes to a beneficiary: absent fields stay, `null` clears the optional ones.
#[derive(InputObject)]
pub struct UpdateBeneficiaryInput {
    /// Full name.
    full_name: MaybeUndefined<String>,
    /// National id; unique.
    national_id: MaybeUndefined<String>,
    /// Date of birth.
    date_of_birth: MaybeUndefined<Date>,
    /// Gender as recorded.
    gender: MaybeUndefined<Gender>,
    /// The kind of disability.
    disability_type: MaybeUndefined<String>,
    /// How severe it is.
    severity: MaybeUndefined<Severity>,
    /// Who looks after them; `null` clears it.
    guardian: MaybeUndefined<GuardianInput>,
    /// Medical notes; `null` clears them.
    medical_notes: MaybeUndefined<String>,
    /// Consent to data processing (recorded again with the current time).
    consent: MaybeUndefined<ConsentInput>,
    /// Whether the centre serves them.
    status: MaybeUndefined<BeneficiaryStatus>,
}

fn person_name(value: &str, field: &str) -> ApiResult<String> {
    text::required(value, 200).map_err(|m| ApiError::bad_input(field, format!("the name {m}")))
}

fn national_id(value: &str, field: &str) -> ApiResult<String> {
    super::rules::national_id(value).map_err(|m| ApiError::bad_input(field, m))
}

/// A birth date: its stored text and its year.
fn birth(value: Date) -> ApiResult<(String, i32)> {
    super::rules::date_of_birth(value.0, chrono::Utc::now().date_naive())
        .map(|d| (Date(d).to_stored(), chrono::Datelike::year(&d)))
        .map_err(|m| ApiError::bad_input("input.dateOfBirth", m))
}

/// A guardian sealed as JSON.
fn seal_guardian(key: &DataKey, guardian: &DbGuardian) -> ApiResult<Sealed> {
    let text = serde_json::to_string(guardian).map_err(ApiError::internal)?;
    Ok(key.seal(&text))
}

fn disability(value: &str) -> ApiResult<String> {
    text::required(value, 200).map_err(|m| {
        ApiError::bad_input("input.disabilityType", format!("the disability type {m}"))
    })
}

fn notes(value: &str) -> ApiResult<String> {
    text::optional(value, 10_000)
        .map_err(|m| ApiError::bad_input("input.medicalNotes", format!("the notes {m}")))
}

fn guardian(input: GuardianInput) -> ApiResult<DbGuardian> {
    Ok(DbGuardian {
        name: person_name(&input.name, "input.guardian.name")?,
        phone: input
            .phone
            .as_deref()
            .map(|p| {
                super::rules::phone(p).map_err(|m| ApiError::bad_input("input.guardian.phone", m))
            })
            .transpose()?,
        relation: input
            .relation
            .as_deref()
            .map(|r| {
                text::required(r, 50).map_err(|m| {
                    ApiError::bad_input("input.guardian.relation", format!("the relation {m}"))
                })
            })
            .transpose()?,
    })
}

fn consent(input: ConsentInput) -> DbConsent {
    DbConsent {
        data_processing: input.data_processing,
        recorded_at: BsonDateTime::now(),
    }
}

#[derive(Default)]
pub struct BeneficiaryQuery;

#[alawael_macros::connections]
#[Object]
impl BeneficiaryQuery {
    /// The people the centre serves, a page at a time (a THERAPIST sees
    /// their own; USER sees names only).
    #[graphql(
        guard = "RoleGuard::new(ANY_ROLE)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn beneficiaries(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which beneficiaries to list.")] filter: Option<BeneficiaryFilter>,
        #[graphql(desc = "The ordering; by full name when absent.")] order_by: Option<
            BeneficiaryOrder,
        >,
    ) -> async_graphql::Result<Connection<Beneficiary>> {
        let filter = filter.unwrap_or_default();
        let national_id_key = match filter.national_id.as_deref() {
            Some(n) => {
                let n = national_id(n, "filter.nationalId")?;
                Some(ctx.app()?.vault.blind_index("nationalId", &n).await?)
            }
            None => None,
        };
        let db_filter = DbFilter {
            search: search_pattern(filter.search, "filter.search")?,
            national_id_key,
            severities: stored(filter.severity),
            statuses: stored(filter.status),
            genders: stored(filter.gender),
            erased: filter.erased,
        };
        let args = page;
        Ok(model::list(
            ctx,
            args,
            db_filter.to_document()?,
            order_by.map(|o| (o.field, o.direction)),
        )
        .await?)
    }

    /// One beneficiary by id.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn beneficiary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The beneficiary's global id.")] id: ID,
    ) -> async_graphql::Result<Beneficiary> {
        Ok(model::one(ctx, &id).await?)
    }
}

#[derive(Default)]
pub struct BeneficiaryMutation;

#[Object]
impl BeneficiaryMutation {
    /// Registers a beneficiary (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn create_beneficiary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to create.")] input: CreateBeneficiaryInput,
    ) -> async_graphql::Result<Beneficiary> {
        let id = ObjectId::new();
        let full_name = person_name(&input.full_name, "input.fullName")?;
        let national = national_id(&input.national_id, "input.nationalId")?;
        let (born, birth_year) = birth(input.date_of_birth)?;
        let disability_type = disability(&input.disability_type)?;
        let guardian = input.guardian.map(guardian).transpose()?;
        let medical_notes = input.medical_notes.as_deref().map(notes).transpose()?;
        let app = ctx.app()?;
        let national_id_key = app.vault.blind_index("nationalId", &national).await?;
        let key = sealed::key_for(ctx, id).await?;
        let now = BsonDateTime::now();
        let record = BeneficiaryRecord {
            id,
            full_name,
            national_id_key,
            national_id: Some(key.seal(&national)),
            date_of_birth: Some(key.seal(&born)),
            birth_year: Some(birth_year),
            gender: input.gender,
            disability_type,
            severity: input.severity,
            guardian: guardian
                .as_ref()
                .map(|g| seal_guardian(&key, g))
                .transpose()?,
            medical_notes: medical_notes.as_deref().map(|n| key.seal(n)),
            consent: input.consent.map(consent),
            status: input
                .status
                .unwrap_or(super::rules::BeneficiaryStatus::Active),
            erased_at: None,
            created_at: now,
            updated_at: now,
        };
        Ok(model::insert(ctx, record, "beneficiary.create", DUPLICATE).await?)
    }

    /// Changes a beneficiary (ADMIN, MANAGER). An erased person's
    /// identifying fields cannot be set again.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn update_beneficiary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The beneficiary's global id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateBeneficiaryInput,
    ) -> async_graphql::Result<Beneficiary> {
        let before: Beneficiary = model::one(ctx, &id).await?;
        let before = before.record;
        // Checked in the order of the input's fields.
        let full_name = required(input.full_name, "input.fullName", |v| {
            person_name(&v, "input.fullName")
        })?;
        let national = required(input.national_id, "input.nationalId", |v| {
            national_id(&v, "input.nationalId")
        })?;
        let born = required(input.date_of_birth, "input.dateOfBirth", birth)?;
        let gender = required(input.gender, "input.gender", Ok)?;
        let disability_type = required(input.disability_type, "input.disabilityType", |v| {
            disability(&v)
        })?;
        let severity = required(input.severity, "input.severity", Ok)?;
        let guardian = clearable(input.guardian, guardian)?;
        let medical_notes = clearable(input.medical_notes, |v| notes(&v))?;
        let consent = clearable(input.consent, |c| Ok(consent(c)))?;
        let status = required(input.status, "input.status", Ok)?;
        let identifies = full_name.is_some()
            || national.is_some()
            || born.is_some()
            || guardian.is_some()
            || medical_notes.is_some();
        if before.erased_at.is_some() && identifies {
            return Err(ApiError::Conflict(
                "this person's data was erased; identifying fields cannot be set again".into(),
            )
            .into());
        }
        let sealing =
            national.is_some() || born.is_some() || guardian.is_some() || medical_notes.is_some();
        let key = if sealing {
            Some(sealed::key_for(ctx, before.id).await?)
        } else {
            None
        };
        let seal = |value: &str| key.as_ref().map(|k| k.seal(value));
        let national_id_key = match &national {
            Some(n) => Some(ctx.app()?.vault.blind_index("nationalId", n).await?),
            None => None,
        };
        let change = BeneficiaryForUpdate {
            full_name,
            national_id_key,
            national_id: national.as_deref().and_then(seal),
            birth_year: born.as_ref().map(|(_, year)| *year),
            date_of_birth: born.as_ref().and_then(|(text, _)| seal(text)),
            gender,
            disability_type,
            severity,
            guardian: match guardian {
                Some(Some(g)) => Some(match &key {
                    Some(k) => Some(seal_guardian(k, &g)?),
                    None => None,
                }),
                Some(None) => Some(None),
                None => None,
            },
            medical_notes: medical_notes.map(|n| n.as_deref().and_then(seal)),
            consent,
            status,
        };
        Ok(model::update(ctx, &*before, change, "beneficiary.update", DUPLICATE).await?)
    }
}
