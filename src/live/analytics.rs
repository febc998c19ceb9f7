//! Analytics events that domain changes raise: one per domain event name,
//! with the change's entity and id as dimensions, written once per change
//! and announced (`models::analytics_event::record::Analytics`, which also
//! records the ones clients and sign-ins raise).

use bson::doc;

use super::Host;
use super::payload::derived_id;
use crate::db::DbResult;
use crate::db::outbox::Entry;
use crate::models::analytics_event::record::{Analytics, AnalyticsEventRecord};

/// The events a change raised.
pub async fn record_change(app: &dyn Host, entry: &Entry, raised: &[String]) -> DbResult<()> {
    let records: Vec<AnalyticsEventRecord> = raised
        .iter()
        .map(|name| {
            AnalyticsEventRecord::new(
                derived_id(entry.id, name),
                name.clone(),
                None,
                doc! { "entity": &entry.entity, "entityId": entry.entity_id.to_hex() },
                entry.actor.id,
            )
        })
        .collect();
    Analytics::new(app.db())
        .record_all(app.bus(), records)
        .await
}
