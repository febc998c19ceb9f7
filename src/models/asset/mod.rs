//! The centre's equipment: record, rules (categories, statuses), API and live updates.

pub mod api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::AssetQuery;
pub type Mutation = api::AssetMutation;
pub type Subscription = api::AssetSubscription;
