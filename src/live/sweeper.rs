//! Retention: analytics events older than `retention.analytics_days`,
//! reports older than `reports_days`, deliveries older than
//! `deliveries_days` (with their attempt claims), and settled outbox
//! entries and leases older than a day are
//! removed in bounded batches, by one instance at a time (a lease), each
//! removal logged and counted in `/metrics`
//! (`alawael_retention_removed_total{collection}`). Audit entries are
//! never swept.

use std::sync::Arc;
use std::time::Duration;

use bson::DateTime;

use super::Host;
use crate::db::DbResult;
use crate::db::outbox::Outbox;
use crate::models::analytics_event::record::Analytics;
use crate::models::webhook::record::Webhooks;

/// Rows removed by one sweep, per collection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub analytics_events: u64,
    pub reports: u64,
    pub webhook_deliveries: u64,
    /// Settled outbox entries, attempt claims and expired leases.
    pub internal: u64,
}

fn days_ago(now: DateTime, days: u32) -> DateTime {
    DateTime::from_millis(now.timestamp_millis() - i64::from(days) * 86_400_000)
}

/// Removes everything past its age as of `now`, batch by batch.
pub async fn sweep(app: &dyn Host, now: DateTime) -> DbResult<Swept> {
    let settings = &app.settings().retention;
    let batch = settings.batch_size.max(1);
    let mut swept = Swept::default();
    let steps: [(&str, DateTime); 4] = [
        ("analytics_events", days_ago(now, settings.analytics_days)),
        ("reports", days_ago(now, settings.reports_days)),
        (
            "webhook_deliveries",
            days_ago(now, settings.deliveries_days),
        ),
        ("outbox", days_ago(now, 1)),
    ];
    for (collection, before) in steps {
        loop {
            let removed = match collection {
                "analytics_events" => Analytics::new(app.db()).sweep(before, batch).await?,
                "reports" => {
                    crate::db::retention::delete_older(
                        app.db(),
                        "reports",
                        "createdAt",
                        before,
                        batch,
                    )
                    .await?
                }
                "webhook_deliveries" => Webhooks::new(app.db()).sweep(before, batch).await?,
                "outbox" => {
                    Outbox::new(app.db())
                        .sweep(before, i64::from(batch))
                        .await?
                }
                other => {
                    crate::db::retention::delete_older(app.db(), other, "at", before, batch).await?
                }
            };
            if removed == 0 {
                break;
            }
            metrics::counter!("alawael_retention_removed_total", "collection" => collection)
                .increment(removed);
            tracing::info!(collection, removed, "retention removed old rows");
            match collection {
                "analytics_events" => swept.analytics_events += removed,
                "reports" => swept.reports += removed,
                "webhook_deliveries" => swept.webhook_deliveries += removed,
                _ => swept.internal += removed,
            }
            if removed < u64::from(batch) {
                break;
            }
        }
    }
    Ok(swept)
}

/// Sweeps every `retention.interval_secs` on the instance holding the lease.
pub async fn sweep_loop(app: Arc<dyn Host>) {
    let interval = Duration::from_secs(app.settings().retention.interval_secs.max(1));
    loop {
        match super::lease::take(
            app.db(),
            "retention",
            &app.live().instance,
            interval.as_secs().max(60),
        )
        .await
        {
            Ok(true) => {
                if let Err(error) = sweep(&*app, DateTime::now()).await {
                    tracing::warn!(%error, "the retention sweep failed; retrying at the next interval");
                }
            }
            Ok(false) => {}
            Err(error) => tracing::debug!(%error, "retention lease unavailable"),
        }
        if !super::wait(&*app, interval).await {
            return;
        }
    }
}
