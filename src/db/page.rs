//! Keyset pagination shared by every collection: pages ordered by one field
//! and then `_id`, so a page stays stable when rows are inserted. The query is
//! one `find` in a single batch (no `getMore`, no `killCursors`).

use bson::oid::ObjectId;
use bson::{Bson, Document, RawDocument, RawDocumentBuf, doc};
use mongodb::Collection;
use mongodb::options::FindOptions;
use serde::de::DeserializeOwned;

use super::{DbError, DbResult};

/// Where a row sits in an ordering: its sort value and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub key: Bson,
    pub id: ObjectId,
}

/// Which slice to read.
#[derive(Debug, Clone)]
pub enum Window {
    /// `first` rows after `after` (or from the start).
    Forward {
        first: usize,
        after: Option<Position>,
    },
    /// `last` rows before `before` (or from the end).
    Backward {
        last: usize,
        before: Option<Position>,
    },
}

/// The ordering: a document path and a direction.
#[derive(Debug, Clone, Copy)]
pub struct Sort {
    pub path: &'static str,
    pub descending: bool,
}

/// One page of rows, each with its position.
#[derive(Debug)]
pub struct Page<T> {
    pub rows: Vec<(Position, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// A page with no rows (a filter that can match nothing).
    pub fn empty() -> Self {
        Self {
            rows: Vec::new(),
            has_next_page: false,
            has_previous_page: false,
        }
    }
}

/// A window cut from positions already in list order.
pub struct Slice {
    pub positions: Vec<Position>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// Cuts `window` out of `positions` (sorted by key then id, descending when
/// `descending`), the same way `fetch` does in the database.
pub fn slice(positions: Vec<Position>, window: &Window, descending: bool) -> Slice {
    let after = |p: &Position, c: &Position| {
        let order = super::model::compare_keys(&p.key, &c.key).then(p.id.cmp(&c.id));
        if descending {
            order.is_lt()
        } else {
            order.is_gt()
        }
    };
    match window {
        Window::Forward {
            first,
            after: cursor,
        } => {
            let start = match cursor {
                Some(c) => positions
                    .iter()
                    .position(|p| after(p, c))
                    .unwrap_or(positions.len()),
                None => 0,
            };
            let end = (start + first).min(positions.len());
            Slice {
                has_next_page: end < positions.len(),
                has_previous_page: cursor.is_some(),
                positions: positions[start..end].to_vec(),
            }
        }
        Window::Backward { last, before } => {
            let end = match before {
                Some(c) => positions
                    .iter()
                    .position(|p| !after(c, p))
                    .unwrap_or(positions.len()),
                None => positions.len(),
            };
            let start = end.saturating_sub(*last);
            Slice {
                has_next_page: before.is_some(),
                has_previous_page: start > 0,
                positions: positions[start..end].to_vec(),
            }
        }
    }
}

/// Reads one page of `collection` matching `filter`.
pub async fn fetch<T: super::store::Record>(
    collection: &Collection<Document>,
    filter: Document,
    sort: Sort,
    window: Window,
    max_time: std::time::Duration,
) -> DbResult<Page<T>> {
    let (size, cursor, backward) = match &window {
        Window::Forward { first, after } => (*first, after.clone(), false),
        Window::Backward { last, before } => (*last, before.clone(), true),
    };
    // Reading backwards walks the ordering in reverse, then flips the rows.
    let walk_descending = sort.descending != backward;
    let mut clauses = vec![filter];
    if let Some(position) = &cursor {
        let op = if walk_descending { "$lt" } else { "$gt" };
        clauses.push(doc! { "$or": [
            { sort.path: { op: position.key.clone() } },
            { sort.path: position.key.clone(), "_id": { op: position.id } },
        ]});
    }
    let query = if clauses.len() == 1 {
        clauses.remove(0)
    } else {
        doc! { "$and": clauses }
    };
    let direction = if walk_descending { -1 } else { 1 };
    let limit = i64::try_from(size + 1).map_err(|e| DbError::Other(e.into()))?;
    let options = FindOptions::builder()
        .sort(doc! { sort.path: direction, "_id": direction })
        .limit(-limit)
        .max_time(max_time)
        .build();
    // Each row is decoded straight from the driver's batch into its record:
    // no copy of the raw BSON, and the extra row that tells whether more
    // follow is not decoded. The negative limit asks for one batch, which
    // closes the server's cursor, so stopping early sends nothing more.
    let mut found = collection
        .clone_with_type::<RawDocumentBuf>()
        .find(query)
        .with_options(options)
        .await?;
    let mut rows = Vec::with_capacity(size);
    let mut more = false;
    while found.advance().await? {
        if rows.len() == size {
            more = true;
            break;
        }
        let document = found.current();
        let position = Position {
            key: super::raw::lookup(document, sort.path)?.unwrap_or(Bson::Null),
            id: raw_id(document)?,
        };
        rows.push((position, T::from_raw(document)?));
    }
    if backward {
        rows.reverse();
    }
    let (has_next_page, has_previous_page) = if backward {
        (cursor.is_some(), more)
    } else {
        (more, cursor.is_some())
    };
    Ok(Page {
        rows,
        has_next_page,
        has_previous_page,
    })
}

/// Counts the rows matching `filter`.
pub async fn count(
    collection: &Collection<Document>,
    filter: Document,
    max_time: std::time::Duration,
) -> DbResult<u64> {
    // The `count` command: one reply, where `countDocuments` runs an
    // aggregation and reads its result through a cursor (and a session the
    // driver hands back in a task of its own). Exact with a filter on an
    // unsharded deployment, which is what this server runs on.
    let max_time_ms = i64::try_from(max_time.as_millis()).unwrap_or(i64::MAX);
    let reply = collection
        .client()
        .database(&collection.namespace().db)
        .run_command(doc! {
            "count": collection.name(),
            "query": filter,
            "maxTimeMS": max_time_ms,
        })
        .await?;
    let n = match reply.get("n") {
        Some(Bson::Int32(n)) => u64::try_from(*n).ok(),
        Some(Bson::Int64(n)) => u64::try_from(*n).ok(),
        Some(Bson::Double(n)) if *n >= 0.0 => Some(*n as u64),
        _ => None,
    };
    n.ok_or_else(|| DbError::Other(anyhow::anyhow!("count answered without a count: {reply}")))
}

/// Decodes a raw stored document straight into its record.
pub fn decode_raw<T: DeserializeOwned>(document: &RawDocument) -> DbResult<T> {
    Ok(bson::from_slice(document.as_bytes())?)
}

/// The `_id` of a raw stored document.
pub fn raw_id(document: &RawDocument) -> DbResult<ObjectId> {
    document
        .get_object_id("_id")
        .map_err(|e| DbError::Other(e.into()))
}

/// Reads a dotted path (`value.amountMinor`) from a document.
pub fn lookup<'a>(document: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut current = document.get(parts.next()?)?;
    for part in parts {
        current = current.as_document()?.get(part)?;
    }
    Some(current)
}
