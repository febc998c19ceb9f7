//! The centre's equipment: record, rules (categories, statuses), API and live updates.

pub mod api;
pub mod record;
pub mod rules;
pub mod seed;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::AssetRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &[
    "asset.created",
    "asset.updated",
    "asset.deleted",
    "asset.status_changed",
];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots.
pub type Query = api::AssetQuery;
pub type Mutation = api::AssetMutation;
pub type Subscription = api::AssetSubscription;

crate::ordering! {
    /// Fields `assets` can be ordered by.
    pub enum AssetOrderField {
        /// Alphabetically by name.
        Name = "NAME" => "name",
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
        /// By last change.
        UpdatedAt = "UPDATED_AT" => "updatedAt",
        /// By value in minor units (regardless of currency).
        Value = "VALUE" => "value.amountMinor",
    }
    /// How `assets` is ordered.
    input AssetOrder;
}

crate::api_enum!(
    /// What kind of thing an asset is.
    AssetCategory {
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
);

crate::api_enum!(
    /// Where an asset is in its life.
    AssetStatus {
        /// Ready to be used or assigned.
        Available,
        /// In use by someone.
        InUse,
        /// Out of service for maintenance.
        Maintenance,
        /// No longer in service.
        Retired,
    }
);
