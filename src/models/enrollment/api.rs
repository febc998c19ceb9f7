//! Enrolments: a beneficiary in a programme with a therapist. ADMIN and
//! MANAGER enrol and move them through their statuses; a THERAPIST reads
//! their own; USER none. Capacity, one open enrolment per beneficiary and
//! programme, and status moves are decided by the data layer's claims.

pub use super::EnrollmentStatus;
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};
use bson::oid::ObjectId;
use bson::{DateTime as BsonDateTime, doc};

use super::record::{
    EnrollmentFilter as DbFilter, EnrollmentForUpdate, EnrollmentRecord, Goal as DbGoal, open_key,
};
pub use super::{EnrollmentOrder, EnrollmentOrderField};
use crate::db::store::Store;
use crate::domain::{Role, text};
use crate::error::{ApiError, ApiResult};
use crate::events::ChangeKind;
use crate::graphql::context::ContextExt;
use crate::graphql::enums::stored;
use crate::graphql::guards::{CLINICAL, MANAGERS, RoleGuard};
use crate::graphql::inputs::clearable;
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, OrderDirection, PageArgs, connection_cost};
use crate::graphql::scalars::{Date, DateTime};
use crate::models::beneficiary::api::Beneficiary;
use crate::models::disability_program::ProgramStatus;
use crate::models::disability_program::api::DisabilityProgram;
use crate::models::user::api::User;
use crate::models::user::record::UserRecord;

/// A beneficiary's place in a programme, with their therapist.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Enrollment {
    #[graphql(skip)]
    pub record: Arc<EnrollmentRecord>,
    /// Where the enrolment is in its life.
    pub status: EnrollmentStatus,
}

impl crate::graphql::rows::Plain for Enrollment {}

impl Listed for Enrollment {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for Enrollment {
    type Record = EnrollmentRecord;
    fn wrap(record: Arc<EnrollmentRecord>) -> Self {
        Self {
            status: record.status,
            record,
        }
    }
    fn record(&self) -> &EnrollmentRecord {
        &self.record
    }
}

/// One goal of an enrolment.
#[derive(SimpleObject, Clone)]
pub struct Goal {
    /// What the beneficiary works towards.
    pub description: String,
    /// When it should be reached.
    pub target_date: Option<Date>,
    /// Whether it has been reached.
    pub achieved: bool,
}

#[ComplexObject]
impl Enrollment {
    /// The enrolment's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// The first day.
    async fn start_date(&self) -> Option<Date> {
        Date::from_stored(&self.record.start_date)
    }

    /// The last day, once completed or withdrawn.
    async fn end_date(&self) -> Option<Date> {
        self.record.end_date.as_deref().and_then(Date::from_stored)
    }

    /// What the beneficiary works towards.
    async fn goals(&self) -> Vec<Goal> {
        self.record
            .goals
            .iter()
            .map(|g| Goal {
                description: g.description.clone(),
                target_date: g.target_date.as_deref().and_then(Date::from_stored),
                achieved: g.achieved,
            })
            .collect()
    }

    /// Who is enrolled.
    async fn beneficiary(&self, ctx: &Context<'_>) -> async_graphql::Result<Beneficiary> {
        Ok(model::load_ref(ctx, self.record.beneficiary_id).await?)
    }

    /// In which programme.
    async fn program(&self, ctx: &Context<'_>) -> async_graphql::Result<DisabilityProgram> {
        Ok(model::load_ref(ctx, self.record.program_id).await?)
    }

    /// The therapist who runs it.
    async fn therapist(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(model::load_ref(ctx, self.record.therapist_id).await?)
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

/// Which enrolments a list shows.
#[derive(InputObject, Default)]
pub struct EnrollmentFilter {
    /// Only these statuses.
    status: Option<Vec<EnrollmentStatus>>,
    /// Only this beneficiary's.
    beneficiary_id: Option<ID>,
    /// Only this programme's.
    program_id: Option<ID>,
    /// Only this therapist's.
    therapist_id: Option<ID>,
}

impl EnrollmentFilter {
    pub fn into_db(self) -> ApiResult<DbFilter> {
        Ok(DbFilter {
            statuses: stored(self.status),
            beneficiary: self
                .beneficiary_id
                .as_ref()
                .map(|id| model::reference::<Beneficiary>(id, "filter.beneficiaryId"))
                .transpose()?,
            program: self
                .program_id
                .as_ref()
                .map(|id| model::reference::<DisabilityProgram>(id, "filter.programId"))
                .transpose()?,
            therapist: self
                .therapist_id
                .as_ref()
                .map(|id| model::reference::<User>(id, "filter.therapistId"))
                .transpose()?,
        })
    }
}

impl EnrollmentOrder {
    pub fn pair(self) -> (EnrollmentOrderField, OrderDirection) {
        (self.field, self.direction)
    }
}

/// A parent's enrolments (`Enrollment` rows whose `parent_field` names `parent`),
/// batched across every parent at this level of the query.
pub async fn enrollments_of(
    ctx: &Context<'_>,
    parent_field: &'static str,
    parent: ObjectId,
    args: PageArgs,
    filter: Option<EnrollmentFilter>,
    order: Option<EnrollmentOrder>,
) -> ApiResult<Connection<Enrollment>> {
    let filter = filter.unwrap_or_default().into_db()?.to_document()?;
    model::children(
        ctx,
        parent_field,
        parent,
        args,
        filter,
        order.map(EnrollmentOrder::pair),
    )
    .await
}

/// A goal as entered.
#[derive(InputObject)]
pub struct GoalInput {
    /// What the beneficiary works towards.
    description: String,
    /// When it should be reached.
    target_date: Option<Date>,
    /// Whether it has been reached; false when absent.
    achieved: Option<bool>,
}

/// A new enrolment; it starts PENDING and holds a place.
#[derive(InputObject)]
pub struct EnrollBeneficiaryInput {
    /// Who is enrolled.
    beneficiary_id: ID,
    /// In which programme (it must be ACTIVE and have a free place).
    program_id: ID,
    /// The therapist who runs it (an active THERAPIST).
    therapist_id: ID,
    /// The first day.
    start_date: Date,
    /// What the beneficiary works towards (at most 20).
    goals: Option<Vec<GoalInput>>,
}

/// Changes to an enrolment: absent fields stay.
#[derive(InputObject)]
pub struct UpdateEnrollmentInput {
    /// Another therapist (an active THERAPIST).
    therapist_id: MaybeUndefined<ID>,
    /// The goals (replaces the list; `null` clears it).
    goals: MaybeUndefined<Vec<GoalInput>>,
}

fn goals(input: Vec<GoalInput>) -> ApiResult<Vec<DbGoal>> {
    if input.len() > 20 {
        return Err(ApiError::bad_input("input.goals", "at most 20 goals"));
    }
    input
        .into_iter()
        .map(|g| {
            Ok(DbGoal {
                description: text::required(&g.description, 500).map_err(|m| {
                    ApiError::bad_input("input.goals.description", format!("a goal {m}"))
                })?,
                target_date: g.target_date.map(Date::to_stored),
                achieved: g.achieved.unwrap_or(false),
            })
        })
        .collect()
}

/// An active THERAPIST by global id, else `BAD_USER_INPUT`.
async fn therapist(ctx: &Context<'_>, id: &ID) -> ApiResult<ObjectId> {
    let bad = || ApiError::bad_input("input.therapistId", "this is not an active therapist");
    let oid = model::reference::<User>(id, "input.therapistId").map_err(|_| bad())?;
    match Store::<UserRecord>::new(&ctx.app()?.db).get(oid).await? {
        Some(u) if u.active && u.role == Role::Therapist => Ok(oid),
        _ => Err(bad()),
    }
}

#[derive(Default)]
pub struct EnrollmentQuery;

#[alawael_macros::connections]
#[Object]
impl EnrollmentQuery {
    /// Enrolments, a page at a time (ADMIN, MANAGER; a THERAPIST sees their own).
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
        let filter = filter.unwrap_or_default().into_db()?.to_document()?;
        let args = page;
        Ok(model::list(ctx, args, filter, order_by.map(EnrollmentOrder::pair)).await?)
    }

    /// One enrolment by id.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn enrollment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The enrolment's global id.")] id: ID,
    ) -> async_graphql::Result<Enrollment> {
        Ok(model::one(ctx, &id).await?)
    }
}

#[derive(Default)]
pub struct EnrollmentMutation;

#[Object]
impl EnrollmentMutation {
    /// Enrols a beneficiary in a programme (ADMIN, MANAGER). The enrolment
    /// starts PENDING. `CONFLICT` when the programme is full, not ACTIVE, or
    /// the beneficiary already has a PENDING or ACTIVE enrolment in it.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn enroll_beneficiary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Who, where, with whom, from when.")] input: EnrollBeneficiaryInput,
    ) -> async_graphql::Result<Enrollment> {
        let beneficiary_id =
            model::reference::<Beneficiary>(&input.beneficiary_id, "input.beneficiaryId")?;
        let program_id =
            model::reference::<DisabilityProgram>(&input.program_id, "input.programId")?;
        let beneficiary = model::load::<Beneficiary>(ctx, beneficiary_id)
            .await?
            .ok_or_else(|| {
                ApiError::bad_input("input.beneficiaryId", "no beneficiary has this id")
            })?;
        if beneficiary.record.erased_at.is_some() {
            return Err(ApiError::Conflict("this person's data was erased".into()).into());
        }
        let program = model::load::<DisabilityProgram>(ctx, program_id)
            .await?
            .ok_or_else(|| ApiError::bad_input("input.programId", "no programme has this id"))?;
        if program.record.status != ProgramStatus::Active {
            return Err(
                ApiError::Conflict("this programme is not taking enrolments".into()).into(),
            );
        }
        let therapist_id = therapist(ctx, &input.therapist_id).await?;
        let now = BsonDateTime::now();
        let record = EnrollmentRecord {
            id: ObjectId::new(),
            beneficiary_id,
            program_id,
            therapist_id,
            status: super::rules::EnrollmentStatus::Pending,
            start_date: input.start_date.to_stored(),
            end_date: None,
            goals: goals(input.goals.unwrap_or_default())?,
            active_key: open_key(beneficiary_id, program_id),
            created_at: now,
            updated_at: now,
        };
        let enrollments = ctx.app()?.db.enrollments();
        let pending = model::intend::<EnrollmentRecord>(
            ctx,
            ChangeKind::Created,
            record.id,
            None,
            None,
            "enrollment.create",
        )
        .await?;
        let (pending, ()) = model::attempt(ctx, pending, async {
            match enrollments.enroll(&record, program.record.capacity).await? {
                Ok(()) => Ok(()),
                Err(refusal) => Err(ApiError::Conflict(refusal.message())),
            }
        })
        .await?;
        Ok(
            model::created_with_undo(ctx, pending, record, |id| async move {
                enrollments.release_seat(id).await
            })
            .await?,
        )
    }

    /// Moves an enrolment to another status (ADMIN, MANAGER): PENDING →
    /// ACTIVE → COMPLETED, or PENDING/ACTIVE → WITHDRAWN; anything else is
    /// `CONFLICT`. Completing or withdrawing frees the place.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn set_enrollment_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The enrolment's global id.")] id: ID,
        #[graphql(desc = "The new status.")] status: EnrollmentStatus,
    ) -> async_graphql::Result<Enrollment> {
        let before: Enrollment = model::one(ctx, &id).await?;
        let before = before.record;
        let to: super::rules::EnrollmentStatus = status;
        if !before.status.may_move_to(to) {
            return Err(ApiError::Conflict(format!(
                "an enrolment cannot move from {} to {}",
                format!("{:?}", before.status).to_uppercase(),
                format!("{to:?}").to_uppercase()
            ))
            .into());
        }
        let enrollments = ctx.app()?.db.enrollments();
        if let Err(refusal) = enrollments.claim_move(&before, to).await? {
            return Err(ApiError::Conflict(refusal.message()).into());
        }
        let action = match to {
            super::rules::EnrollmentStatus::Active => "enrollment.activate",
            super::rules::EnrollmentStatus::Completed => "enrollment.complete",
            super::rules::EnrollmentStatus::Withdrawn => "enrollment.withdraw",
            super::rules::EnrollmentStatus::Pending => "enrollment.update",
        };
        let stamp = model::stamp();
        let pending = model::intend(
            ctx,
            ChangeKind::Updated,
            before.id,
            Some(&*before),
            Some(stamp),
            action,
        )
        .await?;
        let (pending, after) = model::attempt(ctx, pending, async {
            enrollments
                .apply_move(&before, to, stamp)
                .await?
                .ok_or(ApiError::NotFound)
        })
        .await?;
        let moved = model::changed::<Enrollment>(
            ctx,
            pending,
            &before,
            after,
            enrollments.undo_move(&before),
        )
        .await?;
        if !to.holds_place() {
            enrollments.release_seat(before.id).await?;
        }
        Ok(moved)
    }

    /// Changes an enrolment's therapist or goals (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn update_enrollment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The enrolment's global id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateEnrollmentInput,
    ) -> async_graphql::Result<Enrollment> {
        let before: Enrollment = model::one(ctx, &id).await?;
        let before = before.record;
        let therapist_id = match input.therapist_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => {
                return Err(ApiError::bad_input(
                    "input.therapistId",
                    "`input.therapistId` cannot be cleared",
                )
                .into());
            }
            MaybeUndefined::Value(t) => Some(therapist(ctx, &t).await?),
        };
        let change = EnrollmentForUpdate {
            therapist_id,
            // `null` clears the goals.
            goals: clearable(input.goals, goals)?.map(Option::unwrap_or_default),
        };
        Ok(model::update(ctx, &*before, change, "enrollment.update", "duplicate").await?)
    }
}
