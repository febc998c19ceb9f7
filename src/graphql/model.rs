//! The GraphQL half of the model machinery: what a node type declares
//! (`ApiModel`), and the resolvers every model shares instead of writing
//! its own — the list, the child list, the single read, loading a
//! reference, and the audited write (outbox intent → write → audit entry,
//! undone when the entry cannot be written → analytics, webhook deliveries
//! and the bus event).

use std::sync::Arc;

use async_graphql::{Context, ID, Lookahead};
use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::future::BoxFuture;

use super::context::ContextExt;
use super::loaders::ChildQuery;
use super::pagination::{Connection, Listed, OrderDirection, PageArgs, Total};
use crate::auth::Caller;
use crate::db::model::{Model, OrderField};
use crate::db::outbox::{Entry, Outbox, State as OutboxState};
use crate::db::page::Page;
use crate::db::store::{ForUpdate, Record, Store};
use crate::db::{DbError, DbResult};
use crate::domain::{Actor, GlobalId, NodeKind};
use crate::error::{ApiError, ApiResult};
use crate::events::{ChangeKind, Snapshot};
use crate::models::audit_log_entry::changes::Redaction;

/// A GraphQL node type backed by a stored model.
pub trait ApiModel: Listed {
    type Record: Model;
    /// The record's kind (declared once, by the record's `Model`).
    const KIND: NodeKind = <Self::Record as Model>::KIND;
    fn wrap(record: Arc<Self::Record>) -> Self;
    fn record(&self) -> &Self::Record;

    /// Loads for a page of these rows, a command per relation, the rows
    /// they name in the fields that `node` (the selection on each row)
    /// follows, so those fields find them cached instead of gathering a
    /// batch row by row. Models without references follow nothing.
    fn prefetch(
        _ctx: &Context<'_>,
        _node: &Lookahead<'_>,
        _rows: &[&Self::Record],
    ) -> Vec<BoxFuture<'static, ()>> {
        Vec::new()
    }

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
    Ok(found.map(N::wrap))
}

/// The row an optional reference names, when it names one (see `load`).
pub async fn load_some<N: ApiModel>(
    ctx: &Context<'_>,
    id: Option<ObjectId>,
) -> ApiResult<Option<N>> {
    match id {
        Some(id) => load(ctx, id).await,
        None => Ok(None),
    }
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
        .map(N::wrap)
        .collect())
}

/// For `ApiModel::prefetch`: loads the `N` rows named by `ids` in one
/// command. A failure is left to the fields, which then load them as usual.
pub fn preload<N: ApiModel>(
    ctx: &Context<'_>,
    ids: impl Iterator<Item = ObjectId>,
) -> Option<BoxFuture<'static, ()>> {
    let loader = ctx.loaders().ok()?.by_id::<N::Record>();
    let ids: Vec<ObjectId> = ids.collect();
    Some(Box::pin(async move {
        let _ = loader.preload(ids).await;
    }))
}

/// The selection on each row of the connection being resolved, through
/// `edges { node }` and `nodes` alike.
fn row_selection<'a>(ctx: &'a Context<'a>) -> Option<Lookahead<'a>> {
    let list = ctx.look_ahead();
    let mut fields = list.field("edges").field("node").selection_fields();
    fields.extend(list.field("nodes").selection_fields());
    Lookahead::try_from(fields.as_slice()).ok()
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

/// Every top-level list: scope, filter, order, window, and the count. When
/// the selection asks for `totalCount`, the count runs beside the page
/// and its references instead of after them (the same commands, one wait
/// fewer); otherwise it runs only if `totalCount` is resolved after all.
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
    let count = scoped.count_query(filter.clone())?;
    let rows = async {
        let page = scoped.page(filter, order, descending, window).await?;
        let page = Page {
            rows: page
                .rows
                .into_iter()
                .map(|(position, record)| (position, Arc::new(record)))
                .collect(),
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
        };
        // Later relation loads find these rows (shared, not copied) in the loader's cache.
        let loader = ctx.loaders()?.by_id::<N::Record>();
        let fed: Vec<_> = page.rows.iter().map(|(_, r)| (r.id(), r.clone())).collect();
        loader.feed(fed).await;
        if let Some(node) = row_selection(ctx) {
            let rows: Vec<&N::Record> = page.rows.iter().map(|(_, r)| r.as_ref()).collect();
            let loads = N::prefetch(ctx, &node, &rows);
            futures::future::join_all(loads).await;
        }
        ApiResult::Ok(page)
    };
    let (page, total) = if ctx.look_ahead().field("totalCount").exists() {
        let (page, counted) = futures::future::join(rows, count.run()).await;
        // A failed count is run again by `totalCount`, which reports its error.
        let total = counted.map_or(Total::Later(count), Total::Known);
        (page?, total)
    } else {
        (rows.await?, Total::Later(count))
    };
    Ok(Connection::new(page, &app.cursors, &tag, N::wrap, total))
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

/// An audited write under way: its outbox entry, stored before the write
/// so that a crash after the write still gets its audit entry, analytics,
/// deliveries and event (see `live::outbox`).
pub struct Pending {
    entry: Entry,
}

/// Records the intent to change row `id` of `M` (`before` for updates and
/// deletions; `stamp`, the `updatedAt` an update writes). The write follows.
pub async fn intend<M: Model>(
    ctx: &Context<'_>,
    kind: ChangeKind,
    id: ObjectId,
    before: Option<&M>,
    stamp: Option<DateTime>,
    action: &str,
) -> ApiResult<Pending> {
    let request = ctx.request()?;
    let actor = match &request.caller {
        Caller::User(p) => Actor::user(p.id),
        Caller::Anonymous => Actor::anonymous(),
    };
    let before = before.map(document).transpose()?;
    let prev_stamp = before
        .as_ref()
        .and_then(|b| b.get_datetime("updatedAt").ok().copied());
    let redaction = Redaction::of::<M>();
    let owned = |fields: &[&str]| fields.iter().map(|f| f.to_string()).collect::<Vec<_>>();
    let subject = match (M::SUBJECT, &before) {
        (Some("_id"), _) => Some(id),
        (Some(path), Some(row)) => row.get_object_id(path).ok(),
        _ => None,
    };
    let entry = Entry {
        id: ObjectId::new(),
        state: OutboxState::Intent,
        at: DateTime::now(),
        entity: M::ENTITY.to_string(),
        collection: M::COLLECTION.to_string(),
        entity_id: id,
        kind: kind.as_str().to_string(),
        action: action.to_string(),
        actor,
        request_id: Some(request.request_id.clone()),
        sensitive: redaction.redacted,
        unaudited: Some(redaction.omitted),
        secret: M::SECRET.iter().map(|f| f.to_string()).collect(),
        internal: M::INTERNAL.iter().map(|f| f.to_string()).collect(),
        subject_path: M::SUBJECT.map(str::to_string),
        subject,
        personal: owned(M::PERSONAL),
        sealed: owned(M::SEALED),
        public: owned(M::PUBLIC),
        before,
        stamp,
        prev_stamp,
    };
    Outbox::new(&ctx.app()?.db).intend(&entry).await?;
    Ok(Pending { entry })
}

impl Pending {
    /// The write did not happen.
    pub async fn abandon(self, ctx: &Context<'_>) {
        if let Ok(app) = ctx.app()
            && let Err(error) = Outbox::new(&app.db).void(self.entry.id).await
        {
            tracing::warn!(%error, "marking an outbox intent void failed; recovery will settle it");
        }
    }
}

/// Runs a write under an intent: voids the intent when the write fails.
pub async fn attempt<T>(
    ctx: &Context<'_>,
    pending: Pending,
    write: impl std::future::Future<Output = ApiResult<T>>,
) -> ApiResult<(Pending, T)> {
    match write.await {
        Ok(done) => Ok((pending, done)),
        Err(error) => {
            pending.abandon(ctx).await;
            Err(error)
        }
    }
}

/// The fields of `M` a bus event leaves out: secrets, and personal data
/// (subscribers read a person's row again, through their own scope).
fn hidden<M: Model>() -> Vec<&'static str> {
    M::SECRET.iter().chain(M::PERSONAL).copied().collect()
}

/// After the write: the audit entry (if it cannot be written, `undo` takes
/// the write back and the request fails), then analytics, deliveries and
/// the event (if those fail, recovery finishes them).
async fn settle<M: Model>(
    ctx: &Context<'_>,
    pending: Pending,
    after: Option<&M>,
    shown: Arc<M>,
    undo: impl std::future::Future<Output = DbResult<()>>,
) -> ApiResult<()> {
    let app = ctx.app()?;
    let after = after.map(document).transpose()?;
    let changes = match crate::live::outbox::audit(app, &pending.entry, after.as_ref()).await {
        Ok(changes) => changes,
        Err(error) => {
            let action = pending.entry.action.clone();
            if let Err(undo_error) = undo.await {
                tracing::error!(%undo_error, action, "the audit entry failed and the change could not be undone");
            } else {
                tracing::warn!(action, "the audit entry failed; the change was undone");
            }
            pending.abandon(ctx).await;
            return Err(error.into());
        }
    };
    let mut row = document(&*shown)?;
    for field in M::SECRET {
        row.remove(*field);
    }
    let snapshot = Snapshot::of(shown, &hidden::<M>()).map_err(ApiError::internal)?;
    if let Err(error) =
        crate::live::outbox::follow(app, &pending.entry, &changes, &row, snapshot).await
    {
        tracing::warn!(%error, action = %pending.entry.action, "the change is stored and audited; its events follow on recovery");
    }
    Ok(())
}

/// Audits and announces a row stored under `pending`; if the audit entry
/// cannot be written the row is removed again.
pub async fn created<N: ApiModel>(
    ctx: &Context<'_>,
    pending: Pending,
    record: N::Record,
) -> ApiResult<N> {
    created_with_undo(ctx, pending, record, |_| async { Ok(()) }).await
}

/// Like `created`, with more to undo than the row itself (a claim it holds).
pub async fn created_with_undo<N, F, Fut>(
    ctx: &Context<'_>,
    pending: Pending,
    record: N::Record,
    undo_more: F,
) -> ApiResult<N>
where
    N: ApiModel,
    F: FnOnce(ObjectId) -> Fut,
    Fut: std::future::Future<Output = DbResult<()>>,
{
    let app = ctx.app()?;
    let id = record.id();
    let store = Store::<N::Record>::new(&app.db);
    let undo = async {
        store.remove(id).await?;
        undo_more(id).await
    };
    let record = Arc::new(record);
    settle(ctx, pending, Some(&*record), record.clone(), undo).await?;
    Ok(N::wrap(record))
}

/// Inserts a new row, audited; a unique-index clash is `CONFLICT` with `clash`.
pub async fn insert<N: ApiModel>(
    ctx: &Context<'_>,
    record: N::Record,
    action: &str,
    clash: &str,
) -> ApiResult<N> {
    let pending =
        intend::<N::Record>(ctx, ChangeKind::Created, record.id(), None, None, action).await?;
    let store = Store::<N::Record>::new(&ctx.app()?.db);
    let (pending, ()) = attempt(ctx, pending, async {
        Ok(store.insert(&record, clash).await?)
    })
    .await?;
    created(ctx, pending, record).await
}

/// Sets fields of a row the caller has read (`before`), audited with the
/// fields that changed; restored when the audit entry cannot be written.
pub async fn update<N: ApiModel>(
    ctx: &Context<'_>,
    before: &N::Record,
    change: impl ForUpdate,
    action: &str,
    clash: &str,
) -> ApiResult<N> {
    let stamp = DateTime::now();
    let mut set = change.to_set()?;
    set.insert("updatedAt", stamp);
    let pending = intend(
        ctx,
        ChangeKind::Updated,
        before.id(),
        Some(before),
        Some(stamp),
        action,
    )
    .await?;
    let store = Store::<N::Record>::new(&ctx.app()?.db);
    let (pending, after) = attempt(ctx, pending, async {
        store
            .set(before.id(), set, clash)
            .await?
            .ok_or(ApiError::NotFound)
    })
    .await?;
    changed(ctx, pending, before, after, store.restore(before)).await
}

/// The `updatedAt` stamp an update under an intent writes.
pub fn stamp() -> DateTime {
    DateTime::now()
}

/// Audits and announces a change stored under `pending`; `undo` takes it
/// back when the audit entry cannot be written.
pub async fn changed<N: ApiModel>(
    ctx: &Context<'_>,
    pending: Pending,
    _before: &N::Record,
    after: N::Record,
    undo: impl std::future::Future<Output = DbResult<()>>,
) -> ApiResult<N> {
    let after = Arc::new(after);
    settle(ctx, pending, Some(&*after), after.clone(), undo).await?;
    Ok(N::wrap(after))
}

/// Deletes a row the caller has read, audited; put back when the audit
/// entry cannot be written.
pub async fn delete<N: ApiModel>(
    ctx: &Context<'_>,
    before: &N::Record,
    action: &str,
) -> ApiResult<ID> {
    let pending = intend(
        ctx,
        ChangeKind::Deleted,
        before.id(),
        Some(before),
        None,
        action,
    )
    .await?;
    let store = Store::<N::Record>::new(&ctx.app()?.db);
    let (pending, _) = attempt(ctx, pending, async {
        store.delete(before.id()).await?.ok_or(ApiError::NotFound)
    })
    .await?;
    let shown = Arc::new(before.clone());
    settle::<N::Record>(ctx, pending, None, shown, store.restore(before)).await?;
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
