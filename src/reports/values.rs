//! How stored values become report values: numbers from `$sum`s, texts,
//! global ids, RFC 3339 instants in UTC, ratios, windows and money rows.

use std::collections::BTreeMap;

use bson::oid::ObjectId;
use bson::{Bson, Document};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::params::Window;
use crate::db::DbResult;
use crate::domain::{GlobalId, NodeKind};

/// A whole number a `$sum` produced (its type depends on the server and the size).
pub fn number(document: &Document, key: &str) -> i64 {
    match document.get(key) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}

/// A field of a group's compound `_id`.
pub fn key<'a>(document: &'a Document, field: &str) -> Option<&'a Bson> {
    document.get_document("_id").ok()?.get(field)
}

pub fn text(value: Option<&Bson>) -> String {
    match value {
        Some(Bson::String(s)) => s.clone(),
        _ => String::new(),
    }
}

pub fn wire<T: serde::Serialize>(value: &T) -> DbResult<String> {
    Ok(match bson::to_bson(value)? {
        Bson::String(s) => s,
        other => other.to_string(),
    })
}

pub fn global(kind: NodeKind, id: ObjectId) -> String {
    GlobalId::new(kind, id).encode()
}

pub fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn stored_instant(at: &Bson) -> Value {
    match at {
        Bson::DateTime(at) => Value::String(instant(at.to_chrono())),
        _ => Value::Null,
    }
}

/// `part / whole` to four decimal places (0 when `whole` is 0).
pub fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// `from <= field < to` for a window's ends that are set.
pub fn window_filter(filter: &mut Document, field: &str, window: Window) {
    crate::db::filters::range(
        filter,
        field,
        window.from.map(bson::DateTime::from_chrono),
        window.to.map(bson::DateTime::from_chrono),
    );
}

pub fn window_json(window: Window) -> (Value, Value) {
    (
        window.from.map(instant).map_or(Value::Null, Value::String),
        window.to.map(instant).map_or(Value::Null, Value::String),
    )
}

/// Money per currency, as rows.
pub fn money(amounts: &BTreeMap<String, i64>) -> Value {
    Value::Array(
        amounts
            .iter()
            .map(|(currency, minor)| json!({ "currency": currency, "amountMinor": minor }))
            .collect(),
    )
}
