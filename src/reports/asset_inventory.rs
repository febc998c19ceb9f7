//! ASSET_INVENTORY: how many assets there are and what they are worth,
//! per category and status (one `$group` per figure).

use std::collections::BTreeMap;

use bson::{Bson, doc};
use serde_json::{Value, json};

use super::compute::Computed;
use super::reads::grouped;
use super::values::{key, money, number, text, wire};
use crate::db::Db;
use crate::models::asset::rules::AssetCategory;

/// ASSET_INVENTORY: assets and their value per category and status.
pub async fn compute(db: &Db, category: Option<AssetCategory>) -> Computed {
    let mut matched = doc! {};
    if let Some(category) = category {
        matched.insert("category", bson::to_bson(&category)?);
    }
    let groups = grouped(
        db,
        crate::models::asset::record::COLLECTION,
        &matched,
        Bson::Document(
            doc! { "category": "$category", "status": "$status", "currency": "$value.currency" },
        ),
        &[
            ("count", Bson::Int32(1)),
            ("amountMinor", "$value.amountMinor".into()),
        ],
    )
    .await?;
    type Group = (i64, BTreeMap<String, i64>);
    let mut by_group: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut total: Group = (0, BTreeMap::new());
    for group in &groups {
        let name = (text(key(group, "category")), text(key(group, "status")));
        let currency = text(key(group, "currency"));
        let (count, amount) = (number(group, "count"), number(group, "amountMinor"));
        let entry = by_group.entry(name).or_default();
        entry.0 += count;
        *entry.1.entry(currency.clone()).or_default() += amount;
        total.0 += count;
        *total.1.entry(currency).or_default() += amount;
    }
    let rows: Vec<Value> = by_group
        .iter()
        .map(|((category, status), (count, value))| {
            json!({ "category": category, "status": status, "count": count, "value": money(value) })
        })
        .collect();
    Ok(json!({
        "category": category.map(|c| wire(&c)).transpose()?,
        "count": total.0,
        "value": money(&total.1),
        "groups": rows,
    }))
}
