//! The seeded assets: an entry of `seeds/assets.json`, as an asset to create.

use bson::oid::ObjectId;
use serde::Deserialize;

use super::record::{AssetCategory, AssetForCreate, AssetStatus};
use crate::domain::Money;

/// An amount in `seeds/assets.json`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedMoney {
    pub amount_minor: i64,
    pub currency: String,
}

/// An asset in `seeds/assets.json`; `assigned_to` is an account's e-mail.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedAsset {
    pub name: String,
    pub category: AssetCategory,
    pub serial_number: String,
    pub value: SeedMoney,
    pub status: AssetStatus,
    pub location: Option<String>,
    pub purchase_date: Option<String>,
    pub warranty_until: Option<String>,
    pub assigned_to: Option<String>,
}

/// The asset to create from `asset`, assigned to the account found for its e-mail.
pub fn asset(asset: SeedAsset, assigned_to: Option<ObjectId>) -> anyhow::Result<AssetForCreate> {
    Ok(AssetForCreate {
        name: asset.name,
        category: asset.category,
        serial_number: Some(asset.serial_number),
        value: Money::parse(asset.value.amount_minor, &asset.value.currency)
            .map_err(anyhow::Error::msg)?,
        status: asset.status,
        location: asset.location,
        purchase_date: asset.purchase_date,
        warranty_until: asset.warranty_until,
        assigned_to,
    })
}
