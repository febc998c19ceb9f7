//! Analytics: the `AnalyticsEvent` type, `recordEvent` (anyone signed in,
//! rate-limited per account), `analyticsEvents` and `analyticsSummary`
//! (ADMIN, MANAGER), and the `analyticsEvents` subscription. Domain
//! changes raise their own events (see the README's list of event names).

use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription,
};
use bson::oid::ObjectId;
use bson::{Bson, Document};
use futures::Stream;

use super::record::{Analytics, AnalyticsEventRecord, AnalyticsFilter as DbFilter, Interval};
use super::rules::{check_dimensions, check_name, check_value};
pub use super::{AnalyticsEventOrder, AnalyticsEventOrderField};
use crate::error::ApiError;
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::guards::{ANY_ROLE, MANAGERS, RoleGuard};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, connection_cost};
use crate::graphql::scalars::DateTime;
use crate::models::user::api::User;

/// Events one account may record per minute.
const RECORD_PER_MINUTE: i64 = 600;
/// Buckets one summary may return.
const MAX_BUCKETS: i64 = 2000;

/// Something that happened, with an optional value and string dimensions.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct AnalyticsEvent {
    #[graphql(skip)]
    pub record: Arc<AnalyticsEventRecord>,
    /// The event's name (`session.recorded`, `dashboard.opened`, ...).
    pub name: String,
    /// Its value, when it has one.
    pub value: Option<f64>,
}

impl crate::graphql::rows::Plain for AnalyticsEvent {}

impl Listed for AnalyticsEvent {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for AnalyticsEvent {
    type Record = AnalyticsEventRecord;
    fn wrap(record: Arc<AnalyticsEventRecord>) -> Self {
        Self {
            name: record.name.clone(),
            value: record.value,
            record,
        }
    }
    fn record(&self) -> &AnalyticsEventRecord {
        &self.record
    }
}

#[ComplexObject]
impl AnalyticsEvent {
    /// The event's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// Its dimensions: a JSON object of strings.
    async fn dimensions(&self) -> Json<serde_json::Value> {
        Json(Bson::Document(self.record.dimensions.clone()).into_relaxed_extjson())
    }

    /// When it happened.
    async fn at(&self) -> DateTime {
        self.record.at.into()
    }

    /// Who raised it (absent for the system).
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.record.user_id {
            Some(id) => Ok(model::load::<User>(ctx, id).await?),
            None => Ok(None),
        }
    }
}

/// A new client event.
#[derive(InputObject)]
pub struct RecordEventInput {
    /// `^[a-z][a-z0-9_.]{0,63}$`, e.g. `dashboard.opened`.
    name: String,
    /// A finite number, when the event measures something.
    value: Option<f64>,
    /// At most 16 string dimensions (keys up to 64 characters, values up to 256 bytes).
    dimensions: Option<Json<serde_json::Value>>,
}

/// Which events `analyticsEvents` lists.
#[derive(InputObject, Default)]
pub struct AnalyticsEventFilter {
    /// Only these names.
    names: Option<Vec<String>>,
    /// Only events raised by this user.
    user_id: Option<ID>,
    /// Only events at or after this time.
    from: Option<DateTime>,
    /// Only events before this time.
    to: Option<DateTime>,
}

/// The width of a summary's buckets (UTC).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AnalyticsInterval {
    /// One bucket per hour.
    Hour,
    /// One bucket per day.
    Day,
}

/// One bucket of a summary: the events of one hour or day.
#[derive(SimpleObject)]
pub struct AnalyticsBucket {
    /// When the bucket starts (UTC).
    start: DateTime,
    /// How many events it holds.
    count: i64,
    /// The sum of their values (events without a value count as 0).
    sum: f64,
    /// `sum / count`.
    average: f64,
}

#[derive(Default)]
pub struct AnalyticsEventQuery;

#[alawael_macros::connections]
#[Object]
impl AnalyticsEventQuery {
    /// Analytics events, a page at a time, newest last (ADMIN, MANAGER).
    #[graphql(
        guard = "RoleGuard::new(MANAGERS)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn analytics_events(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which events to list.")] filter: Option<AnalyticsEventFilter>,
        #[graphql(desc = "The ordering; by time when absent.")] order_by: Option<
            AnalyticsEventOrder,
        >,
    ) -> async_graphql::Result<Connection<AnalyticsEvent>> {
        let filter = filter.unwrap_or_default();
        let user = match &filter.user_id {
            Some(id) => Some(model::reference::<User>(id, "filter.userId")?),
            None => None,
        };
        let filter = DbFilter {
            names: filter.names.unwrap_or_default(),
            user,
            from: filter.from.map(Into::into),
            to: filter.to.map(Into::into),
        }
        .to_document()?;
        Ok(model::list(ctx, page, filter, order_by.map(|o| (o.field, o.direction))).await?)
    }

    /// Count, sum and average of one event's values per hour or day in
    /// `[from, to)`, computed in the database (ADMIN, MANAGER). Buckets
    /// without events are left out; at most 2,000 buckets.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn analytics_summary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event name.")] name: String,
        #[graphql(desc = "The first instant counted.")] from: DateTime,
        #[graphql(desc = "The first instant not counted.")] to: DateTime,
        #[graphql(
            desc = "The bucket width; DAY when absent.",
            default_with = "AnalyticsInterval::Day"
        )]
        interval: AnalyticsInterval,
    ) -> async_graphql::Result<Vec<AnalyticsBucket>> {
        check_name(&name).map_err(|(_, m)| ApiError::bad_input("name", m))?;
        let (from, to): (bson::DateTime, bson::DateTime) = (from.into(), to.into());
        if to <= from {
            return Err(ApiError::bad_input("to", "`to` must be after `from`").into());
        }
        let width = match interval {
            AnalyticsInterval::Hour => 3_600_000,
            AnalyticsInterval::Day => 86_400_000,
        };
        if (to.timestamp_millis() - from.timestamp_millis()) / width > MAX_BUCKETS {
            return Err(ApiError::bad_input(
                "to",
                format!(
                    "at most {MAX_BUCKETS} buckets; ask for a shorter range or a wider interval"
                ),
            )
            .into());
        }
        let interval = match interval {
            AnalyticsInterval::Hour => Interval::Hour,
            AnalyticsInterval::Day => Interval::Day,
        };
        let buckets = Analytics::new(&ctx.app()?.db)
            .summary(&name, from, to, interval)
            .await
            .map_err(ApiError::from)?;
        Ok(buckets
            .into_iter()
            .map(|b| AnalyticsBucket {
                start: b.start.into(),
                count: b.count,
                sum: b.sum,
                average: if b.count == 0 {
                    0.0
                } else {
                    b.sum / b.count as f64
                },
            })
            .collect())
    }
}

/// Whether a client may not record `name`: the API's own names (the domain
/// events, `auth.login`, ...) and anything under their prefixes, so clients
/// cannot inflate the counts the API keeps.
fn reserved(name: &str) -> bool {
    let prefix = |n: &str| n.split('.').next().map(|p| format!("{p}."));
    crate::models::events::catalogue()
        .iter()
        .filter_map(|n| prefix(n))
        .chain(std::iter::once("auth.".to_string()))
        .any(|reserved| name.starts_with(&reserved))
}

#[derive(Default)]
pub struct AnalyticsEventMutation;

#[Object]
impl AnalyticsEventMutation {
    /// Records a client event (anyone signed in; at most 600 a minute per
    /// account). It reaches `analyticsEvents` subscribers at once.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn record_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event.")] input: RecordEventInput,
    ) -> async_graphql::Result<AnalyticsEvent> {
        let refuse = |(field, message): (&str, String)| ApiError::bad_input(field, message);
        check_name(&input.name).map_err(refuse)?;
        if reserved(&input.name) {
            return Err(ApiError::bad_input(
                "input.name",
                "names of domain events (and their prefixes, such as `session.`) and `auth.` are raised by the API itself",
            )
            .into());
        }
        check_value(input.value).map_err(refuse)?;
        let pairs = check_dimensions(input.dimensions.as_ref().map(|j| &j.0)).map_err(refuse)?;
        let app = ctx.app()?;
        let user = ctx.caller()?.principal()?.id;
        let key = format!("{}:analytics:{}", app.db.name(), user.to_hex());
        let (count, retry) = app
            .cache
            .increment(&key, std::time::Duration::from_secs(60))
            .await;
        if count > RECORD_PER_MINUTE {
            return Err(ApiError::RateLimited {
                retry_after_secs: retry,
            }
            .into());
        }
        let mut dimensions = Document::new();
        for (key, value) in pairs {
            dimensions.insert(key, value);
        }
        let record = AnalyticsEventRecord::new(
            ObjectId::new(),
            input.name,
            input.value,
            dimensions,
            Some(user),
        );
        let record = Analytics::new(&app.db)
            .record(&app.bus, record)
            .await
            .map_err(ApiError::from)?;
        Ok(AnalyticsEvent::wrap(Arc::new(record)))
    }
}

#[derive(Default)]
pub struct AnalyticsEventSubscription;

#[Subscription]
impl AnalyticsEventSubscription {
    /// Analytics events as they are recorded, on any instance (ADMIN,
    /// MANAGER); only `names` when given.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn analytics_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these event names.")] names: Option<Vec<String>>,
    ) -> async_graphql::Result<impl Stream<Item = AnalyticsEvent> + use<>> {
        let names = names.unwrap_or_default();
        if names.len() > 100 {
            return Err(ApiError::bad_input("names", "at most 100 names").into());
        }
        let mut receiver = ctx.app()?.bus.subscribe();
        Ok(async_stream::stream! {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        if let Some((_, snapshot)) = event.of_entity("AnalyticsEvent")
                            && let Some(record) = snapshot.get::<AnalyticsEventRecord>()
                            && (names.is_empty() || names.contains(&record.name))
                        {
                            yield AnalyticsEvent::wrap(record);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow subscriber missed analytics events");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}
