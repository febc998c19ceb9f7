//! Per-request loaders, made on first use for any model: rows by id, and
//! child lists of many parents at once (`Batcher`, on the `dataloader`
//! crate, gathers the keys),
//! both through the caller's scope, so a level of a query costs a bounded
//! number of commands however many rows it has, and no relation can show a
//! row the caller may not see.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::batch::{Batcher, Map};
use bson::Document;
use bson::oid::ObjectId;

use crate::db::DbError;
use crate::db::model::{Access, ChildPage, Model, OrderField};
use crate::db::page::Window;
use crate::vault::{DataKey, Vault};

/// What a child list asks for, shared by every parent that asks the same.
pub struct ChildQuery<T: Model> {
    pub parent_field: &'static str,
    pub filter: Document,
    pub order: T::Order,
    pub descending: bool,
    pub window: Window,
    signature: String,
}

impl<T: Model> ChildQuery<T> {
    pub fn new(
        parent_field: &'static str,
        filter: Document,
        order: T::Order,
        descending: bool,
        window: Window,
    ) -> Self {
        let signature = format!(
            "{parent_field}|{filter}|{}|{descending}|{window:?}",
            order.name()
        );
        Self {
            parent_field,
            filter,
            order,
            descending,
            window,
            signature,
        }
    }
}

/// One parent's child list.
pub struct ChildKey<T: Model> {
    pub parent: ObjectId,
    pub query: Arc<ChildQuery<T>>,
}

impl<T: Model> Clone for ChildKey<T> {
    fn clone(&self) -> Self {
        Self {
            parent: self.parent,
            query: self.query.clone(),
        }
    }
}

impl<T: Model> PartialEq for ChildKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.parent == other.parent && self.query.signature == other.query.signature
    }
}

impl<T: Model> Eq for ChildKey<T> {}

impl<T: Model> std::fmt::Debug for ChildKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.query.signature, self.parent)
    }
}

impl<T: Model> Hash for ChildKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.query.signature.hash(state);
    }
}

/// Child lists of many parents: two commands per distinct query.
async fn load_children<T: Model>(
    access: Access,
    keys: Vec<ChildKey<T>>,
) -> Result<Map<ChildKey<T>, Arc<ChildPage<T>>>, Arc<DbError>> {
    let scoped = access.of::<T>().await.map_err(Arc::new)?;
    let mut groups: HashMap<String, (Arc<ChildQuery<T>>, Vec<ObjectId>)> = HashMap::new();
    for key in &keys {
        groups
            .entry(key.query.signature.clone())
            .or_insert_with(|| (key.query.clone(), Vec::new()))
            .1
            .push(key.parent);
    }
    let mut out = Map::default();
    for (query, parents) in groups.into_values() {
        let pages = scoped
            .children(
                query.parent_field,
                &parents,
                query.filter.clone(),
                query.order,
                query.descending,
                &query.window,
            )
            .await
            .map_err(Arc::new)?;
        for (parent, page) in pages {
            out.insert(
                ChildKey {
                    parent,
                    query: query.clone(),
                },
                Arc::new(page),
            );
        }
    }
    Ok(out)
}

/// Rows by id of one model, through the caller's scope; shared, so a row
/// many fields name (an assignee) is never copied.
async fn load_by_id<T: Model>(
    access: Access,
    keys: Vec<ObjectId>,
) -> Result<Map<ObjectId, Arc<T>>, Arc<DbError>> {
    let scoped = access.of::<T>().await.map_err(Arc::new)?;
    let found = scoped.get_many(&keys).await.map_err(Arc::new)?;
    Ok(found.into_iter().map(|r| (r.id(), Arc::new(r))).collect())
}

/// The loaders of one request, made on first use.
pub struct Loaders {
    access: Access,
    vault: Vault,
    made: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Loaders {
    pub fn new(access: Access, vault: Vault) -> Self {
        Self {
            access,
            vault,
            made: Mutex::default(),
        }
    }

    /// People's data keys, to open their sealed fields: one key-store
    /// command for a level's people (none for keys already in memory). An
    /// erased person has none.
    pub fn keys(&self) -> Arc<Batcher<ObjectId, Arc<DataKey>>> {
        self.get(|| {
            let vault = self.vault.clone();
            Batcher::new(move |subjects: Vec<ObjectId>| {
                let vault = vault.clone();
                Box::pin(async move {
                    match vault.keys(&subjects).await {
                        Ok(keys) => Ok(keys.into_iter().collect()),
                        Err(error) => Err(Arc::new(DbError::Other(error.into()))),
                    }
                })
            })
        })
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    fn get<L: Send + Sync + 'static>(&self, make: impl FnOnce() -> L) -> Arc<L> {
        let mut made = match self.made.lock() {
            Ok(made) => made,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(existing) = made
            .get(&TypeId::of::<L>())
            .and_then(|l| l.clone().downcast::<L>().ok())
        {
            return existing;
        }
        let loader = Arc::new(make());
        made.insert(TypeId::of::<L>(), loader.clone());
        loader
    }

    /// Rows of `T` by id.
    pub fn by_id<T: Model>(&self) -> Arc<Batcher<ObjectId, Arc<T>>> {
        self.get(|| {
            let access = self.access.clone();
            Batcher::new(move |keys| Box::pin(load_by_id::<T>(access.clone(), keys)))
        })
    }

    /// Child lists of `T`.
    pub fn children<T: Model>(&self) -> Arc<Batcher<ChildKey<T>, Arc<ChildPage<T>>>> {
        self.get(|| {
            let access = self.access.clone();
            Batcher::new(move |keys| Box::pin(load_children::<T>(access.clone(), keys)))
        })
    }
}
