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
//! the same fields to the same values. Under `splice::Splice` (the HTTP
//! endpoint) an object or list resolved here comes back as its JSON text.

use std::borrow::Cow;
use std::future::Future;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use axum::body::Bytes;
use futures::future::join_all;
use smallvec::SmallVec;

use super::splice::{self, Splice};
use crate::domain::ids::GlobalId;

/// Fields a type answers straight from what it holds: no arguments, no
/// guard, no I/O, nothing that could fail. `None` sends a field through the
/// type's resolver. What `plain` gives must be what that resolver gives
/// (the API tests compare the two paths).
pub trait Plain {
    fn plain(&self, _field: &str) -> Option<Scalar<'_>> {
        None
    }
}

impl<T: Plain + ?Sized> Plain for &T {
    fn plain(&self, field: &str) -> Option<Scalar<'_>> {
        (**self).plain(field)
    }
}

/// A plain field's value, borrowed where the type holds it as text.
pub enum Scalar<'a> {
    Text(&'a str),
    Owned(String),
    Null,
    Value(Value),
    /// A global id, written without a string of its own.
    Id(GlobalId),
    /// Text the type writes itself.
    Token(&'a (dyn Token + Sync)),
}

/// Text a type writes straight into an answer (e.g. a cursor): ASCII that
/// a JSON string does not escape.
pub trait Token {
    fn append(&self, out: &mut Vec<u8>);
}

impl Scalar<'_> {
    /// Text, or null when absent.
    pub fn text(text: Option<&str>) -> Scalar<'_> {
        text.map_or(Scalar::Null, Scalar::Text)
    }

    fn into_value(self) -> Value {
        match self {
            Scalar::Text(text) => Value::String(text.to_owned()),
            Scalar::Owned(text) => Value::String(text),
            Scalar::Null => Value::Null,
            Scalar::Value(value) => value,
            Scalar::Id(id) => Value::String(id.encode()),
            Scalar::Token(token) => {
                let mut text = Vec::new();
                token.append(&mut text);
                Value::String(String::from_utf8_lossy(&text).into_owned())
            }
        }
    }

    /// About how many bytes `write` gives.
    fn size_hint(&self) -> usize {
        match self {
            Scalar::Text(text) => text.len() + 2,
            Scalar::Owned(text) => text.len() + 2,
            Scalar::Null => 4,
            Scalar::Value(value) => splice::size_hint(value),
            Scalar::Id(_) => 48,
            Scalar::Token(_) => 160,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Scalar::Text(text) => splice::string(text, out),
            Scalar::Owned(text) => splice::string(text, out),
            Scalar::Null => out.extend_from_slice(b"null"),
            Scalar::Value(value) => splice::write(value, out),
            Scalar::Id(id) => {
                out.push(b'"');
                id.encode_into(out);
                out.push(b'"');
            }
            Scalar::Token(token) => {
                out.push(b'"');
                token.append(out);
                out.push(b'"');
            }
        }
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
        let values = join_in_place(items.collect())
            .await
            .into_iter()
            .collect::<ServerResult<Vec<_>>>()?;
        if !spliced(ctx) {
            return Ok(Value::List(values));
        }
        let size: usize = values.iter().map(|v| splice::size_hint(v) + 1).sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'[');
        for (n, value) in values.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            splice::write(value, &mut out);
        }
        out.push(b']');
        Ok(text(out))
    }
}

/// Whether this request's answer is written with `splice::write`.
fn spliced(ctx: &ContextSelectionSet<'_>) -> bool {
    ctx.data_opt::<Splice>().is_some()
}

/// A selected field of an object resolved in place.
enum Slot<'a> {
    Plain(Scalar<'a>),
    Waiting,
    Resolved(ServerResult<Option<Value>>),
}

/// The fields of `root` that `ctx` selects, as async-graphql's container
/// resolution gives them (a failed field is reported and left out), but
/// in selection order, without a task per field, and without a future for
/// a plain field. Under [`Splice`] the object comes back as its JSON text.
pub async fn resolve_in_place<T: ContainerType + Plain + ?Sized>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
) -> ServerResult<Value> {
    let Some(fields) = plain_fields(ctx) else {
        return resolve_container(ctx, root).await;
    };
    // Slots and resolver futures stay on the heap: a row's future is moved
    // into its list's, so it is kept small.
    let mut slots: Vec<Slot<'_>> = fields
        .iter()
        .map(|field| {
            let name = field.node.name.node.as_str();
            if name == "__typename" {
                Slot::Plain(match root.introspection_type_name() {
                    Cow::Borrowed(name) => Scalar::Text(name),
                    Cow::Owned(name) => Scalar::Owned(name),
                })
            } else if field.node.arguments.is_empty() {
                root.plain(name).map_or(Slot::Waiting, Slot::Plain)
            } else {
                Slot::Waiting
            }
        })
        .collect();
    let waiting: SmallVec<[usize; 8]> = (0..fields.len())
        .filter(|&i| matches!(slots[i], Slot::Waiting))
        .collect();
    // One or two resolvers (most objects) run in one boxed future, without
    // the vectors `join_all` needs; both are polled on every wake-up, as
    // `join_all` polls its futures, so loaders still gather a level.
    match *waiting.as_slice() {
        [] => {}
        [i] => {
            let field = ctx.with_field(fields[i]);
            slots[i] = Slot::Resolved(Box::pin(root.resolve_field(&field)).await);
        }
        [i, j] => {
            let (first, second) = (ctx.with_field(fields[i]), ctx.with_field(fields[j]));
            let (a, b) = Box::pin(futures::future::join(
                root.resolve_field(&first),
                root.resolve_field(&second),
            ))
            .await;
            slots[i] = Slot::Resolved(a);
            slots[j] = Slot::Resolved(b);
        }
        _ => {
            let contexts: Vec<_> = waiting.iter().map(|&i| ctx.with_field(fields[i])).collect();
            let resolved = join_all(contexts.iter().map(|field| root.resolve_field(field))).await;
            for (&i, value) in waiting.iter().zip(resolved) {
                slots[i] = Slot::Resolved(value);
            }
        }
    }
    if spliced(ctx) {
        return Ok(write_object(ctx, &fields, slots));
    }
    let mut object = IndexMap::with_capacity(slots.len());
    for (field, slot) in fields.iter().zip(slots) {
        let value = match slot {
            Slot::Plain(scalar) => scalar.into_value(),
            Slot::Resolved(Ok(value)) => value.unwrap_or_default(),
            Slot::Resolved(Err(error)) => {
                ctx.add_error(error);
                continue;
            }
            Slot::Waiting => continue,
        };
        object.insert(field.node.response_key().node.clone(), value);
    }
    Ok(if object.is_empty() {
        Value::Null
    } else {
        Value::Object(object)
    })
}

/// JSON text as a value: the buffer shrunk to its length and handed over
/// without a copy.
fn text(out: Vec<u8>) -> Value {
    Value::Binary(Bytes::from(out.into_boxed_slice()))
}

/// The object's JSON text, fields in selection order; `null` when no field
/// is left, as for a map.
fn write_object(
    ctx: &ContextSelectionSet<'_>,
    fields: &[&Positioned<Field>],
    slots: Vec<Slot<'_>>,
) -> Value {
    let size: usize = fields
        .iter()
        .zip(&slots)
        .map(|(field, slot)| {
            field.node.response_key().node.len()
                + 4
                + match slot {
                    Slot::Plain(scalar) => scalar.size_hint(),
                    Slot::Resolved(Ok(Some(value))) => splice::size_hint(value),
                    _ => 4,
                }
        })
        .sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'{');
    for (field, slot) in fields.iter().zip(slots) {
        let value = match slot {
            Slot::Resolved(Err(error)) => {
                ctx.add_error(error);
                continue;
            }
            Slot::Waiting => continue,
            slot => slot,
        };
        if out.len() > 1 {
            out.push(b',');
        }
        // A response key is a GraphQL name (letters, digits and `_`): it
        // needs no escaping.
        out.push(b'"');
        out.extend_from_slice(field.node.response_key().node.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            Slot::Plain(scalar) => scalar.write(&mut out),
            Slot::Resolved(Ok(Some(value))) => splice::write(&value, &mut out),
            _ => out.extend_from_slice(b"null"),
        }
    }
    if out.len() == 1 {
        return Value::Null;
    }
    out.push(b'}');
    text(out)
}

/// A selection's fields; most selections have a few.
type Fields<'a> = SmallVec<[&'a Positioned<Field>; 8]>;

/// The selection's fields when it is only fields, without directives, each
/// under its own response key; `None` sends it down async-graphql's path,
/// which merges fragments and repeated keys.
fn plain_fields<'a>(ctx: &ContextSelectionSet<'a>) -> Option<Fields<'a>> {
    let items = &ctx.item.node.items;
    let mut fields = Fields::new();
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
