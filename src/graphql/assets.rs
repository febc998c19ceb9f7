//! Assets: the `Asset` type, `assets`/`asset` queries, create, update and
//! delete (ADMIN, MANAGER), and the `assetUpdated` subscription. The pattern
//! every later model follows.

use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
    Subscription,
};
use bson::oid::ObjectId;
use futures::Stream;

use super::context::{ContextExt, audit_change};
use super::guards::{ANY_ROLE, MANAGERS, RoleGuard};
use super::inputs::{clearable, required};
use super::money::{Money, MoneyInput};
use super::pagination::{Connection, Listed, OrderDirection, PageArgs, connection_cost};
use super::scalars::{Date, DateTime};
use super::users::{User, search_pattern, user_id};
use crate::db::assets::{
    AssetCategory, AssetFilter as DbAssetFilter, AssetForCreate, AssetForUpdate, AssetRecord,
    AssetStatus,
};
use crate::db::audit::diff;
use crate::domain::{GlobalId, NodeKind, text};
use crate::error::{ApiError, ApiResult, Found};
use crate::events::{ChangeKind, Event};

/// A piece of the centre's equipment.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Asset {
    #[graphql(skip)]
    pub record: Arc<AssetRecord>,
    /// What the asset is called.
    pub name: String,
    /// What kind of thing it is.
    pub category: AssetCategory,
    /// Where it is in its life.
    pub status: AssetStatus,
}

impl Asset {
    pub fn new(record: impl Into<Arc<AssetRecord>>) -> Self {
        let record = record.into();
        Self {
            name: record.name.clone(),
            category: record.category,
            status: record.status,
            record,
        }
    }
}

impl Listed for Asset {
    const NAME: &'static str = "Asset";
}

impl super::model::ApiModel for Asset {
    type Record = AssetRecord;
    const KIND: NodeKind = NodeKind::Asset;
    fn wrap(record: Arc<AssetRecord>) -> Self {
        Self::new(record)
    }
    fn record(&self) -> &AssetRecord {
        &self.record
    }
}

#[ComplexObject]
impl Asset {
    /// The asset's global id.
    pub async fn id(&self) -> ID {
        ID(GlobalId::new(NodeKind::Asset, self.record.id).encode())
    }

    /// The manufacturer's serial number; unique when present.
    async fn serial_number(&self) -> Option<&str> {
        self.record.serial_number.as_deref()
    }

    /// What it cost.
    async fn value(&self) -> Money {
        Money::from(&self.record.value)
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
    async fn assigned_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.record.assigned_to else {
            return Ok(None);
        };
        Ok(super::model::load::<User>(ctx, id).await?)
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

/// A span of time; either end may be open.
#[derive(InputObject, Default)]
pub struct DateTimeRange {
    /// From this instant, inclusive.
    pub from: Option<DateTime>,
    /// Up to this instant, exclusive.
    pub to: Option<DateTime>,
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

/// Fields `assets` can be ordered by.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssetOrderField {
    /// Alphabetically by name.
    #[default]
    Name,
    /// By creation time.
    CreatedAt,
    /// By last change.
    UpdatedAt,
    /// By value in minor units (regardless of currency).
    Value,
}

/// How `assets` is ordered.
#[derive(InputObject)]
pub struct AssetOrder {
    /// The field to order by.
    field: AssetOrderField,
    /// Ascending or descending.
    #[graphql(default)]
    direction: OrderDirection,
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

fn asset_id(id: &ID) -> ApiResult<ObjectId> {
    GlobalId::decode_as(id.as_str(), NodeKind::Asset).ok_or(ApiError::NotFound)
}

fn asset_name(value: &str) -> ApiResult<String> {
    text::required(value, 200)
        .map_err(|m| ApiError::bad_input("input.name", format!("the name {m}")))
}

fn serial(value: &str) -> ApiResult<String> {
    let s = text::required(value, 100)
        .map_err(|m| ApiError::bad_input("input.serialNumber", format!("the serial number {m}")))?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./ ".contains(c))
    {
        return Err(ApiError::bad_input(
            "input.serialNumber",
            "a serial number has letters, digits, spaces and - _ . / only",
        ));
    }
    Ok(s)
}

fn location(value: &str) -> ApiResult<String> {
    text::required(value, 200)
        .map_err(|m| ApiError::bad_input("input.location", format!("the location {m}")))
}

/// An assignee must be an active account.
async fn assignee(ctx: &Context<'_>, id: &ID) -> ApiResult<ObjectId> {
    let bad = || ApiError::bad_input("input.assignedToId", "no active user has this id");
    let id = user_id(id).map_err(|_| bad())?;
    let user = ctx.app()?.db.users().get(id).await?;
    match user {
        Some(u) if u.active => Ok(id),
        _ => Err(bad()),
    }
}

fn check_dates(purchase: Option<&str>, warranty: Option<&str>) -> ApiResult<()> {
    if let (Some(p), Some(w)) = (purchase, warranty)
        && w < p
    {
        return Err(ApiError::bad_input(
            "input.warrantyUntil",
            "the warranty cannot end before the purchase date",
        ));
    }
    Ok(())
}

#[derive(Default)]
pub struct AssetQuery;

#[Object]
impl AssetQuery {
    /// The centre's assets, a page at a time.
    // The four Relay arguments, a filter and an ordering are the public API.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        guard = "RoleGuard::new(ANY_ROLE)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn assets(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Rows after this cursor.")] after: Option<String>,
        #[graphql(desc = "Rows before this cursor.")] before: Option<String>,
        #[graphql(desc = "How many rows from the start (at most 100).")] first: Option<i32>,
        #[graphql(desc = "How many rows from the end (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Which assets to list.")] filter: Option<AssetFilter>,
        #[graphql(desc = "The ordering; by name when absent.")] order_by: Option<AssetOrder>,
    ) -> async_graphql::Result<Connection<Asset>> {
        let app = ctx.app()?.clone();
        let filter = filter.unwrap_or_default();
        let range = filter.created_at.unwrap_or_default();
        let filter = DbAssetFilter {
            categories: filter.category.unwrap_or_default(),
            statuses: filter.status.unwrap_or_default(),
            assigned_to: filter
                .assigned_to
                .as_ref()
                .map(|id| {
                    user_id(id).map_err(|_| {
                        ApiError::bad_input("filter.assignedTo", "this is not a user id")
                    })
                })
                .transpose()?,
            search: search_pattern(filter.search, "filter.search")?,
            created_from: range.from.map(Into::into),
            created_to: range.to.map(Into::into),
        };
        let (field, direction) = order_by.map(|o| (o.field, o.direction)).unwrap_or_default();
        let ordering = match field {
            AssetOrderField::Name => ("name", "assets:NAME"),
            AssetOrderField::CreatedAt => ("createdAt", "assets:CREATED_AT"),
            AssetOrderField::UpdatedAt => ("updatedAt", "assets:UPDATED_AT"),
            AssetOrderField::Value => ("value.amountMinor", "assets:VALUE"),
        };
        let list = PageArgs {
            first,
            after,
            last,
            before,
        }
        .listing(&app, ordering, direction)?;
        let page = app
            .db
            .assets()
            .page(&filter, list.sort, list.window.clone())
            .await
            .map_err(ApiError::from)?;
        prefetch_assignees(ctx, &page.rows).await?;
        let count = app
            .db
            .assets()
            .count_query(&filter)
            .map_err(ApiError::from)?;
        Ok(list.connection(&app, page, Asset::new, count))
    }

    /// One asset by id.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn asset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The asset's global id.")] id: ID,
    ) -> async_graphql::Result<Asset> {
        let id = asset_id(&id)?;
        Ok(Asset::new(ctx.app()?.db.assets().get(id).await.found()?))
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
        check_dates(purchase_date.as_deref(), warranty_until.as_deref())?;
        let create = AssetForCreate {
            name: asset_name(&input.name)?,
            category: input.category,
            value: input.value.parse("input.value")?,
            serial_number: input.serial_number.as_deref().map(serial).transpose()?,
            status: input.status.unwrap_or_default(),
            location: input.location.as_deref().map(location).transpose()?,
            purchase_date,
            warranty_until,
            assigned_to: match &input.assigned_to_id {
                Some(id) => Some(assignee(ctx, id).await?),
                None => None,
            },
        };
        let app = ctx.app()?;
        let record = app
            .db
            .assets()
            .create(create)
            .await
            .map_err(ApiError::from)?;
        let after = bson::to_document(&record).map_err(ApiError::internal)?;
        let assets = app.db.assets();
        audit_change(
            ctx,
            "asset.create",
            "Asset",
            Some(record.id.to_hex()),
            diff(None, Some(&after)),
            assets.remove(record.id),
        )
        .await?;
        Ok(publish(ctx, ChangeKind::Created, record)?)
    }

    /// Changes an asset (ADMIN, MANAGER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn update_asset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The global id of the object.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateAssetInput,
    ) -> async_graphql::Result<Asset> {
        let id = asset_id(&id)?;
        let app = ctx.app()?;
        let before = app.db.assets().get(id).await.found()?;
        let mut change = AssetForUpdate {
            name: required(input.name, "input.name", |n| asset_name(&n))?,
            category: required(input.category, "input.category", Ok)?,
            value: required(input.value, "input.value", |v| v.parse("input.value"))?,
            status: required(input.status, "input.status", Ok)?,
            ..Default::default()
        };
        change.serial_number = clearable(input.serial_number, |s| serial(&s))?;
        change.location = clearable(input.location, |s| location(&s))?;
        change.purchase_date = clearable(input.purchase_date, |d| Ok(d.to_stored()))?;
        change.warranty_until = clearable(input.warranty_until, |d| Ok(d.to_stored()))?;
        change.assigned_to = match input.assigned_to_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(id) => Some(Some(assignee(ctx, &id).await?)),
        };
        let purchase = change
            .purchase_date
            .clone()
            .unwrap_or_else(|| before.purchase_date.clone());
        let warranty = change
            .warranty_until
            .clone()
            .unwrap_or_else(|| before.warranty_until.clone());
        check_dates(purchase.as_deref(), warranty.as_deref())?;
        let after = app.db.assets().update(id, &change).await.found()?;
        let changes = diff(
            Some(&bson::to_document(&before).map_err(ApiError::internal)?),
            Some(&bson::to_document(&after).map_err(ApiError::internal)?),
        );
        let assets = app.db.assets();
        let undo = assets.restore(&before);
        audit_change(
            ctx,
            "asset.update",
            "Asset",
            Some(id.to_hex()),
            changes,
            undo,
        )
        .await?;
        Ok(publish(ctx, ChangeKind::Updated, after)?)
    }

    /// Deletes an asset (ADMIN, MANAGER); returns its id.
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn delete_asset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The asset's global id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let oid = asset_id(&id)?;
        let app = ctx.app()?;
        let before = app.db.assets().delete(oid).await.found()?;
        let doc = bson::to_document(&before).map_err(ApiError::internal)?;
        let assets = app.db.assets();
        audit_change(
            ctx,
            "asset.delete",
            "Asset",
            Some(oid.to_hex()),
            diff(Some(&doc), None),
            assets.restore(&before),
        )
        .await?;
        publish(ctx, ChangeKind::Deleted, before)?;
        Ok(id)
    }
}

/// Loads the page's assignees in one batch when the query asks for them, so
/// the count of database commands does not depend on resolver timing.
async fn prefetch_assignees(
    ctx: &Context<'_>,
    rows: &[(crate::db::page::Position, AssetRecord)],
) -> ApiResult<()> {
    let look = ctx.look_ahead();
    let wanted = look
        .field("edges")
        .field("node")
        .field("assignedTo")
        .exists()
        || look.field("nodes").field("assignedTo").exists();
    if !wanted {
        return Ok(());
    }
    let ids: Vec<ObjectId> = rows.iter().filter_map(|(_, r)| r.assigned_to).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let loader = ctx.loaders()?.by_id::<crate::db::users::UserRecord>();
    loader
        .load_many(ids)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("loading users failed: {e}")))?;
    Ok(())
}

fn publish(ctx: &Context<'_>, kind: ChangeKind, record: AssetRecord) -> ApiResult<Asset> {
    let record = Arc::new(record);
    ctx.app()?.bus.publish(Event::Asset {
        kind,
        asset: record.clone(),
    });
    Ok(Asset::new(record))
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
                    Ok(Event::Asset { kind, asset }) => yield AssetEvent { kind, asset: Asset::new(asset) },
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow subscriber missed asset events");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}
