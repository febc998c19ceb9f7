//! Therapy sessions: recorded by the enrolment's therapist (or ADMIN) on an
//! ACTIVE enrolment; read by ADMIN, MANAGER and their therapist. `notes`
//! never enter the audit log.

pub use super::Attendance;
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};
use bson::oid::ObjectId;
use bson::{DateTime as BsonDateTime, doc};

use super::record::{SessionFilter as DbFilter, TherapySessionForUpdate, TherapySessionRecord};
pub use super::{TherapySessionOrder, TherapySessionOrderField};
use crate::domain::{Role, text};
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::enums::stored;
use crate::graphql::guards::{ADMIN, CLINICAL, RoleGuard};
use crate::graphql::inputs::DateTimeRange;
use crate::graphql::inputs::{clearable, required};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, OrderDirection, PageArgs, connection_cost};
use crate::graphql::scalars::DateTime;
use crate::graphql::sealed;
use crate::models::beneficiary::api::Beneficiary;
use crate::models::enrollment::api::Enrollment;
use crate::models::enrollment::rules::EnrollmentStatus;
use crate::models::schedule::api::Schedule;
use crate::models::user::api::User;

/// One therapy session of an enrolment.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct TherapySession {
    #[graphql(skip)]
    pub record: Arc<TherapySessionRecord>,
    /// How long it lasted, in minutes.
    pub duration_minutes: i32,
    /// Whether the beneficiary came.
    pub attendance: Attendance,
    /// Progress the therapist scored, 0 to 100.
    pub progress_score: Option<i32>,
}

impl crate::graphql::rows::Plain for TherapySession {}

impl Listed for TherapySession {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for TherapySession {
    type Record = TherapySessionRecord;
    fn wrap(record: Arc<TherapySessionRecord>) -> Self {
        Self {
            duration_minutes: record.duration_minutes,
            attendance: record.attendance,
            progress_score: record.progress_score,
            record,
        }
    }
    fn record(&self) -> &TherapySessionRecord {
        &self.record
    }
}

#[ComplexObject]
impl TherapySession {
    /// The session's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// When it started.
    async fn started_at(&self) -> DateTime {
        self.record.started_at.into()
    }

    /// The therapist's notes (ADMIN, MANAGER and the session's therapist).
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn notes(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(sealed::open(ctx, self.record.notes.as_ref()).await?)
    }

    /// The enrolment it belongs to.
    async fn enrollment(&self, ctx: &Context<'_>) -> async_graphql::Result<Enrollment> {
        Ok(model::load_ref(ctx, self.record.enrollment_id).await?)
    }

    /// Who attended.
    async fn beneficiary(&self, ctx: &Context<'_>) -> async_graphql::Result<Beneficiary> {
        Ok(model::load_ref(ctx, self.record.beneficiary_id).await?)
    }

    /// Who ran it.
    async fn therapist(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(model::load_ref(ctx, self.record.therapist_id).await?)
    }

    /// The booking it took place in, when it was booked (and the caller may see it).
    async fn schedule(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Schedule>> {
        match self.record.schedule_id {
            Some(id) => Ok(model::load(ctx, id).await?),
            None => Ok(None),
        }
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

/// Which sessions a list shows.
#[derive(InputObject, Default)]
pub struct TherapySessionFilter {
    /// Only this enrolment's.
    enrollment_id: Option<ID>,
    /// Only this beneficiary's.
    beneficiary_id: Option<ID>,
    /// Only this therapist's.
    therapist_id: Option<ID>,
    /// Only these attendances.
    attendance: Option<Vec<Attendance>>,
    /// Only sessions that started in this span.
    started_at: Option<DateTimeRange>,
}

impl TherapySessionFilter {
    pub fn into_db(self) -> ApiResult<DbFilter> {
        let range = self.started_at.unwrap_or_default();
        Ok(DbFilter {
            enrollment: self
                .enrollment_id
                .as_ref()
                .map(|id| model::reference::<Enrollment>(id, "filter.enrollmentId"))
                .transpose()?,
            beneficiary: self
                .beneficiary_id
                .as_ref()
                .map(|id| model::reference::<Beneficiary>(id, "filter.beneficiaryId"))
                .transpose()?,
            therapist: self
                .therapist_id
                .as_ref()
                .map(|id| model::reference::<User>(id, "filter.therapistId"))
                .transpose()?,
            attendance: stored(self.attendance),
            started_from: range.from.map(Into::into),
            started_to: range.to.map(Into::into),
        })
    }
}

impl TherapySessionOrder {
    pub fn pair(self) -> (TherapySessionOrderField, OrderDirection) {
        (self.field, self.direction)
    }
}

/// A parent's therapy sessions (`TherapySession` rows whose `parent_field` names `parent`),
/// batched across every parent at this level of the query.
pub async fn sessions_of(
    ctx: &Context<'_>,
    parent_field: &'static str,
    parent: ObjectId,
    args: PageArgs,
    filter: Option<TherapySessionFilter>,
    order: Option<TherapySessionOrder>,
) -> ApiResult<Connection<TherapySession>> {
    let filter = filter.unwrap_or_default().into_db()?.to_document()?;
    model::children(
        ctx,
        parent_field,
        parent,
        args,
        filter,
        order.map(TherapySessionOrder::pair),
    )
    .await
}

/// A session as the therapist records it.
#[derive(InputObject)]
pub struct RecordTherapySessionInput {
    /// The enrolment (ACTIVE, and run by the caller unless ADMIN).
    enrollment_id: ID,
    /// When it started.
    started_at: DateTime,
    /// How long it lasted (1 to 480 minutes).
    duration_minutes: i32,
    /// Whether the beneficiary came.
    attendance: Attendance,
    /// The therapist's notes.
    notes: Option<String>,
    /// Progress, 0 to 100.
    progress_score: Option<i32>,
    /// The booking it took place in.
    schedule_id: Option<ID>,
}

/// Changes to a session: absent fields stay, `null` clears the optional ones.
#[derive(InputObject)]
pub struct UpdateTherapySessionInput {
    /// When it started.
    started_at: MaybeUndefined<DateTime>,
    /// How long it lasted.
    duration_minutes: MaybeUndefined<i32>,
    /// Whether the beneficiary came.
    attendance: MaybeUndefined<Attendance>,
    /// The therapist's notes; `null` clears them.
    notes: MaybeUndefined<String>,
    /// Progress, 0 to 100; `null` clears it.
    progress_score: MaybeUndefined<i32>,
}

fn notes(value: &str) -> ApiResult<String> {
    text::optional(value, 10_000)
        .map_err(|m| ApiError::bad_input("input.notes", format!("the notes {m}")))
}

fn score(value: i32) -> ApiResult<i32> {
    super::rules::progress_score(value).map_err(|m| ApiError::bad_input("input.progressScore", m))
}

fn minutes(value: i32) -> ApiResult<i32> {
    super::rules::session_minutes(value)
        .map_err(|m| ApiError::bad_input("input.durationMinutes", m))
}

/// ADMIN, or the therapist of the session's enrolment.
fn may_write(ctx: &Context<'_>, therapist: ObjectId) -> ApiResult<()> {
    let principal = ctx.caller()?.principal()?;
    if principal.role == Role::Admin || principal.id == therapist {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

#[derive(Default)]
pub struct TherapySessionQuery;

#[alawael_macros::connections]
#[Object]
impl TherapySessionQuery {
    /// Therapy sessions, a page at a time (ADMIN, MANAGER; a THERAPIST sees their own).
    #[graphql(
        guard = "RoleGuard::new(CLINICAL)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn therapy_sessions(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which sessions to list.")] filter: Option<TherapySessionFilter>,
        #[graphql(desc = "The ordering; by start time when absent.")] order_by: Option<
            TherapySessionOrder,
        >,
    ) -> async_graphql::Result<Connection<TherapySession>> {
        let filter = filter.unwrap_or_default().into_db()?.to_document()?;
        let args = page;
        Ok(model::list(ctx, args, filter, order_by.map(TherapySessionOrder::pair)).await?)
    }

    /// One session by id.
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn therapy_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session's global id.")] id: ID,
    ) -> async_graphql::Result<TherapySession> {
        Ok(model::one(ctx, &id).await?)
    }
}

#[derive(Default)]
pub struct TherapySessionMutation;

#[Object]
impl TherapySessionMutation {
    /// Records a session of an ACTIVE enrolment (its THERAPIST, or ADMIN).
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn record_therapy_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What happened.")] input: RecordTherapySessionInput,
    ) -> async_graphql::Result<TherapySession> {
        let enrollment_id =
            model::reference::<Enrollment>(&input.enrollment_id, "input.enrollmentId")?;
        let enrollment = model::load::<Enrollment>(ctx, enrollment_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let enrollment = enrollment.record;
        may_write(ctx, enrollment.therapist_id)?;
        if enrollment.status != EnrollmentStatus::Active {
            return Err(ApiError::Conflict(
                "sessions are recorded on ACTIVE enrolments only".into(),
            )
            .into());
        }
        let schedule_id = match &input.schedule_id {
            Some(id) => {
                let sid = model::reference::<Schedule>(id, "input.scheduleId")?;
                model::load::<Schedule>(ctx, sid).await?.ok_or_else(|| {
                    ApiError::bad_input("input.scheduleId", "no booking you can see has this id")
                })?;
                Some(sid)
            }
            None => None,
        };
        let notes = match input.notes.as_deref().map(notes).transpose()? {
            Some(text) => Some(
                sealed::existing_key(ctx, enrollment.beneficiary_id)
                    .await?
                    .seal(&text),
            ),
            None => None,
        };
        let now = BsonDateTime::now();
        let record = TherapySessionRecord {
            id: ObjectId::new(),
            enrollment_id,
            beneficiary_id: enrollment.beneficiary_id,
            therapist_id: enrollment.therapist_id,
            program_id: enrollment.program_id,
            schedule_id,
            started_at: input.started_at.into(),
            duration_minutes: minutes(input.duration_minutes)?,
            attendance: input.attendance,
            notes,
            progress_score: input.progress_score.map(score).transpose()?,
            created_at: now,
            updated_at: now,
        };
        Ok(model::insert(ctx, record, "session.record", "duplicate").await?)
    }

    /// Corrects a session (its THERAPIST, or ADMIN).
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn update_therapy_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session's global id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateTherapySessionInput,
    ) -> async_graphql::Result<TherapySession> {
        let before: TherapySession = model::one(ctx, &id).await?;
        let before = before.record;
        may_write(ctx, before.therapist_id)?;
        let started_at = required(input.started_at, "input.startedAt", |v| Ok(v.into()))?;
        let duration_minutes = required(input.duration_minutes, "input.durationMinutes", minutes)?;
        let attendance = required(input.attendance, "input.attendance", Ok)?;
        let notes = match clearable(input.notes, |v| notes(&v))? {
            Some(Some(text)) => Some(Some(
                sealed::existing_key(ctx, before.beneficiary_id)
                    .await?
                    .seal(&text),
            )),
            Some(None) => Some(None),
            None => None,
        };
        let change = TherapySessionForUpdate {
            started_at,
            duration_minutes,
            attendance,
            notes,
            progress_score: clearable(input.progress_score, score)?,
        };
        Ok(model::update(ctx, &*before, change, "session.update", "duplicate").await?)
    }

    /// Deletes a session recorded in error (ADMIN); returns its id.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn delete_therapy_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session's global id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let before: TherapySession = model::one(ctx, &id).await?;
        Ok(model::delete::<TherapySession>(ctx, &before.record, "session.delete").await?)
    }
}
