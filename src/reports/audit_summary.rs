//! AUDIT_SUMMARY: how many audit entries a window holds, per action and
//! per entity type.

use bson::{Bson, Document, doc};
use serde_json::{Value, json};

use super::compute::Computed;
use super::params::Window;
use super::reads::grouped;
use super::values::{number, text, window_filter, window_json};
use crate::db::{Db, DbResult};
use crate::models::audit_log_entry::entry as audit;

/// Groups `audit_logs` in the window by `field`; rows by count, most first.
async fn audit_counts(
    db: &Db,
    matched: &Document,
    field: &str,
    name: &str,
) -> DbResult<Vec<Value>> {
    let groups = grouped(
        db,
        audit::COLLECTION,
        matched,
        format!("${field}").into(),
        &[("count", Bson::Int32(1))],
    )
    .await?;
    let mut counted: Vec<(String, i64)> = groups
        .iter()
        .map(|g| (text(g.get("_id")), number(g, "count")))
        .collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(counted
        .into_iter()
        .map(|(value, count)| json!({ name: value, "count": count }))
        .collect())
}

/// AUDIT_SUMMARY: audit entries in the window per action and per entity type.
pub async fn compute(db: &Db, window: Window) -> Computed {
    let mut matched = doc! {};
    window_filter(&mut matched, "at", window);
    let by_action = audit_counts(db, &matched, "action", "action").await?;
    let by_entity = audit_counts(db, &matched, "entityType", "entityType").await?;
    let entries: i64 = by_action.iter().filter_map(|r| r["count"].as_i64()).sum();
    let (from, to) = window_json(window);
    Ok(json!({
        "from": from,
        "to": to,
        "entries": entries,
        "byAction": by_action,
        "byEntityType": by_entity,
    }))
}
