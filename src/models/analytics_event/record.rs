//! The `analytics_events` collection: named measurements with optional
//! value and string dimensions, raised by domain changes and recorded by
//! clients. ADMIN and MANAGER read them; everyone signed in may record.
//! Each event stores the hour and day it falls in, so the per-bucket
//! summary is one `$group` the server runs (FerretDB has no date
//! arithmetic in `$group`). Every event stored is announced on the bus.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::db::model::{Access, Model, Scope, change_event};
use crate::db::store::{Record, Store};
use crate::db::{Db, DbError, DbResult, filters};
use crate::events::{ChangeKind, EventBus};

pub const COLLECTION: &str = "analytics_events";

/// A stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsEventRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub dimensions: Document,
    pub at: DateTime,
    /// The hour and the day (UTC) `at` falls in.
    pub hour: DateTime,
    pub day: DateTime,
    #[serde(default)]
    pub user_id: Option<ObjectId>,
}

impl AnalyticsEventRecord {
    pub fn new(
        id: ObjectId,
        name: String,
        value: Option<f64>,
        dimensions: Document,
        user_id: Option<ObjectId>,
    ) -> Self {
        let at = DateTime::now();
        let millis = at.timestamp_millis();
        let hour = DateTime::from_millis(millis - millis.rem_euclid(3_600_000));
        let day = DateTime::from_millis(millis - millis.rem_euclid(86_400_000));
        Self {
            id,
            name,
            value,
            dimensions,
            at,
            hour,
            day,
            user_id,
        }
    }
}

impl Record for AnalyticsEventRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

impl Model for AnalyticsEventRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::AnalyticsEvent;
    type Order = super::AnalyticsEventOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            ("name_hour", doc! { "name": 1, "hour": 1 }, false),
            ("name_day", doc! { "name": 1, "day": 1 }, false),
        ]
    }

    async fn scope(access: &Access) -> DbResult<Scope> {
        Ok(match access.viewer() {
            Some(v) if v.is_manager() => Scope::All,
            _ => Scope::Nothing,
        })
    }
}

/// Which events a list shows.
#[derive(Debug, Clone, Default)]
pub struct AnalyticsFilter {
    pub names: Vec<String>,
    pub user: Option<ObjectId>,
    pub from: Option<DateTime>,
    pub to: Option<DateTime>,
}

impl AnalyticsFilter {
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        filters::one_of(&mut filter, "name", &self.names)?;
        if let Some(user) = self.user {
            filter.insert("userId", user);
        }
        filters::range(&mut filter, "at", self.from, self.to);
        Ok(filter)
    }
}

/// Hourly or daily buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
}

/// One bucket of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start: DateTime,
    pub count: i64,
    pub sum: f64,
}

pub struct Analytics {
    db: Db,
}

impl Analytics {
    pub fn new(db: &Db) -> Self {
        Self { db: db.clone() }
    }

    fn collection(&self) -> mongodb::Collection<Document> {
        self.db.collection(COLLECTION)
    }

    /// Stores events; ones already stored (same `_id`) are skipped, so a
    /// retried write records each event once.
    pub async fn insert_once(&self, records: &[AnalyticsEventRecord]) -> DbResult<()> {
        Store::<AnalyticsEventRecord>::new(&self.db)
            .insert_once(records)
            .await
    }

    /// Stores events (each once, as `insert_once`) and announces each on
    /// the bus, for the `analyticsEvents` subscription.
    pub async fn record_all(
        &self,
        bus: &EventBus,
        records: Vec<AnalyticsEventRecord>,
    ) -> DbResult<()> {
        self.insert_once(&records).await?;
        for record in records {
            if let Some(event) = change_event(ChangeKind::Created, record) {
                bus.publish(event);
            }
        }
        Ok(())
    }

    /// Stores and announces one event (a client's, or a sign-in).
    pub async fn record(
        &self,
        bus: &EventBus,
        record: AnalyticsEventRecord,
    ) -> DbResult<AnalyticsEventRecord> {
        self.record_all(bus, vec![record.clone()]).await?;
        Ok(record)
    }

    /// Records `name` for `user` (sign-in, sign-out); a failure is logged, not raised.
    pub async fn raise(&self, bus: &EventBus, name: &str, user: Option<ObjectId>) {
        let event =
            AnalyticsEventRecord::new(ObjectId::new(), name.to_string(), None, doc! {}, user);
        if let Err(error) = self.record(bus, event).await {
            tracing::warn!(%error, name, "an analytics event could not be stored");
        }
    }

    /// Count and sum of `name`'s values per bucket in `[from, to)`, in the database.
    pub async fn summary(
        &self,
        name: &str,
        from: DateTime,
        to: DateTime,
        interval: Interval,
    ) -> DbResult<Vec<Bucket>> {
        let key = match interval {
            Interval::Hour => "$hour",
            Interval::Day => "$day",
        };
        let matched = doc! { "$match": { "name": name, "at": { "$gte": from, "$lt": to } } };
        let sorted = doc! { "$sort": { "_id": 1 } };
        let group = |accumulators: Document| {
            let mut stage = doc! { "_id": key };
            stage.extend(accumulators);
            doc! { "$group": stage }
        };
        let both = doc! { "count": { "$sum": 1 }, "sum": { "$sum": "$value" } };
        if !self.db.is_ferretdb() {
            let rows = self.aggregate(vec![matched, group(both), sorted]).await?;
            return rows.iter().map(|row| bucket(row, row)).collect();
        }
        // FerretDB 1.24 computes only the first accumulator of a `$group`
        // (the others come back 0), so there the count and the sum are two
        // pipelines, merged by bucket.
        let counts = self
            .aggregate(vec![
                matched.clone(),
                group(doc! { "count": { "$sum": 1 } }),
                sorted.clone(),
            ])
            .await?;
        let sums = self
            .aggregate(vec![
                matched,
                group(doc! { "sum": { "$sum": "$value" } }),
                sorted,
            ])
            .await?;
        counts
            .iter()
            .map(|row| {
                let start = row.get("_id");
                let sum = sums.iter().find(|s| s.get("_id") == start).unwrap_or(row);
                bucket(row, sum)
            })
            .collect()
    }

    async fn aggregate(&self, pipeline: Vec<Document>) -> DbResult<Vec<Document>> {
        Ok(self
            .collection()
            .aggregate(pipeline)
            .max_time(self.db.max_time())
            .await?
            .try_collect()
            .await?)
    }

    /// Removes events older than `before`, at most `limit`.
    pub async fn sweep(&self, before: DateTime, limit: u32) -> DbResult<u64> {
        crate::db::retention::delete_older(&self.db, COLLECTION, "at", before, limit).await
    }
}

/// A bucket from the row holding its count and the row holding its sum.
fn bucket(counted: &Document, summed: &Document) -> DbResult<Bucket> {
    let start = counted
        .get_datetime("_id")
        .map_err(|e| DbError::Other(e.into()))?;
    Ok(Bucket {
        start: *start,
        count: number(counted.get("count")) as i64,
        sum: number(summed.get("sum")),
    })
}

fn number(value: Option<&Bson>) -> f64 {
    match value {
        Some(Bson::Int32(n)) => f64::from(*n),
        Some(Bson::Int64(n)) => *n as f64,
        Some(Bson::Double(n)) => *n,
        _ => 0.0,
    }
}
