//! Small builders every model's filter uses, so that client values only
//! ever become equality, `$in`, range or escaped-regex clauses.

use bson::{Bson, DateTime, Document, doc};
use serde::Serialize;

use super::DbResult;

/// `field ∈ values` when values are given; one value is plain equality,
/// which FerretDB hands down to its storage (an `$in` it filters itself).
pub fn one_of<T: Serialize>(filter: &mut Document, field: &str, values: &[T]) -> DbResult<()> {
    match values {
        [] => {}
        [one] => {
            filter.insert(field, bson::to_bson(one)?);
        }
        many => {
            filter.insert(field, doc! { "$in": bson::to_bson(many)? });
        }
    }
    Ok(())
}

/// A case-insensitive match of an already escaped `pattern` in any of `fields`.
pub fn search(filter: &mut Document, fields: &[&str], pattern: Option<&str>) {
    if let Some(pattern) = pattern {
        let any: Vec<Bson> = fields
            .iter()
            .map(|f| Bson::Document(doc! { *f: { "$regex": pattern, "$options": "i" } }))
            .collect();
        filter.insert("$or", any);
    }
}

/// `from <= field < to`, either end open.
pub fn range(filter: &mut Document, field: &str, from: Option<DateTime>, to: Option<DateTime>) {
    let mut range = Document::new();
    if let Some(from) = from {
        range.insert("$gte", from);
    }
    if let Some(to) = to {
        range.insert("$lt", to);
    }
    if !range.is_empty() {
        filter.insert(field, range);
    }
}
