//! The model machinery every collection shares. A model declares once what
//! it is (`Model`: collection, entity name, order fields, extra indexes,
//! fields kept out of the audit log, and its row scope); `Access` is the
//! per-request handle that carries the caller, so every read through it —
//! lists, counts, single rows, batches, child lists — sees only the rows the
//! caller may see. Rows outside the scope behave as rows that do not exist.

use std::any::TypeId;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bson::oid::ObjectId;
use bson::{Bson, Document, RawDocument, doc};
use futures::TryStreamExt;
use mongodb::options::FindOptions;
use tokio::sync::OnceCell;

use super::page::{self, Page, Position, Sort, Window};
use super::store::{CountQuery, Record, Store};
use super::{Db, DbError, DbResult};
use crate::domain::{NodeKind, Role};
use crate::events::{ChangeKind, Event, Snapshot};

/// How many child keys the first batch of a child-list read holds.
const KEY_BATCH: u32 = 100_000;

/// An order a list can be read in. Declared with `order_fields!`, which also
/// gives every field an index `{path: 1, _id: 1}` (see `Model::indexes`).
pub trait OrderField: Copy + Eq + Send + Sync + std::fmt::Debug + 'static {
    const ALL: &'static [Self];
    /// The document path sorted on.
    fn path(self) -> &'static str;
    /// The name in the API (`CREATED_AT`); also part of the cursor tag.
    fn name(self) -> &'static str;
}

/// Declares a model's order fields: `Variant = "API_NAME" => "document.path"`.
#[macro_export]
macro_rules! order_fields {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $api:literal => $path:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $crate::db::model::OrderField for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn path(self) -> &'static str {
                match self { $(Self::$variant => $path),+ }
            }
            fn name(self) -> &'static str {
                match self { $(Self::$variant => $api),+ }
            }
        }
    };
}

/// One index a model needs.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    pub collection: &'static str,
    pub name: String,
    pub keys: Document,
    pub unique: bool,
}

/// Who is reading: the data layer's view of the signed-in caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewer {
    pub id: ObjectId,
    pub role: Role,
    /// An API key's scopes (`None` for a person): it reads a model only
    /// with that model's read scope.
    pub scopes: Option<crate::domain::scopes::Scopes>,
}

impl Viewer {
    pub fn is_manager(&self) -> bool {
        self.role.is_staff_manager()
    }
}

/// Which rows of a collection a caller may see: all, none, or those where
/// one of the clauses holds (`field` equals one of `values`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    All,
    Nothing,
    AnyOf(Vec<Clause>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: &'static str,
    pub values: Vec<Bson>,
}

impl Clause {
    pub fn equals(field: &'static str, value: impl Into<Bson>) -> Self {
        Self {
            field,
            values: vec![value.into()],
        }
    }
}

impl Scope {
    /// `filter` narrowed to the scope; `None` when nothing can match.
    pub fn narrow(&self, filter: Document) -> Option<Document> {
        match self {
            Self::All => Some(filter),
            Self::Nothing => None,
            Self::AnyOf(clauses) => {
                let any: Vec<Document> = clauses
                    .iter()
                    .filter(|c| !c.values.is_empty())
                    .map(|c| doc! { c.field: { "$in": c.values.clone() } })
                    .collect();
                if any.is_empty() {
                    return None;
                }
                let scope = doc! { "$or": any };
                Some(if filter.is_empty() {
                    scope
                } else {
                    doc! { "$and": [filter, scope] }
                })
            }
        }
    }

    /// Whether a stored row (raw BSON) is in the scope (checked in memory
    /// after a read by id, which the server answers fastest with a bare
    /// `_id` filter).
    pub fn admits(&self, document: &RawDocument) -> bool {
        match self {
            Self::All => true,
            Self::Nothing => false,
            Self::AnyOf(clauses) => clauses.iter().any(|c| {
                document
                    .get(c.field)
                    .ok()
                    .flatten()
                    .and_then(|v| Bson::try_from(v).ok())
                    .is_some_and(|v| c.values.contains(&v))
            }),
        }
    }
}

/// The bus event that announces `kind` of `row` to subscriptions and other
/// instances, its `SECRET` and `PERSONAL` fields left out; `None` if it
/// does not serialise.
pub fn change_event<M: Model>(kind: ChangeKind, row: M) -> Option<Event> {
    let id = row.id();
    let hidden: Vec<&str> = M::SECRET.iter().chain(M::PERSONAL).copied().collect();
    let snapshot = Snapshot::of(Arc::new(row), &hidden).ok()?;
    Some(Event::record(M::ENTITY, kind, id, snapshot))
}

/// A stored model: what the machinery needs to list, load, audit and index it.
pub trait Model: Record {
    /// The node kind: its name is the one in audit entries, events and
    /// global ids (`DisabilityProgram`).
    const KIND: NodeKind;
    /// `KIND`'s name.
    const ENTITY: &'static str = Self::KIND.name();
    /// Field names whose values never enter the audit log.
    const SENSITIVE: &'static [&'static str] = &[];
    /// Field names left out of the audit log altogether: stored-only keys
    /// whose changes tell a reader nothing (`SENSITIVE` ones are listed, redacted).
    const UNAUDITED: &'static [&'static str] = &[];
    /// Field names whose values never leave the process (not on the event
    /// bus across instances, not in webhooks).
    const SECRET: &'static [&'static str] = &[];
    /// Stored-only fields (uniqueness keys) left out of webhook payloads.
    const INTERNAL: &'static [&'static str] = &[];
    /// Fields stored sealed under the data key of the row's person
    /// (`SUBJECT`): unreadable without the key, unreadable for good once
    /// erasure destroys it.
    const SEALED: &'static [&'static str] = &[];
    /// Where the row names the person its personal data is about (`_id`
    /// for a beneficiary, `beneficiaryId` for their sessions), if anyone.
    const SUBJECT: Option<&'static str> = None;
    /// Fields that identify the row's person or describe their health:
    /// never on the event channel or in a webhook payload (unless ADMIN
    /// grants the webhook personal data, and then never the `SENSITIVE`
    /// or `SEALED` ones), sealed in audit entries.
    const PERSONAL: &'static [&'static str] = &[];
    /// Fields a webhook payload carries besides the id, kind and the names
    /// of the changed fields (an asset's name, a programme's status).
    const PUBLIC: &'static [&'static str] = &[];
    /// The guarded fields: who may read each stored path (`(path, roles)`,
    /// a path guarding everything under it). Fields not listed are read by
    /// whoever sees the row. A filter, an ordering, a count or a cursor that
    /// reads a guarded field carries its guard: `Scoped` refuses them to
    /// other roles (`DbError::Forbidden`) before any command is sent. The
    /// API's field guards name the same roles; a test walks every model's
    /// filters and orderings against every role to hold the two together.
    const READERS: &'static [(&'static str, &'static [Role])] = &[];
    type Order: OrderField;

    /// Indexes beyond one per order field (uniqueness, relation fields).
    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        Vec::new()
    }

    /// Every index the model needs: one behind each order field, then the extras.
    fn indexes() -> Vec<IndexSpec> {
        let mut all: Vec<IndexSpec> = Self::Order::ALL
            .iter()
            .map(|o| IndexSpec {
                collection: Self::COLLECTION,
                name: format!("order_{}", o.path().replace('.', "_")),
                keys: doc! { o.path(): 1, "_id": 1 },
                unique: false,
            })
            .collect();
        for (name, keys, unique) in Self::extra_indexes() {
            all.push(IndexSpec {
                collection: Self::COLLECTION,
                name: name.to_string(),
                keys,
                unique,
            });
        }
        all
    }

    /// The rows `access`'s caller may see. The default: every signed-in caller sees all.
    fn scope(access: &Access) -> impl Future<Output = DbResult<Scope>> + Send {
        let scope = if access.viewer().is_some() {
            Scope::All
        } else {
            Scope::Nothing
        };
        async move { Ok(scope) }
    }
}

/// The per-request data-layer handle: the database and the caller. Scopes
/// are worked out once per request and model.
#[derive(Clone)]
pub struct Access {
    db: Db,
    viewer: Option<Viewer>,
    scopes: Arc<Mutex<HashMap<TypeId, Arc<OnceCell<Scope>>>>>,
}

impl Access {
    pub fn new(db: Db, viewer: Option<Viewer>) -> Self {
        Self {
            db,
            viewer,
            scopes: Arc::default(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn viewer(&self) -> Option<&Viewer> {
        self.viewer.as_ref()
    }

    /// The collection of `T` as this caller sees it; an API key without
    /// `T`'s read scope sees none of it (`DbError::Forbidden`).
    pub async fn of<T: Model>(&self) -> DbResult<Scoped<T>> {
        if let Some(scopes) = self.viewer.and_then(|v| v.scopes)
            && !scopes.may_read(T::KIND)
        {
            return Err(DbError::Forbidden(
                crate::domain::scopes::read_scope(T::KIND).to_string(),
            ));
        }
        let cell = {
            let mut scopes = self
                .scopes
                .lock()
                .map_err(|_| DbError::Other(anyhow::anyhow!("scope cache poisoned")))?;
            scopes.entry(TypeId::of::<T>()).or_default().clone()
        };
        let scope = cell.get_or_try_init(|| T::scope(self)).await?.clone();
        Ok(Scoped {
            store: Store::new(&self.db),
            scope,
            role: self.viewer.as_ref().map(|v| v.role),
        })
    }
}

/// A collection seen through a caller's scope.
pub struct Scoped<T> {
    store: Store<T>,
    scope: Scope,
    /// The caller's role, for `Model::READERS`.
    role: Option<Role>,
}

/// The stored paths a filter reads: its keys, and those of the clauses
/// under `$and`, `$or` and `$nor` (operators such as `$in` are values).
pub fn paths_read(filter: &Document) -> Vec<&str> {
    let mut paths = Vec::new();
    let mut pending = vec![filter];
    while let Some(document) = pending.pop() {
        for (key, value) in document {
            if !key.starts_with('$') {
                paths.push(key.as_str());
                continue;
            }
            if let Bson::Array(clauses) = value {
                pending.extend(clauses.iter().filter_map(Bson::as_document));
            }
        }
    }
    paths
}

/// The guard of `M` over `path`: the roles that may read it, when guarded.
pub fn readers_of<M: Model>(path: &str) -> Option<&'static [Role]> {
    M::READERS.iter().find_map(|(field, roles)| {
        let covers = path == *field
            || path
                .strip_prefix(field)
                .is_some_and(|rest| rest.starts_with('.'));
        covers.then_some(*roles)
    })
}

/// The rows of one parent's child list, and how many there are in all.
#[derive(Debug)]
pub struct ChildPage<T> {
    pub page: Page<T>,
    pub total: u64,
}

impl<T: Model> Scoped<T> {
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn store(&self) -> &Store<T> {
        &self.store
    }

    /// One row by id; `None` when absent or outside the scope.
    pub async fn get(&self, id: ObjectId) -> DbResult<Option<T>> {
        if self.scope == Scope::Nothing {
            return Ok(None);
        }
        let found = self.store.find_one_raw(doc! { "_id": id }).await?;
        match found {
            Some(document) if self.scope.admits(&document) => Ok(Some(T::from_raw(&document)?)),
            _ => Ok(None),
        }
    }

    /// The rows with these ids that the caller may see, in one command.
    pub async fn get_many(&self, ids: &[ObjectId]) -> DbResult<Vec<T>> {
        if ids.is_empty() || self.scope == Scope::Nothing {
            return Ok(Vec::new());
        }
        let docs = self.store.find_by_ids(ids).await?;
        docs.iter()
            .filter(|d| self.scope.admits(d))
            .map(|d| T::from_raw(d))
            .collect()
    }

    /// Refuses a filter or ordering that reads a field the caller may not
    /// read (`Model::READERS`); checked before the scope is added, whose
    /// clauses are the server's own.
    pub fn may_read(&self, filter: &Document, order: Option<T::Order>) -> DbResult<()> {
        let order = order.map(|o| o.path());
        for path in paths_read(filter).into_iter().chain(order) {
            if let Some(roles) = readers_of::<T>(path)
                && !self.role.is_some_and(|role| roles.contains(&role))
            {
                return Err(DbError::Forbidden(path.to_string()));
            }
        }
        Ok(())
    }

    /// One page of the rows matching `filter`.
    pub async fn page(
        &self,
        filter: Document,
        order: T::Order,
        descending: bool,
        window: Window,
    ) -> DbResult<Page<T>> {
        self.may_read(&filter, Some(order))?;
        let Some(filter) = self.scope.narrow(filter) else {
            return Ok(Page::empty());
        };
        let sort = Sort {
            path: order.path(),
            descending,
        };
        self.store.page(filter, sort, window).await
    }

    /// A count of the rows matching `filter`, run only when asked for.
    pub fn count_query(&self, filter: Document) -> DbResult<CountQuery> {
        self.may_read(&filter, None)?;
        Ok(match self.scope.narrow(filter) {
            Some(filter) => self.store.count_query(filter),
            None => CountQuery::zero(),
        })
    }

    /// Child lists of many parents at once, in two commands however many
    /// parents there are. FerretDB cannot limit per parent in one command
    /// (no `$push`, no `$facet`), so the first command reads only the sort
    /// key and id of every matching child (small rows, ordered by the
    /// database), the windows are cut from those in memory, and the second
    /// command loads the selected rows by id. Totals come from the first.
    pub async fn children(
        &self,
        parent_field: &'static str,
        parents: &[ObjectId],
        filter: Document,
        order: T::Order,
        descending: bool,
        window: &Window,
    ) -> DbResult<HashMap<ObjectId, ChildPage<T>>> {
        self.may_read(&filter, Some(order))?;
        let mut out = HashMap::new();
        let mut query = filter;
        query.insert(parent_field, doc! { "$in": parents });
        let Some(query) = self.scope.narrow(query) else {
            for parent in parents {
                out.insert(*parent, ChildPage::empty());
            }
            return Ok(out);
        };
        let path = order.path();
        let direction = if descending { -1 } else { 1 };
        let mut projection = doc! { "_id": 1, parent_field: 1 };
        projection.insert(path, 1);
        let options = FindOptions::builder()
            .sort(doc! { path: direction, "_id": direction })
            .projection(projection)
            // Keys are small: one batch holds 100,000 of them (about 6 MB).
            .batch_size(KEY_BATCH)
            .max_time(self.store.max_time())
            .build();
        let keys: Vec<Document> = self
            .store
            .collection()
            .find(query)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        let mut by_parent: HashMap<ObjectId, Vec<Position>> = HashMap::new();
        for key in &keys {
            let parent = key
                .get_object_id(parent_field)
                .map_err(|e| DbError::Other(e.into()))?;
            by_parent.entry(parent).or_default().push(Position {
                key: page::lookup(key, path).cloned().unwrap_or(Bson::Null),
                id: key
                    .get_object_id("_id")
                    .map_err(|e| DbError::Other(e.into()))?,
            });
        }
        let mut cut = HashMap::new();
        let mut wanted = Vec::new();
        for parent in parents {
            let positions = by_parent.remove(parent).unwrap_or_default();
            let total = positions.len() as u64;
            let slice = page::slice(positions, window, descending);
            wanted.extend(slice.positions.iter().map(|p| p.id));
            cut.insert(*parent, (slice, total));
        }
        let mut rows: HashMap<ObjectId, T> = self
            .get_many(&wanted)
            .await?
            .into_iter()
            .map(|r| (r.id(), r))
            .collect();
        for (parent, (slice, total)) in cut {
            let page = Page {
                rows: slice
                    .positions
                    .into_iter()
                    .filter_map(|p| rows.remove(&p.id).map(|r| (p, r)))
                    .collect(),
                has_next_page: slice.has_next_page,
                has_previous_page: slice.has_previous_page,
            };
            out.insert(parent, ChildPage { page, total });
        }
        Ok(out)
    }
}

impl<T> ChildPage<T> {
    pub fn empty() -> Self {
        Self {
            page: Page::empty(),
            total: 0,
        }
    }
}

/// Orders stored values the way the database sorts the types we store.
pub fn compare_keys(a: &Bson, b: &Bson) -> Ordering {
    fn rank(value: &Bson) -> u8 {
        match value {
            Bson::Null | Bson::Undefined => 0,
            Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => 1,
            Bson::String(_) => 2,
            Bson::ObjectId(_) => 3,
            Bson::Boolean(_) => 4,
            Bson::DateTime(_) => 5,
            _ => 6,
        }
    }
    fn number(value: &Bson) -> f64 {
        match value {
            Bson::Int32(n) => f64::from(*n),
            Bson::Int64(n) => *n as f64,
            Bson::Double(n) => *n,
            _ => 0.0,
        }
    }
    match (a, b) {
        (Bson::String(x), Bson::String(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.cmp(y),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.cmp(y),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        _ if rank(a) == 1 && rank(b) == 1 => number(a).total_cmp(&number(b)),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// What the audit log keeps out of one model's changes, as the model
/// declares it: the values it redacts (`Model::SENSITIVE`) and the fields
/// it leaves out altogether (`Model::UNAUDITED`). Applied by the audit
/// model's `changes::diff`; carried on outbox intents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    pub redacted: Vec<String>,
    pub omitted: Vec<String>,
}

impl Redaction {
    /// The redaction `M` declares.
    pub fn of<M: Model>() -> Self {
        let owned = |fields: &[&str]| fields.iter().map(|f| f.to_string()).collect();
        Self {
            redacted: owned(M::SENSITIVE),
            omitted: owned(M::UNAUDITED),
        }
    }
}
