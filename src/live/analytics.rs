//! Analytics events: the ones domain changes raise (one per domain event
//! name, with the change's entity and id as dimensions, written once per
//! change), and the ones clients and sign-ins record. Each is published on
//! the bus for the `analyticsEvents` subscription.

use std::sync::Arc;

use bson::doc;
use bson::oid::ObjectId;

use super::payload::derived_id;
use crate::db::DbResult;
use crate::db::model::Model;
use crate::db::outbox::Entry;
use crate::events::{ChangeKind, Event, Snapshot};
use crate::models::analytics_event::record::{Analytics, AnalyticsRecord};
use crate::state::AppState;

fn publish(app: &AppState, record: AnalyticsRecord) {
    let id = record.id;
    if let Ok(snapshot) = Snapshot::of(Arc::new(record), &[]) {
        app.bus.publish(Event::record(
            AnalyticsRecord::ENTITY,
            ChangeKind::Created,
            id,
            snapshot,
        ));
    }
}

/// The events a change raised.
pub async fn record_change(app: &AppState, entry: &Entry, raised: &[String]) -> DbResult<()> {
    let records: Vec<AnalyticsRecord> = raised
        .iter()
        .map(|name| {
            AnalyticsRecord::new(
                derived_id(entry.id, name),
                name.clone(),
                None,
                doc! { "entity": &entry.entity, "entityId": entry.entity_id.to_hex() },
                entry.actor.id,
            )
        })
        .collect();
    Analytics::new(&app.db).insert_once(&records).await?;
    for record in records {
        publish(app, record);
    }
    Ok(())
}

/// Stores and announces one event (a client's, or a sign-in).
pub async fn record(app: &AppState, record: AnalyticsRecord) -> DbResult<AnalyticsRecord> {
    Analytics::new(&app.db)
        .insert_once(std::slice::from_ref(&record))
        .await?;
    publish(app, record.clone());
    Ok(record)
}

/// Records `name` for `user` (sign-in, sign-out); a failure is logged, not raised.
pub async fn raise(app: &AppState, name: &str, user: Option<ObjectId>) {
    let event = AnalyticsRecord::new(ObjectId::new(), name.to_string(), None, doc! {}, user);
    if let Err(error) = record(app, event).await {
        tracing::warn!(%error, name, "an analytics event could not be stored");
    }
}
