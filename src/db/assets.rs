//! The `assets` collection: the centre's equipment. A stored `serialKey`
//! (the serial number, or the asset's own id when it has none) carries the
//! unique index, so uniqueness never depends on how a server treats a missing
//! field.

use async_graphql::Enum;
use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use mongodb::Collection;
use mongodb::options::{FindOneAndUpdateOptions, ReturnDocument};
use serde::{Deserialize, Serialize};

use super::page::{self, Page, Sort, Window};
use super::{Db, DbError, DbResult};
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
    collection: Collection<Document>,
    max_time: std::time::Duration,
}

const DUPLICATE_SERIAL: &str = "an asset with this serial number already exists";

impl Assets {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            max_time: db.max_time(),
        }
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<AssetRecord>> {
        let found = self
            .collection
            .find_one(doc! { "_id": id })
            .max_time(self.max_time)
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    pub async fn page(
        &self,
        filter: &AssetFilter,
        sort: Sort,
        window: Window,
    ) -> DbResult<Page<AssetRecord>> {
        page::fetch(
            &self.collection,
            filter.to_document()?,
            sort,
            window,
            self.max_time,
        )
        .await
    }

    pub async fn count(&self, filter: &AssetFilter) -> DbResult<u64> {
        page::count(&self.collection, filter.to_document()?, self.max_time).await
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
        match self
            .collection
            .insert_one(bson::to_document(&record)?)
            .await
        {
            Ok(_) => Ok(record),
            Err(e) if super::duplicate_key(&e) => Err(DbError::Duplicate(DUPLICATE_SERIAL.into())),
            Err(e) => Err(e.into()),
        }
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
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .max_time(self.max_time)
            .build();
        match self
            .collection
            .find_one_and_update(doc! { "_id": id }, doc! { "$set": set })
            .with_options(options)
            .await
        {
            Ok(found) => Ok(found.map(bson::from_document).transpose()?),
            Err(e) if super::duplicate_key(&e) => Err(DbError::Duplicate(DUPLICATE_SERIAL.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an asset; returns it as it was, `None` when there was none.
    pub async fn delete(&self, id: ObjectId) -> DbResult<Option<AssetRecord>> {
        let found = self
            .collection
            .find_one_and_delete(doc! { "_id": id })
            .max_time(self.max_time)
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    /// Inserts or refreshes a seed asset, keyed by its serial number.
    pub async fn upsert_seed(&self, input: AssetForCreate) -> DbResult<bool> {
        let serial = input.serial_number.clone().unwrap_or_default();
        if self
            .collection
            .find_one(doc! { "serialKey": &serial })
            .max_time(self.max_time)
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
