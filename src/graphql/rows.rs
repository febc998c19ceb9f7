//! Rows resolved in place. async-graphql resolves an object's fields through
//! a `FuturesUnordered` (a boxed future and a task per field) and a list's
//! items through a `FuturesOrdered` (a task per item); a page of 100 rows
//! builds thousands of them. `Row` and `Rows` resolve the same fields with
//! the same concurrency (every field and every row is polled until it is
//! ready, so the loaders still gather a whole level into one batch), but
//! poll the futures where they lie, and keep the fields in the order the
//! query selected them. A field a type answers from what it holds (`Plain`:
//! no arguments, guard or I/O, e.g. an id or a name) is read directly,
//! without a future at all. A selection with fragments, directives or a
//! response key given twice takes async-graphql's own path, which resolves
//! the same fields to the same values.

use std::borrow::Cow;
use std::future::Future;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use futures::future::join_all;

/// Fields a type answers straight from what it holds: no arguments, no
/// guard, no I/O, nothing that could fail. `None` sends a field through the
/// type's resolver. What `plain` gives must be what that resolver gives
/// (the API tests compare the two paths).
pub trait Plain {
    fn plain(&self, _field: &str) -> Option<Value> {
        None
    }
}

impl<T: Plain + ?Sized> Plain for &T {
    fn plain(&self, field: &str) -> Option<Value> {
        (**self).plain(field)
    }
}

/// An object resolved in place; the same type in the schema as `T`.
pub struct Row<T>(pub T);

impl<T: ContainerType + Plain> OutputType for Row<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_in_place(ctx, &self.0).await
    }
}

/// A list of objects, each resolved in place; the same type in the schema
/// as `[T!]!`.
pub struct Rows<'a, T>(pub Vec<&'a T>);

impl<T: ContainerType + Plain> OutputType for Rows<'_, T> {
    fn type_name() -> Cow<'static, str> {
        <Vec<T> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<T> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<T> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let contexts: Vec<_> = (0..self.0.len()).map(|i| ctx.with_index(i)).collect();
        let items = self.0.iter().zip(&contexts).map(|(row, ctx)| async move {
            resolve_in_place(ctx, *row)
                .await
                .map_err(|error| ctx.set_error_path(error))
        });
        let values = join_in_place(items.collect()).await;
        values
            .into_iter()
            .collect::<ServerResult<Vec<_>>>()
            .map(Value::List)
    }
}

/// The fields of `root` that `ctx` selects, as async-graphql's container
/// resolution gives them (a failed field is reported and left out), but
/// in selection order, without a task per field, and without a future for
/// a plain field.
pub async fn resolve_in_place<T: ContainerType + Plain + ?Sized>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
) -> ServerResult<Value> {
    let Some(fields) = plain_fields(ctx) else {
        return resolve_container(ctx, root).await;
    };
    let mut values: Vec<Option<ServerResult<Option<Value>>>> = fields
        .iter()
        .map(|field| {
            let name = field.node.name.node.as_str();
            if name == "__typename" {
                Some(Ok(Some(Value::String(
                    root.introspection_type_name().into_owned(),
                ))))
            } else if field.node.arguments.is_empty() {
                root.plain(name).map(|value| Ok(Some(value)))
            } else {
                None
            }
        })
        .collect();
    let waiting: Vec<usize> = (0..fields.len()).filter(|&i| values[i].is_none()).collect();
    if !waiting.is_empty() {
        let contexts: Vec<_> = waiting.iter().map(|&i| ctx.with_field(fields[i])).collect();
        let resolved = join_all(contexts.iter().map(|field| root.resolve_field(field))).await;
        for (&i, value) in waiting.iter().zip(resolved) {
            values[i] = Some(value);
        }
    }
    let mut object = IndexMap::with_capacity(values.len());
    for (field, value) in fields.iter().zip(values) {
        match value {
            Some(Ok(value)) => {
                let key = field.node.response_key().node.clone();
                object.insert(key, value.unwrap_or_default());
            }
            Some(Err(error)) => ctx.add_error(error),
            None => {}
        }
    }
    Ok(if object.is_empty() {
        Value::Null
    } else {
        Value::Object(object)
    })
}

/// The selection's fields when it is only fields, without directives, each
/// under its own response key; `None` sends it down async-graphql's path,
/// which merges fragments and repeated keys.
fn plain_fields<'a>(ctx: &ContextSelectionSet<'a>) -> Option<Vec<&'a Positioned<Field>>> {
    let items = &ctx.item.node.items;
    let mut fields: Vec<&Positioned<Field>> = Vec::with_capacity(items.len());
    for item in items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let key = &field.node.response_key().node;
        if !field.node.directives.is_empty()
            || fields.iter().any(|f| &f.node.response_key().node == key)
        {
            return None;
        }
        fields.push(field);
    }
    Some(fields)
}

/// `join_all` polls up to 30 futures in place and gives more a task each;
/// groups of 30 keep every level in place.
async fn join_in_place<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    const GROUP: usize = 30;
    if futures.len() <= GROUP {
        return join_all(futures).await;
    }
    let mut futures = futures.into_iter();
    let mut groups = Vec::new();
    loop {
        let group: Vec<F> = futures.by_ref().take(GROUP).collect();
        if group.is_empty() {
            break;
        }
        groups.push(join_all(group));
    }
    join_all(groups).await.into_iter().flatten().collect()
}
