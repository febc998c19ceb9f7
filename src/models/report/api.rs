//! Reports computed in the background: `requestReport` (ADMIN, MANAGER;
//! AUDIT_SUMMARY only ADMIN), `report`/`reports` (ADMIN all, MANAGER their
//! own), and `reportUpdated`, which streams a report's status changes.

pub use super::{ReportStatus, ReportType};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{
    ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject, Subscription,
};
use bson::Bson;
use futures::Stream;

use super::record::{ReportFilter as DbFilter, ReportRecord};
use super::rules as reports;
pub use super::{ReportOrder, ReportOrderField};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::enums::stored;
use crate::graphql::guards::{MANAGERS, RoleGuard};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, connection_cost};
use crate::graphql::scalars::DateTime;
use crate::models::user::api::User;

/// The longest parameter object a request may carry, as JSON text.
const MAX_PARAMETERS_BYTES: usize = 4096;

/// A report computed in the background. It is QUEUED when requested,
/// RUNNING while a worker computes it, then READY with its `result` or
/// FAILED with its `error`. Results by type (ids are global ids, instants
/// RFC 3339 UTC, money in minor units per currency):
///
/// - ASSET_INVENTORY `{category?}` → `{category, count, value: [{currency,
///   amountMinor}], groups: [{category, status, count, value}]}`
/// - PROGRAM_OCCUPANCY `{programId?}` → `{programs: [{programId, name, status,
///   capacity, pending, active, occupied, occupancy}], totals: {capacity,
///   pending, active, occupied, occupancy}}` (occupancy = occupied / capacity)
/// - BENEFICIARY_PROGRESS `{beneficiaryId, from?, to?}` → `{beneficiaryId, from,
///   to, sessions: {count, minutes, byAttendance: [{attendance, count,
///   minutes}]}, progress: {scoredSessions, averageScore, first: {startedAt,
///   score}, latest: [{startedAt, score}] (5, newest first)}, enrollments:
///   [{enrollmentId, programId, programName, therapistId, status, startDate,
///   endDate, goalsTotal, goalsAchieved, goals: [{description, targetDate,
///   achieved}]}]}`
/// - THERAPIST_WORKLOAD `{from, to}` → `{from, to, therapists: [{therapistId,
///   name, sessions, attendedSessions, minutes, attendedMinutes,
///   activeEnrollments}], totals}` (active enrolments as of now)
/// - AUDIT_SUMMARY `{from, to}` → `{from, to, entries, byAction: [{action,
///   count}], byEntityType: [{entityType, count}]}`
///
/// Windows are `from` inclusive, `to` exclusive, RFC 3339 date-times.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Report {
    #[graphql(skip)]
    pub record: Arc<ReportRecord>,
    /// What the report computes.
    #[graphql(name = "type")]
    pub kind: ReportType,
    /// Where the request is in its life.
    pub status: ReportStatus,
    /// Why it failed (FAILED only).
    pub error: Option<String>,
    /// How many times a worker has taken it up.
    pub attempts: i32,
}

impl crate::graphql::rows::Plain for Report {}

impl Listed for Report {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for Report {
    type Record = ReportRecord;
    fn wrap(record: Arc<ReportRecord>) -> Self {
        Self {
            kind: record.kind,
            status: record.status,
            error: record.error.clone(),
            attempts: record.attempts,
            record,
        }
    }
    fn record(&self) -> &ReportRecord {
        &self.record
    }
}

#[ComplexObject]
impl Report {
    /// The report's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// The parameters as requested (a JSON object).
    async fn parameters(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.record.parameters).unwrap_or_default())
    }

    /// What was computed (READY only); its shape depends on `type`, see `Report`.
    async fn result(&self) -> Option<Json<serde_json::Value>> {
        self.record
            .result
            .clone()
            .map(|r| Json(Bson::Document(r).into_relaxed_extjson()))
    }

    /// Who asked for it.
    async fn requested_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(model::load_ref(ctx, self.record.requested_by).await?)
    }

    /// When it was requested.
    async fn created_at(&self) -> DateTime {
        self.record.created_at.into()
    }

    /// When its status last changed.
    async fn updated_at(&self) -> DateTime {
        self.record.updated_at.into()
    }

    /// When a worker last started computing it.
    async fn started_at(&self) -> Option<DateTime> {
        self.record.started_at.map(Into::into)
    }

    /// When its result was stored (READY only).
    async fn generated_at(&self) -> Option<DateTime> {
        self.record.generated_at.map(Into::into)
    }
}

/// Which reports `reports` lists.
#[derive(InputObject, Default)]
pub struct ReportFilter {
    /// Only these types.
    #[graphql(name = "type")]
    kind: Option<Vec<ReportType>>,
    /// Only these statuses.
    status: Option<Vec<ReportStatus>>,
}

/// The parameters as stored: a JSON object's text, bounded in size.
fn parameters_text(parameters: Option<Json<serde_json::Value>>) -> ApiResult<String> {
    let value = match parameters {
        None | Some(Json(serde_json::Value::Null)) => serde_json::json!({}),
        Some(Json(value @ serde_json::Value::Object(_))) => value,
        Some(_) => {
            return Err(ApiError::bad_input(
                "parameters",
                "the parameters are a JSON object",
            ));
        }
    };
    let text = value.to_string();
    if text.len() > MAX_PARAMETERS_BYTES {
        return Err(ApiError::bad_input(
            "parameters",
            format!("the parameters are at most {MAX_PARAMETERS_BYTES} bytes of JSON"),
        ));
    }
    Ok(text)
}

#[derive(Default)]
pub struct ReportQuery;

#[alawael_macros::connections]
#[Object]
impl ReportQuery {
    /// Reports, a page at a time (ADMIN all, MANAGER the ones they requested).
    #[graphql(
        guard = "RoleGuard::new(MANAGERS)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn reports(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which reports to list.")] filter: Option<ReportFilter>,
        #[graphql(desc = "The ordering; by request time when absent.")] order_by: Option<
            ReportOrder,
        >,
    ) -> async_graphql::Result<Connection<Report>> {
        let filter = filter.unwrap_or_default();
        let filter = DbFilter {
            kinds: stored(filter.kind),
            statuses: stored(filter.status),
        };
        let args = page;
        Ok(model::list(
            ctx,
            args,
            filter.to_document()?,
            order_by.map(|o| (o.field, o.direction)),
        )
        .await?)
    }

    /// One report by id (ADMIN, or the MANAGER who requested it).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn report(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The report's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Report>> {
        Ok(Some(model::one(ctx, &id).await?))
    }
}

#[derive(Default)]
pub struct ReportMutation;

#[Object]
impl ReportMutation {
    /// Asks for a report (ADMIN, MANAGER; AUDIT_SUMMARY only ADMIN). It is
    /// QUEUED and computed in the background: follow it with
    /// `reportUpdated` or `report`. Parameters are checked by the worker;
    /// ones that do not fit make the report FAILED with the reason.
    /// Audited as `report.request`.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn request_report(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "type", desc = "What to compute.")] kind: ReportType,
        #[graphql(desc = "A JSON object; the keys each type takes are listed on `Report`.")]
        parameters: Option<Json<serde_json::Value>>,
    ) -> async_graphql::Result<Report> {
        let principal = ctx.caller()?.principal()?;
        let kind: reports::ReportType = kind;
        if kind.admin_only() && principal.role != Role::Admin {
            return Err(ApiError::Forbidden.into());
        }
        let record = ReportRecord::new(kind, parameters_text(parameters)?, principal.id);
        Ok(model::insert(ctx, record, "report.request", "duplicate").await?)
    }
}

#[derive(Default)]
pub struct ReportSubscription;

#[Subscription]
impl ReportSubscription {
    /// A report as it is now, then each change of its status until it is
    /// READY or FAILED, when the stream completes (its requester, or ADMIN).
    /// Changes made by a worker in another process arrive within the poll
    /// interval.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn report_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The report's global id.")] id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Report> + use<>> {
        let app = ctx.app()?;
        // Listen before reading, so no change falls between the two.
        let mut receiver = app.bus.subscribe();
        let id = model::decode::<Report>(&id)?;
        let scoped = ctx.access()?.of::<ReportRecord>().await?;
        let current = scoped.get(id).await?.ok_or(ApiError::NotFound)?;
        let poll = app.settings.reports.poll_interval();
        Ok(async_stream::stream! {
            let mut last = Arc::new(current);
            yield Report::wrap(last.clone());
            let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
            tick.tick().await;
            while !last.status.is_final() {
                let next: Option<Arc<ReportRecord>> = tokio::select! {
                    biased;
                    event = receiver.recv() => match event {
                        Ok(Event::Record { entity, id: changed, snapshot, .. }) if &*entity == "Report" && changed == id => {
                            snapshot.get::<ReportRecord>()
                        }
                        Ok(_) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "a slow subscriber missed report events");
                            None
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    // A backstop for events lost (no Redis between instances, a lagging receiver): read the row.
                    _ = tick.tick() => match scoped.get(id).await {
                        Ok(Some(row)) => Some(Arc::new(row)),
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "a report could not be re-read for its subscriber");
                            None
                        }
                    },
                };
                if let Some(next) = next
                    && moved_on(&last, &next)
                {
                    last = next;
                    yield Report::wrap(last.clone());
                }
            }
        })
    }
}

/// Whether `next` is a later state than `last` (events and re-reads may
/// repeat a state, or arrive after a newer one).
fn moved_on(last: &ReportRecord, next: &ReportRecord) -> bool {
    use super::rules::ReportStatus as S;
    let stamp = |r: &ReportRecord| {
        let rank = match r.status {
            S::Queued => 0,
            S::Running => 1,
            S::Ready | S::Failed => 2,
        };
        (r.updated_at, r.attempts, rank)
    };
    stamp(next) > stamp(last) && (next.status != last.status || next.attempts != last.attempts)
}
