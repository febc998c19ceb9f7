//! The `assets` collection: the centre's equipment. A stored `serialKey`
//! (the serial number, or the asset's own id when it has none) carries the
//! unique index, so uniqueness never depends on how a server treats a missing
//! field.

use async_graphql::Enum;
use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use super::page::{Page, Sort, Window};
use super::store::{CountQuery, Record, Store};
use super::{Db, DbResult};
use crate::domain::Money;

pub const COLLECTION: &str = "assets";

/// What kind of thing an asset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssetCategory {
    /// Office supplies and small equipment.
    Office,
    /// General equipment (therapy, gym, workshop).
    Equipment,
    /// Medical devices.
    Medical,
    /// Computers, phones and networking.
    It,
    /// Cars, vans and buses.
    Vehicle,
    /// Desks, chairs, beds and shelving.
    Furniture,
}

/// Where an asset is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssetStatus {
    /// Ready to be used or assigned.
    #[default]
    Available,
    /// In use by someone.
    InUse,
    /// Out of service for maintenance.
    Maintenance,
    /// No longer in service.
    Retired,
}

/// Money as stored: integer minor units and a currency code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMoney {
    pub amount_minor: i64,
    pub currency: String,
}

impl From<&Money> for StoredMoney {
    fn from(money: &Money) -> Self {
        Self {
            amount_minor: money.amount_minor,
            currency: money.currency.as_str().to_string(),
        }
    }
}

/// A stored asset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    pub category: AssetCategory,
    #[serde(default)]
    pub serial_number: Option<String>,
    pub serial_key: String,
    pub value: StoredMoney,
    pub status: AssetStatus,
    #[serde(default)]
    pub location: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub purchase_date: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub warranty_until: Option<String>,
    #[serde(default)]
    pub assigned_to: Option<ObjectId>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

impl Record for AssetRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }
}

/// A validated new asset.
#[derive(Debug, Clone)]
pub struct AssetForCreate {
    pub name: String,
    pub category: AssetCategory,
    pub serial_number: Option<String>,
    pub value: Money,
    pub status: AssetStatus,
    pub location: Option<String>,
    pub purchase_date: Option<String>,
    pub warranty_until: Option<String>,
    pub assigned_to: Option<ObjectId>,
}

/// A validated change; `None` leaves a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct AssetForUpdate {
    pub name: Option<String>,
    pub category: Option<AssetCategory>,
    pub serial_number: Option<Option<String>>,
    pub value: Option<Money>,
    pub status: Option<AssetStatus>,
    pub location: Option<Option<String>>,
    pub purchase_date: Option<Option<String>>,
    pub warranty_until: Option<Option<String>>,
    pub assigned_to: Option<Option<ObjectId>>,
}

/// Which assets a list shows.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    pub categories: Vec<AssetCategory>,
    pub statuses: Vec<AssetStatus>,
    pub assigned_to: Option<ObjectId>,
    /// Case-insensitive match on name, serial number and location; regex-escaped.
    pub search: Option<String>,
    pub created_from: Option<DateTime>,
    pub created_to: Option<DateTime>,
}

impl AssetFilter {
    fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        if !self.categories.is_empty() {
            filter.insert("category", doc! { "$in": bson::to_bson(&self.categories)? });
        }
        if !self.statuses.is_empty() {
            filter.insert("status", doc! { "$in": bson::to_bson(&self.statuses)? });
        }
        if let Some(user) = self.assigned_to {
            filter.insert("assignedTo", user);
        }
        if let Some(pattern) = &self.search {
            filter.insert(
                "$or",
                vec![
                    doc! { "name": { "$regex": pattern, "$options": "i" } },
                    doc! { "serialNumber": { "$regex": pattern, "$options": "i" } },
                    doc! { "location": { "$regex": pattern, "$options": "i" } },
                ],
            );
        }
        let mut created = Document::new();
        if let Some(from) = self.created_from {
            created.insert("$gte", from);
        }
        if let Some(to) = self.created_to {
            created.insert("$lt", to);
        }
        if !created.is_empty() {
            filter.insert("createdAt", created);
        }
        Ok(filter)
    }
}

pub struct Assets {
    store: Store<AssetRecord>,
}

const DUPLICATE_SERIAL: &str = "an asset with this serial number already exists";

impl Assets {
    pub fn new(db: &Db) -> Self {
        Self {
            store: Store::new(db),
        }
    }

    /// Takes back a creation (when its audit entry could not be written).
    pub async fn remove(&self, id: ObjectId) -> DbResult<()> {
        self.store.remove(id).await
    }

    /// Puts a record back as it was (when its audit entry could not be written).
    pub async fn restore(&self, record: &AssetRecord) -> DbResult<()> {
        self.store.restore(record).await
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<AssetRecord>> {
        self.store.get(id).await
    }

    pub async fn page(
        &self,
        filter: &AssetFilter,
        sort: Sort,
        window: Window,
    ) -> DbResult<Page<AssetRecord>> {
        self.store.page(filter.to_document()?, sort, window).await
    }

    pub fn count_query(&self, filter: &AssetFilter) -> DbResult<CountQuery> {
        Ok(self.store.count_query(filter.to_document()?))
    }

    pub async fn create(&self, input: AssetForCreate) -> DbResult<AssetRecord> {
        let id = ObjectId::new();
        let now = DateTime::now();
        let record = AssetRecord {
            id,
            serial_key: serial_key(input.serial_number.as_deref(), id),
            name: input.name,
            category: input.category,
            serial_number: input.serial_number,
            value: StoredMoney::from(&input.value),
            status: input.status,
            location: input.location,
            purchase_date: input.purchase_date,
            warranty_until: input.warranty_until,
            assigned_to: input.assigned_to,
            created_at: now,
            updated_at: now,
        };
        self.store.insert(&record, DUPLICATE_SERIAL).await?;
        Ok(record)
    }

    /// Applies `change`; returns the asset after it, `None` when it is gone.
    pub async fn update(
        &self,
        id: ObjectId,
        change: &AssetForUpdate,
    ) -> DbResult<Option<AssetRecord>> {
        let mut set = doc! { "updatedAt": DateTime::now() };
        if let Some(name) = &change.name {
            set.insert("name", name);
        }
        if let Some(category) = change.category {
            set.insert("category", bson::to_bson(&category)?);
        }
        if let Some(serial) = &change.serial_number {
            set.insert("serialNumber", serial.clone());
            set.insert("serialKey", serial_key(serial.as_deref(), id));
        }
        if let Some(value) = &change.value {
            set.insert("value", bson::to_bson(&StoredMoney::from(value))?);
        }
        if let Some(status) = change.status {
            set.insert("status", bson::to_bson(&status)?);
        }
        for (key, value) in [
            ("location", &change.location),
            ("purchaseDate", &change.purchase_date),
            ("warrantyUntil", &change.warranty_until),
        ] {
            if let Some(value) = value {
                set.insert(key, value.clone());
            }
        }
        if let Some(user) = change.assigned_to {
            set.insert("assignedTo", user);
        }
        self.store.set(id, set, DUPLICATE_SERIAL).await
    }

    /// Deletes an asset; returns it as it was, `None` when there was none.
    pub async fn delete(&self, id: ObjectId) -> DbResult<Option<AssetRecord>> {
        self.store.delete(id).await
    }

    /// Inserts a seed asset unless one with its serial number exists; true when added.
    pub async fn upsert_seed(&self, input: AssetForCreate) -> DbResult<bool> {
        let serial = input.serial_number.clone().unwrap_or_default();
        if self
            .store
            .find_one(doc! { "serialKey": &serial })
            .await?
            .is_some()
        {
            return Ok(false);
        }
        self.create(input).await?;
        Ok(true)
    }
}

fn serial_key(serial: Option<&str>, id: ObjectId) -> String {
    match serial {
        Some(serial) => serial.to_string(),
        None => format!("_id:{}", id.to_hex()),
    }
}

crate::order_fields! {
    /// Orders of `assets`.
    pub enum AssetOrder {
        Name = "NAME" => "name",
        CreatedAt = "CREATED_AT" => "createdAt",
        UpdatedAt = "UPDATED_AT" => "updatedAt",
        Value = "VALUE" => "value.amountMinor",
    }
}

impl super::model::Model for AssetRecord {
    const ENTITY: &'static str = "Asset";
    type Order = AssetOrder;
}
