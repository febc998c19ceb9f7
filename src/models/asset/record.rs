//! The `assets` collection: the centre's equipment. A stored `serialKey`
//! (the serial number, or the asset's own id when it has none) carries the
//! unique index, so uniqueness never depends on how a server treats a missing
//! field.

use bson::oid::ObjectId;
use bson::{DateTime, Document, RawDocument, doc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::db::store::{ForUpdate, Record, Store};
use crate::db::{Db, DbResult, filters, raw};
use crate::domain::Money;

pub const COLLECTION: &str = "assets";

pub use super::rules::{AssetCategory, AssetStatus};
pub use crate::db::money::StoredMoney;

/// A validated change to an asset (see `ForUpdate`). A new serial number
/// comes with its `serialKey`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetForUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<AssetCategory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<StoredMoney>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AssetStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_date: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warranty_until: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<Option<ObjectId>>,
}

impl ForUpdate for AssetForUpdate {}

/// A stored asset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: CompactString,
    pub category: AssetCategory,
    #[serde(default)]
    pub serial_number: Option<CompactString>,
    pub serial_key: CompactString,
    pub value: StoredMoney,
    pub status: AssetStatus,
    #[serde(default)]
    pub location: Option<CompactString>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub purchase_date: Option<CompactString>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub warranty_until: Option<CompactString>,
    #[serde(default)]
    pub assigned_to: Option<ObjectId>,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

impl Record for AssetRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }

    fn from_raw(document: &RawDocument) -> DbResult<Self> {
        let (mut id, mut name, mut category, mut serial_key, mut value, mut status) =
            (None, None, None, None, None, None);
        let (mut created_at, mut updated_at) = (None, None);
        let mut record_serial = None;
        let (mut location, mut purchase_date, mut warranty_until, mut assigned_to) =
            (None, None, None, None);
        for field in raw::fields(document) {
            let (key, v) = field?;
            match key {
                b"_id" => id = Some(v.object_id("_id")?),
                b"name" => name = Some(v.compact("name")?),
                b"category" => category = Some(v.variant("category")?),
                b"serialNumber" => record_serial = v.optional_compact("serialNumber")?,
                b"serialKey" => serial_key = Some(v.compact("serialKey")?),
                b"value" => value = Some(money_from_raw(v.document("value")?)?),
                b"status" => status = Some(v.variant("status")?),
                b"location" => location = v.optional_compact("location")?,
                b"purchaseDate" => purchase_date = v.optional_compact("purchaseDate")?,
                b"warrantyUntil" => warranty_until = v.optional_compact("warrantyUntil")?,
                b"assignedTo" => assigned_to = v.optional_object_id("assignedTo")?,
                b"createdAt" => created_at = Some(v.date("createdAt")?),
                b"updatedAt" => updated_at = Some(v.date("updatedAt")?),
                _ => {}
            }
        }
        Ok(Self {
            id: raw::required(id, "_id")?,
            name: raw::required(name, "name")?,
            category: raw::required(category, "category")?,
            serial_number: record_serial,
            serial_key: raw::required(serial_key, "serialKey")?,
            value: raw::required(value, "value")?,
            status: raw::required(status, "status")?,
            location,
            purchase_date,
            warranty_until,
            assigned_to,
            created_at: raw::required(created_at, "createdAt")?,
            updated_at: raw::required(updated_at, "updatedAt")?,
        })
    }
}

/// An asset's stored `value`, read in place.
fn money_from_raw(document: &RawDocument) -> DbResult<StoredMoney> {
    let (mut amount_minor, mut currency) = (None, None);
    for field in raw::fields(document) {
        let (key, v) = field?;
        match key {
            b"amountMinor" => amount_minor = Some(v.integer("value.amountMinor")?),
            b"currency" => currency = Some(v.compact("value.currency")?),
            _ => {}
        }
    }
    Ok(StoredMoney {
        amount_minor: raw::required(amount_minor, "value.amountMinor")?,
        currency: raw::required(currency, "value.currency")?,
    })
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
    pub fn to_document(&self) -> DbResult<Document> {
        let mut filter = Document::new();
        filters::one_of(&mut filter, "category", &self.categories)?;
        filters::one_of(&mut filter, "status", &self.statuses)?;
        if let Some(user) = self.assigned_to {
            filter.insert("assignedTo", user);
        }
        filters::search(
            &mut filter,
            &["name", "serialNumber", "location"],
            self.search.as_deref(),
        );
        filters::range(&mut filter, "createdAt", self.created_from, self.created_to);
        Ok(filter)
    }
}

impl AssetRecord {
    /// A new stored asset from validated input.
    pub fn new(input: AssetForCreate) -> Self {
        let id = ObjectId::new();
        let now = DateTime::now();
        Self {
            id,
            serial_key: serial_key(input.serial_number.as_deref(), id).into(),
            name: input.name.into(),
            category: input.category,
            serial_number: input.serial_number.map(Into::into),
            value: StoredMoney::from(&input.value),
            status: input.status,
            location: input.location.map(Into::into),
            purchase_date: input.purchase_date.map(Into::into),
            warranty_until: input.warranty_until.map(Into::into),
            assigned_to: input.assigned_to,
            created_at: now,
            updated_at: now,
        }
    }
}

pub struct Assets {
    store: Store<AssetRecord>,
}

pub const DUPLICATE_SERIAL: &str = "an asset with this serial number already exists";

impl Assets {
    pub fn new(db: &Db) -> Self {
        Self {
            store: Store::new(db),
        }
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<AssetRecord>> {
        self.store.get(id).await
    }

    pub async fn create(&self, input: AssetForCreate) -> DbResult<AssetRecord> {
        let record = AssetRecord::new(input);
        self.store.insert(&record, DUPLICATE_SERIAL).await?;
        Ok(record)
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

/// The stored key behind the unique index: the serial, or the asset's own id.
pub fn serial_key(serial: Option<&str>, id: ObjectId) -> String {
    match serial {
        Some(serial) => serial.to_string(),
        None => format!("_id:{}", id.to_hex()),
    }
}

impl crate::db::model::Model for AssetRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::Asset;
    const PUBLIC: &'static [&'static str] = &["name", "category", "status", "location"];
    const INTERNAL: &'static [&'static str] = &["serialKey"];
    const UNAUDITED: &'static [&'static str] = &["serialKey"];
    type Order = super::AssetOrderField;

    fn extra_indexes() -> Vec<(&'static str, bson::Document, bool)> {
        vec![
            (
                "category_status",
                bson::doc! { "category": 1, "status": 1 },
                false,
            ),
            ("serialKey_unique", bson::doc! { "serialKey": 1 }, true),
            ("assignedTo", bson::doc! { "assignedTo": 1 }, false),
        ]
    }
}

impl Db {
    /// The assets collection's own operations.
    pub fn assets(&self) -> Assets {
        Assets::new(self)
    }
}
