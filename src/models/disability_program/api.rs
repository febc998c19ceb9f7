//! Disability programmes: the `DisabilityProgram` type, its queries, and
//! create, update and delete for ADMIN and MANAGER. Everyone signed in reads
//! them; a programme's enrolments follow the caller's enrolment scope.

use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};
use bson::oid::ObjectId;
use bson::{DateTime as BsonDateTime, doc};

use super::record::{
    DisabilityProgramForUpdate, DisabilityProgramRecord, ProgramFilter as DbFilter, ProgramOrder,
};
use super::rules;
use crate::db::money::StoredMoney;
use crate::db::store::Store;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::stored;
use crate::graphql::guards::{ANY_ROLE, CLINICAL, MANAGERS, RoleGuard};
use crate::graphql::inputs::{clearable, required};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::money::{Money, MoneyInput};
use crate::graphql::pagination::{Connection, Listed, OrderDirection, connection_cost};
use crate::graphql::scalars::DateTime;
use crate::models::enrollment::api::{
    Enrollment, EnrollmentFilter, EnrollmentOrder, enrollments_of,
};
use crate::models::user::api::{User, search_pattern};
use crate::models::user::record::UserRecord;

use crate::domain::{Role, text};
use crate::error::{ApiError, ApiResult};

/// A programme the centre runs (physiotherapy, speech therapy, ...).
#[derive(SimpleObject, Clone)]
#[graphql(complex, cache_control(max_age = 300))]
pub struct DisabilityProgram {
    #[graphql(skip)]
    pub record: Arc<DisabilityProgramRecord>,
    /// What the programme is called.
    pub name: String,
    /// What it works on.
    pub category: ProgramCategory,
    /// How many beneficiaries it takes at once (PENDING and ACTIVE enrolments).
    pub capacity: i32,
    /// How long it runs, in weeks.
    pub duration_weeks: i32,
    /// Whether it takes enrolments.
    pub status: ProgramStatus,
}

impl crate::graphql::rows::Plain for DisabilityProgram {}

impl Listed for DisabilityProgram {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for DisabilityProgram {
    type Record = DisabilityProgramRecord;
    fn wrap(record: Arc<DisabilityProgramRecord>) -> Self {
        Self {
            name: record.name.clone(),
            category: record.category.into(),
            capacity: record.capacity,
            duration_weeks: record.duration_weeks,
            status: record.status.into(),
            record,
        }
    }
    fn record(&self) -> &DisabilityProgramRecord {
        &self.record
    }
}

#[alawael_macros::connections]
#[ComplexObject]
impl DisabilityProgram {
    /// The programme's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// What the programme offers.
    async fn description(&self) -> Option<&str> {
        self.record.description.as_deref()
    }

    /// What it costs per beneficiary.
    async fn fee(&self) -> Money {
        Money::from(&self.record.fee)
    }

    /// The manager responsible for it.
    async fn manager(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.record.manager_id {
            Some(id) => Ok(model::load::<User>(ctx, id).await?),
            None => Ok(None),
        }
    }

    /// The therapists who work in it.
    async fn therapists(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        Ok(model::load_many::<User>(ctx, &self.record.therapist_ids).await?)
    }

    /// Its enrolments, a page at a time (a THERAPIST sees their own).
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
        Ok(enrollments_of(ctx, "programId", self.record.id, page, filter, order_by).await?)
    }

    /// When the record was created.
    async fn created_at(&self) -> DateTime {
        self.record.created_at.into()
    }

    /// When the record last changed.
    async fn updated_at(&self) -> DateTime {
        self.record.updated_at.into()
    }
}

/// Which programmes `disabilityPrograms` lists.
#[derive(InputObject, Default)]
pub struct DisabilityProgramFilter {
    /// Only these categories.
    category: Option<Vec<ProgramCategory>>,
    /// Only these statuses.
    status: Option<Vec<ProgramStatus>>,
    /// Only programmes this user manages.
    manager_id: Option<ID>,
    /// Only programmes this therapist works in.
    therapist_id: Option<ID>,
    /// Case-insensitive text found in the name or description.
    search: Option<String>,
}

/// Fields `disabilityPrograms` can be ordered by.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "ProgramOrder")]
pub enum DisabilityProgramOrderField {
    /// Alphabetically by name.
    Name,
    /// By creation time.
    CreatedAt,
    /// By last change.
    UpdatedAt,
    /// By number of places.
    Capacity,
}

/// How `disabilityPrograms` is ordered.
#[derive(InputObject)]
pub struct DisabilityProgramOrder {
    /// The field to order by.
    field: DisabilityProgramOrderField,
    /// Ascending or descending.
    #[graphql(default)]
    direction: OrderDirection,
}

/// A new programme.
#[derive(InputObject)]
pub struct CreateDisabilityProgramInput {
    /// What the programme is called.
    name: String,
    /// What it works on.
    category: ProgramCategory,
    /// Places (1 to 10000).
    capacity: i32,
    /// Length in weeks (1 to 520).
    duration_weeks: i32,
    /// What it costs per beneficiary.
    fee: MoneyInput,
    /// What the programme offers.
    description: Option<String>,
    /// Whether it takes enrolments; ACTIVE when absent.
    status: Option<ProgramStatus>,
    /// The manager responsible (an active ADMIN or MANAGER).
    manager_id: Option<ID>,
    /// The therapists who work in it (active THERAPIST accounts).
    therapist_ids: Option<Vec<ID>>,
}

/// Changes to a programme: absent fields stay, `null` clears the optional ones.
#[derive(InputObject)]
pub struct UpdateDisabilityProgramInput {
    /// What the programme is called.
    name: MaybeUndefined<String>,
    /// What it works on.
    category: MaybeUndefined<ProgramCategory>,
    /// Places; not below the places already taken.
    capacity: MaybeUndefined<i32>,
    /// Length in weeks.
    duration_weeks: MaybeUndefined<i32>,
    /// What it costs per beneficiary.
    fee: MaybeUndefined<MoneyInput>,
    /// What the programme offers; `null` clears it.
    description: MaybeUndefined<String>,
    /// Whether it takes enrolments.
    status: MaybeUndefined<ProgramStatus>,
    /// The manager responsible; `null` clears it.
    manager_id: MaybeUndefined<ID>,
    /// The therapists who work in it (replaces the list).
    therapist_ids: MaybeUndefined<Vec<ID>>,
}

impl DisabilityProgramFilter {
    fn into_db(self) -> ApiResult<DbFilter> {
        Ok(DbFilter {
            categories: stored(self.category),
            statuses: stored(self.status),
            manager: self
                .manager_id
                .as_ref()
                .map(|id| model::reference::<User>(id, "filter.managerId"))
                .transpose()?,
            therapist: self
                .therapist_id
                .as_ref()
                .map(|id| model::reference::<User>(id, "filter.therapistId"))
                .transpose()?,
            search: search_pattern(self.search, "filter.search")?,
        })
    }
}

fn bad(field: &str) -> impl Fn(String) -> ApiError + '_ {
    move |m| ApiError::bad_input(field, m)
}

fn name(value: &str) -> ApiResult<String> {
    text::required(value, 200)
        .map_err(|m| ApiError::bad_input("input.name", format!("the name {m}")))
}

fn description(value: &str) -> ApiResult<String> {
    text::optional(value, 2000)
        .map_err(|m| ApiError::bad_input("input.description", format!("the description {m}")))
}

/// Active accounts with one of `roles`, by global id; anything else is `BAD_USER_INPUT`.
async fn staff(
    ctx: &Context<'_>,
    ids: &[ID],
    roles: &[Role],
    field: &str,
    what: &str,
) -> ApiResult<Vec<ObjectId>> {
    let bad = || ApiError::bad_input(field, format!("every id must be an active {what}"));
    let mut oids = Vec::with_capacity(ids.len());
    for id in ids {
        let oid = model::reference::<User>(id, field).map_err(|_| bad())?;
        if !oids.contains(&oid) {
            oids.push(oid);
        }
    }
    if oids.len() > 50 {
        return Err(ApiError::bad_input(field, "at most 50 people"));
    }
    let found = Store::<UserRecord>::new(&ctx.app()?.db)
        .get_many(&oids)
        .await?;
    let ok = found
        .iter()
        .filter(|u| u.active && roles.contains(&u.role))
        .count();
    if ok != oids.len() {
        return Err(bad());
    }
    Ok(oids)
}

#[derive(Default)]
pub struct DisabilityProgramQuery;

#[alawael_macros::connections]
#[Object]
impl DisabilityProgramQuery {
    /// The centre's programmes, a page at a time. Cacheable for 300 s (any
    /// programme write makes cached answers stale).
    #[graphql(
        guard = "RoleGuard::new(ANY_ROLE)",
        complexity = "connection_cost(first, last, child_complexity)",
        cache_control(max_age = 300)
    )]
    async fn disability_programs(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which programmes to list.")] filter: Option<DisabilityProgramFilter>,
        #[graphql(desc = "The ordering; by name when absent.")] order_by: Option<
            DisabilityProgramOrder,
        >,
    ) -> async_graphql::Result<Connection<DisabilityProgram>> {
        let filter = filter.unwrap_or_default().into_db()?.to_document()?;
        let args = page;
        Ok(model::list(
            ctx,
            args,
            filter,
            order_by.map(|o| (o.field.into(), o.direction)),
        )
        .await?)
    }

    /// One programme by id. Cacheable for 300 s (a write to this programme
    /// makes cached answers stale).
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)", cache_control(max_age = 300))]
    async fn disability_program(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme's global id.")] id: ID,
    ) -> async_graphql::Result<DisabilityProgram> {
        Ok(model::one(ctx, &id).await?)
    }
}

#[derive(Default)]
pub struct DisabilityProgramMutation;

#[Object]
impl DisabilityProgramMutation {
    /// Opens a programme (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn create_disability_program(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to create.")] input: CreateDisabilityProgramInput,
    ) -> async_graphql::Result<DisabilityProgram> {
        let fee = input.fee.parse("input.fee")?;
        let manager_id = match &input.manager_id {
            Some(id) => staff(
                ctx,
                std::slice::from_ref(id),
                &[Role::Admin, Role::Manager],
                "input.managerId",
                "ADMIN or MANAGER",
            )
            .await?
            .first()
            .copied(),
            None => None,
        };
        let therapist_ids = staff(
            ctx,
            &input.therapist_ids.unwrap_or_default(),
            &[Role::Therapist],
            "input.therapistIds",
            "THERAPIST",
        )
        .await?;
        let now = BsonDateTime::now();
        let record = DisabilityProgramRecord {
            id: ObjectId::new(),
            name: name(&input.name)?,
            category: input.category.into(),
            description: input.description.as_deref().map(description).transpose()?,
            capacity: rules::capacity(input.capacity).map_err(bad("input.capacity"))?,
            duration_weeks: rules::duration_weeks(input.duration_weeks)
                .map_err(bad("input.durationWeeks"))?,
            fee: StoredMoney::from(&fee),
            status: input
                .status
                .map(Into::into)
                .unwrap_or(rules::ProgramStatus::Active),
            manager_id,
            therapist_ids,
            created_at: now,
            updated_at: now,
        };
        Ok(model::insert(
            ctx,
            record,
            "program.create",
            "a programme with this name already exists",
        )
        .await?)
    }

    /// Changes a programme (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn update_disability_program(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme's global id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateDisabilityProgramInput,
    ) -> async_graphql::Result<DisabilityProgram> {
        let before: DisabilityProgram = model::one(ctx, &id).await?;
        let before = before.record;
        // Checked in the order of the input's fields, each read when it is reached.
        let mut change = DisabilityProgramForUpdate {
            name: required(input.name, "input.name", |v| name(&v))?,
            category: required(input.category, "input.category", |v| Ok(v.into()))?,
            capacity: required(input.capacity, "input.capacity", |v| {
                rules::capacity(v).map_err(bad("input.capacity"))
            })?,
            ..DisabilityProgramForUpdate::default()
        };
        if let Some(capacity) = change.capacity {
            let taken = ctx.app()?.db.enrollments().seats_taken(before.id).await?;
            if u64::try_from(capacity).unwrap_or(0) < taken {
                return Err(ApiError::Conflict(format!(
                    "{taken} places are taken; the capacity cannot go below that"
                ))
                .into());
            }
        }
        change.duration_weeks = required(input.duration_weeks, "input.durationWeeks", |v| {
            rules::duration_weeks(v).map_err(bad("input.durationWeeks"))
        })?;
        change.fee = required(input.fee, "input.fee", |v| {
            v.parse("input.fee").map(|m| StoredMoney::from(&m))
        })?;
        change.description = clearable(input.description, |v| description(&v))?;
        change.status = required(input.status, "input.status", |v| Ok(v.into()))?;
        change.manager_id = match input.manager_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(m) => {
                let ids = staff(
                    ctx,
                    &[m],
                    &[Role::Admin, Role::Manager],
                    "input.managerId",
                    "ADMIN or MANAGER",
                )
                .await?;
                Some(ids.first().copied())
            }
        };
        if let Some(ids) = required(input.therapist_ids, "input.therapistIds", Ok)? {
            let field = "input.therapistIds";
            change.therapist_ids =
                Some(staff(ctx, &ids, &[Role::Therapist], field, "THERAPIST").await?);
        }
        Ok(model::update(ctx, &*before, change, "program.update", "duplicate").await?)
    }

    /// Deletes a programme that has no enrolments (ADMIN, MANAGER); returns its id.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn delete_disability_program(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme's global id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let before: DisabilityProgram = model::one(ctx, &id).await?;
        if ctx
            .app()?
            .db
            .enrollments()
            .any_in_program(before.record.id)
            .await?
        {
            return Err(ApiError::Conflict(
                "a programme with enrolments cannot be deleted; archive it instead".into(),
            )
            .into());
        }
        Ok(model::delete::<DisabilityProgram>(ctx, &before.record, "program.delete").await?)
    }
}

/// What a programme works on.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "super::rules::ProgramCategory")]
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
#[graphql(remote = "super::rules::ProgramStatus")]
pub enum ProgramStatus {
    /// Running and taking enrolments.
    Active,
    /// Temporarily not taking enrolments.
    Paused,
    /// Closed for good.
    Archived,
}
