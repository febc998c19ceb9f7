//! Schedules: bookings of an asset, a room or a therapist. Everyone signed
//! in books; ADMIN and MANAGER see and change all bookings, the others the
//! ones they made (and read the ones that book them). Overlaps are refused
//! by the data layer's slot claims, also when requests race.

pub use super::{ScheduleResourceType, ScheduleStatus};
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};
use bson::oid::ObjectId;
use bson::{DateTime as BsonDateTime, doc};

use super::record::{ScheduleFilter as DbFilter, ScheduleForUpdate, ScheduleRecord};
use super::rules::BookingSpan;
pub use super::{ScheduleOrder, ScheduleOrderField};
use crate::db::store::Store;
use crate::domain::{GlobalId, NodeKind, Role, text};
use crate::error::{ApiError, ApiResult};
use crate::events::ChangeKind;
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::enums::stored;
use crate::graphql::guards::{ANY_ROLE, RoleGuard};
use crate::graphql::inputs::DateTimeRange;
use crate::graphql::inputs::required;
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, connection_cost};
use crate::graphql::scalars::DateTime;
use crate::models::asset::record::AssetRecord;
use crate::models::disability_program::api::DisabilityProgram;
use crate::models::user::api::User;
use crate::models::user::record::UserRecord;

/// A booking of a resource for a span of time.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Schedule {
    #[graphql(skip)]
    pub record: Arc<ScheduleRecord>,
    /// What the booking is for.
    pub title: String,
    /// What is booked.
    pub resource_type: ScheduleResourceType,
    /// The booked resource: an Asset or User global id, or a room code.
    pub resource_id: String,
    /// Where the booking is in its life.
    pub status: ScheduleStatus,
}

impl crate::graphql::rows::Plain for Schedule {}

impl Listed for Schedule {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for Schedule {
    type Record = ScheduleRecord;
    fn wrap(record: Arc<ScheduleRecord>) -> Self {
        Self {
            title: record.title.clone(),
            resource_type: record.resource_type,
            resource_id: record.resource_id.clone(),
            status: record.status,
            record,
        }
    }
    fn record(&self) -> &ScheduleRecord {
        &self.record
    }
}

#[ComplexObject]
impl Schedule {
    /// The booking's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// When it starts.
    async fn start_date(&self) -> DateTime {
        self.record.start_date.into()
    }

    /// When it ends.
    async fn end_date(&self) -> DateTime {
        self.record.end_date.into()
    }

    /// The programme it serves, if any.
    async fn program(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DisabilityProgram>> {
        match self.record.program_id {
            Some(id) => Ok(model::load(ctx, id).await?),
            None => Ok(None),
        }
    }

    /// Who made the booking.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(model::load_ref(ctx, self.record.created_by).await?)
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

/// Which bookings `schedules` lists.
#[derive(InputObject, Default)]
pub struct ScheduleFilter {
    /// Only these kinds of resource.
    resource_type: Option<Vec<ScheduleResourceType>>,
    /// Only bookings of this resource.
    resource_id: Option<String>,
    /// Only these statuses.
    status: Option<Vec<ScheduleStatus>>,
    /// Only bookings for this programme.
    program_id: Option<ID>,
    /// Only bookings that start in this span.
    start_date: Option<DateTimeRange>,
}

/// A new booking. Times are on whole five-minute marks; at most 12 hours.
#[derive(InputObject)]
pub struct CreateScheduleInput {
    /// What the booking is for.
    title: String,
    /// What is booked.
    resource_type: ScheduleResourceType,
    /// An Asset global id (ASSET), a THERAPIST's user global id (THERAPIST),
    /// or a room code of letters, digits and `-` (ROOM).
    resource_id: String,
    /// When it starts.
    start_date: DateTime,
    /// When it ends (after the start).
    end_date: DateTime,
    /// The programme it serves.
    program_id: Option<ID>,
}

/// Changes to a booking. To move it in time, cancel it and book again.
#[derive(InputObject)]
pub struct UpdateScheduleInput {
    /// What the booking is for.
    title: MaybeUndefined<String>,
    /// The programme it serves; `null` clears it.
    program_id: MaybeUndefined<ID>,
}

fn title(value: &str) -> ApiResult<String> {
    text::required(value, 200)
        .map_err(|m| ApiError::bad_input("input.title", format!("the title {m}")))
}

/// Checks the resource and returns its stored id and, for a therapist, the user.
async fn resource(
    ctx: &Context<'_>,
    kind: super::rules::ScheduleResourceType,
    id: &str,
) -> ApiResult<(String, Option<ObjectId>)> {
    let db = &ctx.app()?.db;
    match kind {
        super::rules::ScheduleResourceType::Room => {
            let code = id.trim().to_ascii_uppercase();
            if (1..=20).contains(&code.len())
                && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                Ok((code, None))
            } else {
                Err(ApiError::bad_input(
                    "input.resourceId",
                    "a room code has 1 to 20 letters, digits and -",
                ))
            }
        }
        super::rules::ScheduleResourceType::Asset => {
            let bad = || ApiError::bad_input("input.resourceId", "no asset has this id");
            let oid = GlobalId::decode_as(id, NodeKind::Asset).ok_or_else(bad)?;
            Store::<AssetRecord>::new(db)
                .get(oid)
                .await?
                .ok_or_else(bad)?;
            Ok((model::global(NodeKind::Asset, oid).0, None))
        }
        super::rules::ScheduleResourceType::Therapist => {
            let bad = || ApiError::bad_input("input.resourceId", "this is not an active therapist");
            let oid = GlobalId::decode_as(id, NodeKind::User).ok_or_else(bad)?;
            match Store::<UserRecord>::new(db).get(oid).await? {
                Some(u) if u.active && u.role == Role::Therapist => {
                    Ok((model::global(NodeKind::User, oid).0, Some(oid)))
                }
                _ => Err(bad()),
            }
        }
    }
}

async fn program(ctx: &Context<'_>, id: &ID) -> ApiResult<ObjectId> {
    let oid = model::reference::<DisabilityProgram>(id, "input.programId")?;
    model::load::<DisabilityProgram>(ctx, oid)
        .await?
        .ok_or_else(|| ApiError::bad_input("input.programId", "no programme has this id"))?;
    Ok(oid)
}

/// The booking's maker, ADMIN or MANAGER.
fn may_change(ctx: &Context<'_>, record: &ScheduleRecord) -> ApiResult<()> {
    let principal = ctx.caller()?.principal()?;
    if principal.role.is_staff_manager() || principal.id == record.created_by {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

#[derive(Default)]
pub struct ScheduleQuery;

#[alawael_macros::connections]
#[Object]
impl ScheduleQuery {
    /// Bookings, a page at a time (ADMIN and MANAGER see all; others the
    /// ones they made or that book them).
    #[graphql(
        guard = "RoleGuard::new(ANY_ROLE)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn schedules(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which bookings to list.")] filter: Option<ScheduleFilter>,
        #[graphql(desc = "The ordering; by start time when absent.")] order_by: Option<
            ScheduleOrder,
        >,
    ) -> async_graphql::Result<Connection<Schedule>> {
        let filter = filter.unwrap_or_default();
        let range = filter.start_date.unwrap_or_default();
        let db_filter = DbFilter {
            resource_types: stored(filter.resource_type),
            resource_id: filter
                .resource_id
                .map(|r| {
                    text::required(&r, 100).map_err(|m| {
                        ApiError::bad_input("filter.resourceId", format!("the resource id {m}"))
                    })
                })
                .transpose()?,
            statuses: stored(filter.status),
            program: filter
                .program_id
                .as_ref()
                .map(|id| model::reference::<DisabilityProgram>(id, "filter.programId"))
                .transpose()?,
            starts_from: range.from.map(Into::into),
            starts_to: range.to.map(Into::into),
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

    /// One booking by id.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn schedule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking's global id.")] id: ID,
    ) -> async_graphql::Result<Schedule> {
        Ok(model::one(ctx, &id).await?)
    }
}

#[derive(Default)]
pub struct ScheduleMutation;

#[Object]
impl ScheduleMutation {
    /// Books a resource (anyone signed in). `CONFLICT` when another
    /// SCHEDULED booking of the same resource overlaps.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn create_schedule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to book, and when.")] input: CreateScheduleInput,
    ) -> async_graphql::Result<Schedule> {
        let span = BookingSpan::new(input.start_date.0, input.end_date.0)
            .map_err(|m| ApiError::bad_input("input.endDate", m))?;
        let kind: super::rules::ScheduleResourceType = input.resource_type;
        let (resource_id, booked_user_id) = resource(ctx, kind, &input.resource_id).await?;
        let program_id = match &input.program_id {
            Some(id) => Some(program(ctx, id).await?),
            None => None,
        };
        let now = BsonDateTime::now();
        let record = ScheduleRecord {
            id: ObjectId::new(),
            title: title(&input.title)?,
            resource_type: kind,
            resource_id,
            booked_user_id,
            start_date: input.start_date.into(),
            end_date: input.end_date.into(),
            status: super::rules::ScheduleStatus::Scheduled,
            program_id,
            created_by: ctx.caller()?.principal()?.id,
            created_at: now,
            updated_at: now,
        };
        let schedules = ctx.app()?.db.schedules();
        let pending = model::intend::<ScheduleRecord>(
            ctx,
            ChangeKind::Created,
            record.id,
            None,
            None,
            "schedule.create",
        )
        .await?;
        let (pending, ()) = model::attempt(ctx, pending, async {
            if schedules.book(&record, &span).await? {
                Ok(())
            } else {
                Err(ApiError::Conflict(
                    "this resource is already booked for part of that time".into(),
                ))
            }
        })
        .await?;
        Ok(
            model::created_with_undo(ctx, pending, record, |id| async move {
                schedules.release(id).await
            })
            .await?,
        )
    }

    /// Changes a booking's title or programme (its maker, ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn update_schedule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking's global id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateScheduleInput,
    ) -> async_graphql::Result<Schedule> {
        let before: Schedule = model::one(ctx, &id).await?;
        let before = before.record;
        may_change(ctx, &before)?;
        let title = required(input.title, "input.title", |v| title(&v))?;
        let program_id = match input.program_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(p) => Some(Some(program(ctx, &p).await?)),
        };
        let change = ScheduleForUpdate {
            title,
            program_id,
            ..ScheduleForUpdate::default()
        };
        Ok(model::update(ctx, &*before, change, "schedule.update", "duplicate").await?)
    }

    /// Cancels a SCHEDULED booking and frees its time (its maker, ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn cancel_schedule(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking's global id.")] id: ID,
    ) -> async_graphql::Result<Schedule> {
        let before: Schedule = model::one(ctx, &id).await?;
        let before = before.record;
        may_change(ctx, &before)?;
        if before.status != super::rules::ScheduleStatus::Scheduled {
            return Err(
                ApiError::Conflict("only a SCHEDULED booking can be cancelled".into()).into(),
            );
        }
        let change = ScheduleForUpdate {
            status: Some(super::rules::ScheduleStatus::Cancelled),
            ..ScheduleForUpdate::default()
        };
        let cancelled =
            model::update::<Schedule>(ctx, &*before, change, "schedule.cancel", "duplicate")
                .await?;
        ctx.app()?.db.schedules().release(before.id).await?;
        Ok(cancelled)
    }
}
