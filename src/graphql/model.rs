//! The GraphQL half of the model machinery: what a node type declares
//! (`ApiModel`), and the resolvers every model shares instead of writing
//! its own — the list, the child list, the single read, loading a
//! reference, and the audited write (write → diff → audit entry, undone
//! when the entry cannot be written → event).

use std::sync::Arc;

use async_graphql::{Context, ID};
use bson::oid::ObjectId;
use bson::{Document, doc};

use super::context::{ContextExt, audit_change};
use super::loaders::ChildQuery;
use super::pagination::{Connection, Listed, OrderDirection, PageArgs, Total};
use crate::db::audit::{diff, redact_fields};
use crate::db::model::{Model, OrderField};
use crate::db::store::{Record, Store};
use crate::db::{DbError, DbResult};
use crate::domain::{GlobalId, NodeKind};
use crate::error::{ApiError, ApiResult};
use crate::events::{ChangeKind, Event, Snapshot};

/// A GraphQL node type backed by a stored model.
pub trait ApiModel: Listed {
    type Record: Model;
    const KIND: NodeKind;
    fn wrap(record: Arc<Self::Record>) -> Self;
    fn record(&self) -> &Self::Record;

    /// The node's global id.
    fn global_id(&self) -> ID {
        ID(GlobalId::new(Self::KIND, self.record().id()).encode())
    }
}

/// The database id inside a global id of `N`; any other id is `NOT_FOUND`.
pub fn decode<N: ApiModel>(id: &ID) -> ApiResult<ObjectId> {
    GlobalId::decode_as(id.as_str(), N::KIND).ok_or(ApiError::NotFound)
}

/// An input field naming an `N`: a malformed or foreign id is `BAD_USER_INPUT`.
pub fn reference<N: ApiModel>(id: &ID, field: &str) -> ApiResult<ObjectId> {
    GlobalId::decode_as(id.as_str(), N::KIND).ok_or_else(|| {
        ApiError::bad_input(field, format!("this is not the id of a {}", N::KIND.name()))
    })
}

/// The global id of a row of kind `kind`.
pub fn global(kind: NodeKind, id: ObjectId) -> ID {
    ID(GlobalId::new(kind, id).encode())
}

fn loader_failed(error: Arc<DbError>) -> ApiError {
    match Arc::try_unwrap(error) {
        Ok(error) => ApiError::from(error),
        Err(shared) => ApiError::internal(anyhow::anyhow!("loading failed: {shared}")),
    }
}

/// A row by id through the request's loader and the caller's scope.
pub async fn load<N: ApiModel>(ctx: &Context<'_>, id: ObjectId) -> ApiResult<Option<N>> {
    let loader = ctx.loaders()?.by_id::<N::Record>();
    let found = loader.load_one(id).await.map_err(loader_failed)?;
    Ok(found.map(|r| N::wrap(Arc::new(r))))
}

/// A row that a stored reference names. One the caller may no longer see
/// (an enrolment handed to a colleague) is `NOT_FOUND`, like any hidden row.
pub async fn load_ref<N: ApiModel>(ctx: &Context<'_>, id: ObjectId) -> ApiResult<N> {
    load(ctx, id).await?.ok_or(ApiError::NotFound)
}

/// Several rows by id, in one batch; the ones the caller may see.
pub async fn load_many<N: ApiModel>(ctx: &Context<'_>, ids: &[ObjectId]) -> ApiResult<Vec<N>> {
    let loader = ctx.loaders()?.by_id::<N::Record>();
    let found = loader
        .load_many(ids.iter().copied())
        .await
        .map_err(loader_failed)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned())
        .map(|r| N::wrap(Arc::new(r)))
        .collect())
}

/// `x(id:)`: one row the caller may see, else `NOT_FOUND`.
pub async fn one<N: ApiModel>(ctx: &Context<'_>, id: &ID) -> ApiResult<N> {
    let id = decode::<N>(id)?;
    load(ctx, id).await?.ok_or(ApiError::NotFound)
}

/// The order of a list: the declared default (the first order field,
/// ascending) when the client names none.
pub fn ordering<O: OrderField>(order: Option<(O, OrderDirection)>) -> (O, bool) {
    match order {
        Some((field, direction)) => (field, direction == OrderDirection::Desc),
        None => (O::ALL[0], false),
    }
}

fn cursor_tag<M: Model>(order: M::Order) -> String {
    format!("{}:{}", M::COLLECTION, order.name())
}

/// Every top-level list: scope, filter, order, window, lazy count.
pub async fn list<N: ApiModel>(
    ctx: &Context<'_>,
    args: PageArgs,
    filter: Document,
    order: Option<(<N::Record as Model>::Order, OrderDirection)>,
) -> ApiResult<Connection<N>> {
    let app = ctx.app()?;
    let (order, descending) = ordering(order);
    let tag = cursor_tag::<N::Record>(order);
    let window = args.window(&app.cursors, &tag, &app.settings.graphql)?;
    let scoped = ctx.access()?.of::<N::Record>().await?;
    let page = scoped
        .page(filter.clone(), order, descending, window)
        .await?;
    let count = scoped.count_query(filter);
    // Later relation loads find these rows in the loader's cache.
    let loader = ctx.loaders()?.by_id::<N::Record>();
    loader.feed(page.rows.iter().map(|(_, r)| (r.id(), r.clone())));
    Ok(Connection::new(
        page,
        &app.cursors,
        &tag,
        |r| N::wrap(Arc::new(r)),
        Total::Later(count),
    ))
}

/// A parent's child list (`DisabilityProgram.enrollments`): batched across
/// every parent at this level of the query.
pub async fn children<N: ApiModel>(
    ctx: &Context<'_>,
    parent_field: &'static str,
    parent: ObjectId,
    args: PageArgs,
    filter: Document,
    order: Option<(<N::Record as Model>::Order, OrderDirection)>,
) -> ApiResult<Connection<N>> {
    let app = ctx.app()?;
    let (order, descending) = ordering(order);
    let tag = cursor_tag::<N::Record>(order);
    let window = args.window(&app.cursors, &tag, &app.settings.graphql)?;
    let query = Arc::new(ChildQuery::new(
        parent_field,
        filter,
        order,
        descending,
        window,
    ));
    let loader = ctx.loaders()?.children::<N::Record>();
    let found = loader
        .load_one(super::loaders::ChildKey { parent, query })
        .await
        .map_err(loader_failed)?;
    let Some(found) = found else {
        return Ok(Connection::new(
            crate::db::page::Page::empty(),
            &app.cursors,
            &tag,
            |r: N::Record| N::wrap(Arc::new(r)),
            Total::Known(0),
        ));
    };
    let page = crate::db::page::Page {
        rows: found.page.rows.clone(),
        has_next_page: found.page.has_next_page,
        has_previous_page: found.page.has_previous_page,
    };
    Ok(Connection::new(
        page,
        &app.cursors,
        &tag,
        |r| N::wrap(Arc::new(r)),
        Total::Known(found.total),
    ))
}

fn document<T: serde::Serialize>(record: &T) -> ApiResult<Document> {
    bson::to_document(record).map_err(ApiError::internal)
}

fn publish<M: Model>(ctx: &Context<'_>, kind: ChangeKind, record: Arc<M>) -> ApiResult<()> {
    ctx.app()?.bus.publish(Event::Record {
        entity: M::ENTITY,
        kind,
        id: record.id(),
        snapshot: Snapshot::of(record),
    });
    Ok(())
}

/// Audits and announces a row that is already stored; if the audit entry
/// cannot be written the row is removed again.
pub async fn created<N: ApiModel>(
    ctx: &Context<'_>,
    record: N::Record,
    action: &str,
) -> ApiResult<N> {
    created_with_undo(ctx, record, action, |_| async { Ok(()) }).await
}

/// Like `created`, with more to undo than the row itself (a claim it holds).
pub async fn created_with_undo<N, F, Fut>(
    ctx: &Context<'_>,
    record: N::Record,
    action: &str,
    undo_more: F,
) -> ApiResult<N>
where
    N: ApiModel,
    F: FnOnce(ObjectId) -> Fut,
    Fut: std::future::Future<Output = DbResult<()>>,
{
    let app = ctx.app()?;
    let id = record.id();
    let changes = redact_fields(
        diff(None, Some(&document(&record)?)),
        <N::Record as Model>::SENSITIVE,
    );
    let store = Store::<N::Record>::new(&app.db);
    let undo = async {
        store.remove(id).await?;
        undo_more(id).await
    };
    audit_change(
        ctx,
        action,
        <N::Record as Model>::ENTITY,
        Some(id.to_hex()),
        changes,
        undo,
    )
    .await?;
    let record = Arc::new(record);
    publish(ctx, ChangeKind::Created, record.clone())?;
    Ok(N::wrap(record))
}

/// Inserts a new row, audited; a unique-index clash is `CONFLICT` with `clash`.
pub async fn insert<N: ApiModel>(
    ctx: &Context<'_>,
    record: N::Record,
    action: &str,
    clash: &str,
) -> ApiResult<N> {
    Store::<N::Record>::new(&ctx.app()?.db)
        .insert(&record, clash)
        .await?;
    created(ctx, record, action).await
}

/// Sets fields of a row the caller has read (`before`), audited with the
/// fields that changed; restored when the audit entry cannot be written.
pub async fn update<N: ApiModel>(
    ctx: &Context<'_>,
    before: &N::Record,
    mut set: Document,
    action: &str,
    clash: &str,
) -> ApiResult<N> {
    set.insert("updatedAt", bson::DateTime::now());
    let store = Store::<N::Record>::new(&ctx.app()?.db);
    let after = store
        .set(before.id(), set, clash)
        .await?
        .ok_or(ApiError::NotFound)?;
    changed(ctx, before, after, action, store.restore(before)).await
}

/// Audits and announces a change already stored; `undo` takes it back when
/// the audit entry cannot be written.
pub async fn changed<N: ApiModel>(
    ctx: &Context<'_>,
    before: &N::Record,
    after: N::Record,
    action: &str,
    undo: impl std::future::Future<Output = DbResult<()>>,
) -> ApiResult<N> {
    let changes = redact_fields(
        diff(Some(&document(before)?), Some(&document(&after)?)),
        <N::Record as Model>::SENSITIVE,
    );
    audit_change(
        ctx,
        action,
        <N::Record as Model>::ENTITY,
        Some(after.id().to_hex()),
        changes,
        undo,
    )
    .await?;
    let after = Arc::new(after);
    publish(ctx, ChangeKind::Updated, after.clone())?;
    Ok(N::wrap(after))
}

/// Deletes a row the caller has read, audited; put back when the audit
/// entry cannot be written.
pub async fn delete<N: ApiModel>(
    ctx: &Context<'_>,
    before: &N::Record,
    action: &str,
) -> ApiResult<ID> {
    let store = Store::<N::Record>::new(&ctx.app()?.db);
    store.delete(before.id()).await?.ok_or(ApiError::NotFound)?;
    let changes = redact_fields(
        diff(Some(&document(before)?), None),
        <N::Record as Model>::SENSITIVE,
    );
    audit_change(
        ctx,
        action,
        <N::Record as Model>::ENTITY,
        Some(before.id().to_hex()),
        changes,
        store.restore(before),
    )
    .await?;
    publish(ctx, ChangeKind::Deleted, Arc::new(before.clone()))?;
    Ok(global(N::KIND, before.id()))
}

/// A `$set` document from `(field, value)` pairs that are present.
pub fn set_fields(pairs: Vec<(&str, Option<bson::Bson>)>) -> Document {
    let mut set = doc! {};
    for (field, value) in pairs {
        if let Some(value) = value {
            set.insert(field, value);
        }
    }
    set
}
