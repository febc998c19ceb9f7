//! Assets: the `Asset` type, `assets`/`asset` queries, create, update and
//! delete (ADMIN, MANAGER), and the `assetUpdated` subscription. Listing,
//! loading and the audited writes come from the shared model machinery.

pub use super::{AssetCategory, AssetStatus};
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, ID, InputObject, Lookahead, MaybeUndefined, Object, SimpleObject,
    Subscription,
};
use bson::doc;
use bson::oid::ObjectId;
use futures::Stream;
use futures::future::BoxFuture;

use super::record::{
    AssetFilter as DbAssetFilter, AssetForCreate, AssetForUpdate, AssetRecord, DUPLICATE_SERIAL,
    StoredMoney, serial_key,
};
use super::rules as inventory;
pub use super::{AssetOrder, AssetOrderField};
use crate::db::store::Store;
use crate::domain::ids::GlobalId;
use crate::domain::{NodeKind, text};
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::ContextExt;
use crate::graphql::enums::{ChangeKind, stored};
use crate::graphql::guards::{ANY_ROLE, MANAGERS, RoleGuard};
use crate::graphql::inputs::search_pattern;
use crate::graphql::inputs::{DateTimeRange, clearable, required};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::money::{Money, MoneyInput};
use crate::graphql::pagination::{Connection, Listed, connection_cost};
use crate::graphql::rows::{Row, Scalar};
use crate::graphql::scalars::{Date, DateTime};
use crate::models::user::api::User;
use crate::models::user::record::UserRecord;

/// A piece of the centre's equipment.
#[derive(SimpleObject, Clone)]
#[graphql(complex, cache_control(max_age = 60))]
pub struct Asset {
    #[graphql(skip)]
    pub record: Arc<AssetRecord>,
    /// What kind of thing it is.
    pub category: AssetCategory,
    /// Where it is in its life.
    pub status: AssetStatus,
}

impl crate::graphql::rows::Plain for Asset {
    fn plain(&self, field: &str) -> Option<Scalar<'_>> {
        use async_graphql::ScalarType;
        let record = &self.record;
        Some(match field {
            "id" => Scalar::Id(GlobalId::new(NodeKind::Asset, record.id)),
            "name" => Scalar::Text(&record.name),
            "serialNumber" => Scalar::text(record.serial_number.as_deref()),
            "location" => Scalar::text(record.location.as_deref()),
            "createdAt" => Scalar::Value(DateTime::from(record.created_at).to_value()),
            "updatedAt" => Scalar::Value(DateTime::from(record.updated_at).to_value()),
            _ => return None,
        })
    }
}

impl Listed for Asset {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for Asset {
    type Record = AssetRecord;
    fn wrap(record: Arc<AssetRecord>) -> Self {
        Self {
            category: record.category,
            status: record.status,
            record,
        }
    }
    fn record(&self) -> &AssetRecord {
        &self.record
    }
    fn prefetch(
        ctx: &Context<'_>,
        node: &Lookahead<'_>,
        rows: &[&AssetRecord],
    ) -> Vec<BoxFuture<'static, ()>> {
        let assignees = rows.iter().filter_map(|r| r.assigned_to);
        node.field("assignedTo")
            .exists()
            .then(|| model::preload::<User>(ctx, assignees))
            .flatten()
            .into_iter()
            .collect()
    }
}

#[ComplexObject]
impl Asset {
    /// The asset's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// What the asset is called.
    async fn name(&self) -> &str {
        &self.record.name
    }

    /// The manufacturer's serial number; unique when present.
    async fn serial_number(&self) -> Option<&str> {
        self.record.serial_number.as_deref()
    }

    /// What it cost.
    async fn value(&self) -> Row<Money> {
        Row(Money::from(&self.record.value))
    }

    /// Room or site.
    async fn location(&self) -> Option<&str> {
        self.record.location.as_deref()
    }

    /// When it was bought.
    async fn purchase_date(&self) -> Option<Date> {
        self.record
            .purchase_date
            .as_deref()
            .and_then(Date::from_stored)
    }

    /// Last day of the warranty.
    async fn warranty_until(&self) -> Option<Date> {
        self.record
            .warranty_until
            .as_deref()
            .and_then(Date::from_stored)
    }

    /// Who has it, if anyone.
    async fn assigned_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Row<User>>> {
        match self.record.assigned_to {
            Some(id) => Ok(model::load::<User>(ctx, id).await?.map(Row)),
            None => Ok(None),
        }
    }

    /// When the record was created.
    async fn created_at(&self) -> DateTime {
        self.record.created_at.into()
    }

    /// When the record last changed.
    async fn updated_at(&self) -> DateTime {
        self.record.updated_at.into()
    }
}

/// Which assets `assets` lists.
#[derive(InputObject, Default)]
pub struct AssetFilter {
    /// Only these categories.
    category: Option<Vec<AssetCategory>>,
    /// Only these statuses.
    status: Option<Vec<AssetStatus>>,
    /// Only assets assigned to this user.
    assigned_to: Option<ID>,
    /// Case-insensitive text found in the name, serial number or location.
    search: Option<String>,
    /// Only assets created in this span.
    created_at: Option<DateTimeRange>,
}

/// A new asset. Only `name`, `category` and `value` are required.
#[derive(InputObject)]
pub struct CreateAssetInput {
    /// What the asset is called.
    name: String,
    /// What kind of thing it is.
    category: AssetCategory,
    /// What it cost.
    value: MoneyInput,
    /// The manufacturer's serial number; unique.
    serial_number: Option<String>,
    /// Where it is in its life; AVAILABLE when absent.
    status: Option<AssetStatus>,
    /// Room or site.
    location: Option<String>,
    /// When it was bought.
    purchase_date: Option<Date>,
    /// Last day of the warranty; not before the purchase date.
    warranty_until: Option<Date>,
    /// The user who has it.
    assigned_to_id: Option<ID>,
}

/// Changes to an asset: absent fields stay, `null` clears the optional ones.
#[derive(InputObject)]
pub struct UpdateAssetInput {
    /// What the asset is called.
    name: MaybeUndefined<String>,
    /// What kind of thing it is.
    category: MaybeUndefined<AssetCategory>,
    /// What it cost.
    value: MaybeUndefined<MoneyInput>,
    /// The manufacturer's serial number; `null` clears it.
    serial_number: MaybeUndefined<String>,
    /// Where it is in its life.
    status: MaybeUndefined<AssetStatus>,
    /// Room or site; `null` clears it.
    location: MaybeUndefined<String>,
    /// When it was bought; `null` clears it.
    purchase_date: MaybeUndefined<Date>,
    /// Last day of the warranty; `null` clears it.
    warranty_until: MaybeUndefined<Date>,
    /// The user who has it; `null` unassigns it.
    assigned_to_id: MaybeUndefined<ID>,
}

/// A change to an asset, as streamed to subscribers.
#[derive(SimpleObject, Clone)]
pub struct AssetEvent {
    /// What happened.
    pub kind: ChangeKind,
    /// The asset as it is now (as it was, for a deletion).
    pub asset: Asset,
}

fn asset_name(value: &str) -> ApiResult<String> {
    text::required(value, 200)
        .map_err(|m| ApiError::bad_input("input.name", format!("the name {m}")))
}

fn serial(value: &str) -> ApiResult<String> {
    inventory::serial_number(value).map_err(|m| ApiError::bad_input("input.serialNumber", m))
}

fn location(value: &str) -> ApiResult<String> {
    text::required(value, 200)
        .map_err(|m| ApiError::bad_input("input.location", format!("the location {m}")))
}

fn warranty(purchase: Option<&str>, until: Option<&str>) -> ApiResult<()> {
    inventory::check_warranty(purchase, until)
        .map_err(|m| ApiError::bad_input("input.warrantyUntil", m))
}

/// An assignee must be an active account.
async fn assignee(ctx: &Context<'_>, id: &ID) -> ApiResult<ObjectId> {
    let bad = || ApiError::bad_input("input.assignedToId", "no active user has this id");
    let id = model::reference::<User>(id, "input.assignedToId").map_err(|_| bad())?;
    match Store::<UserRecord>::new(&ctx.app()?.db).get(id).await? {
        Some(u) if u.active => Ok(id),
        _ => Err(bad()),
    }
}

#[derive(Default)]
pub struct AssetQuery;

#[alawael_macros::connections]
#[Object]
impl AssetQuery {
    /// The centre's assets, a page at a time. Cacheable for 60 s (any asset
    /// write makes cached answers stale).
    #[graphql(
        guard = "RoleGuard::new(ANY_ROLE)",
        complexity = "connection_cost(first, last, child_complexity)",
        cache_control(max_age = 60)
    )]
    async fn assets(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which assets to list.")] filter: Option<AssetFilter>,
        #[graphql(desc = "The ordering; by name when absent.")] order_by: Option<AssetOrder>,
    ) -> async_graphql::Result<Connection<Asset>> {
        let filter = filter.unwrap_or_default();
        let range = filter.created_at.unwrap_or_default();
        let filter = DbAssetFilter {
            categories: stored(filter.category),
            statuses: stored(filter.status),
            assigned_to: filter
                .assigned_to
                .as_ref()
                .map(|id| model::reference::<User>(id, "filter.assignedTo"))
                .transpose()?,
            search: search_pattern(filter.search, "filter.search")?,
            created_from: range.from.map(Into::into),
            created_to: range.to.map(Into::into),
        };
        let args = page;
        Ok(model::list(
            ctx,
            args,
            filter.to_document()?,
            order_by.map(|o| (o.field, o.direction)),
        )
        .await?)
    }

    /// One asset by id. Cacheable for 60 s (a write to this asset makes
    /// cached answers stale).
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)", cache_control(max_age = 60))]
    async fn asset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The asset's global id.")] id: ID,
    ) -> async_graphql::Result<Asset> {
        Ok(model::one(ctx, &id).await?)
    }
}

#[derive(Default)]
pub struct AssetMutation;

#[Object]
impl AssetMutation {
    /// Registers an asset (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn create_asset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to create.")] input: CreateAssetInput,
    ) -> async_graphql::Result<Asset> {
        let purchase_date = input.purchase_date.map(Date::to_stored);
        let warranty_until = input.warranty_until.map(Date::to_stored);
        warranty(purchase_date.as_deref(), warranty_until.as_deref())?;
        let record = AssetRecord::new(AssetForCreate {
            name: asset_name(&input.name)?,
            category: input.category,
            value: input.value.parse("input.value")?,
            serial_number: input.serial_number.as_deref().map(serial).transpose()?,
            status: input.status.unwrap_or(inventory::AssetStatus::NEW),
            location: input.location.as_deref().map(location).transpose()?,
            purchase_date,
            warranty_until,
            assigned_to: match &input.assigned_to_id {
                Some(id) => Some(assignee(ctx, id).await?),
                None => None,
            },
        });
        Ok(model::insert(ctx, record, "asset.create", DUPLICATE_SERIAL).await?)
    }

    /// Changes an asset (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn update_asset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The global id of the object.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateAssetInput,
    ) -> async_graphql::Result<Asset> {
        let before: Asset = model::one(ctx, &id).await?;
        let before = before.record;
        // Checked in the order of the input's fields; the assignee, which
        // needs a read, last.
        let mut change = AssetForUpdate {
            name: required(input.name, "input.name", |n| asset_name(&n))?,
            category: required(input.category, "input.category", Ok)?,
            value: required(input.value, "input.value", |v| {
                v.parse("input.value").map(|m| StoredMoney::from(&m))
            })?,
            status: required(input.status, "input.status", Ok)?,
            serial_number: clearable(input.serial_number, |s| serial(&s))?,
            location: clearable(input.location, |s| location(&s))?,
            purchase_date: clearable(input.purchase_date, |d| Ok(d.to_stored()))?,
            warranty_until: clearable(input.warranty_until, |d| Ok(d.to_stored()))?,
            ..AssetForUpdate::default()
        };
        change.serial_key = change
            .serial_number
            .as_ref()
            .map(|v| serial_key(v.as_deref(), before.id));
        warranty(
            change
                .purchase_date
                .clone()
                .unwrap_or_else(|| before.purchase_date.as_deref().map(str::to_owned))
                .as_deref(),
            change
                .warranty_until
                .clone()
                .unwrap_or_else(|| before.warranty_until.as_deref().map(str::to_owned))
                .as_deref(),
        )?;
        change.assigned_to = match input.assigned_to_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(id) => Some(Some(assignee(ctx, &id).await?)),
        };
        Ok(model::update(ctx, &*before, change, "asset.update", DUPLICATE_SERIAL).await?)
    }

    /// Deletes an asset (ADMIN, MANAGER); returns its id.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn delete_asset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The asset's global id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let before: Asset = model::one(ctx, &id).await?;
        Ok(model::delete::<Asset>(ctx, &before.record, "asset.delete").await?)
    }
}

#[derive(Default)]
pub struct AssetSubscription;

#[Subscription]
impl AssetSubscription {
    /// Every asset change as it happens (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn asset_updated(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = AssetEvent> + use<>> {
        let mut receiver = ctx.app()?.bus.subscribe();
        Ok(async_stream::stream! {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        if let Some((kind, snapshot)) = event.of_entity("Asset")
                            && let Some(asset) = snapshot.get::<AssetRecord>()
                        {
                            yield AssetEvent { kind: kind.into(), asset: Asset::wrap(asset) };
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow subscriber missed asset events");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}
