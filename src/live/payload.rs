//! Rows as partners and dashboards see them outside the API: stored
//! documents turned into plain JSON (ids as global ids or hex strings,
//! dates as RFC 3339), without sensitive or secret fields; and the ids of
//! the rows a change fans out to, derived from the change so a retried
//! fan-out writes each row once.

use bson::oid::ObjectId;
use bson::{Bson, Document};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::{GlobalId, NodeKind};

/// `document` as JSON without the `drop`ped fields; `_id` becomes `id`,
/// the global id of `entity` when it is a node kind.
pub fn row_json(entity: &str, document: &Document, drop: &[String]) -> Value {
    let mut row = Map::new();
    for (key, value) in document {
        if drop.iter().any(|d| d == key) {
            continue;
        }
        if key == "_id" {
            let id = match (value, NodeKind::ALL.iter().find(|k| k.name() == entity)) {
                (Bson::ObjectId(oid), Some(kind)) => {
                    Value::String(GlobalId::new(*kind, *oid).encode())
                }
                (other, _) => json(other),
            };
            row.insert("id".into(), id);
            continue;
        }
        row.insert(key.clone(), json(value));
    }
    Value::Object(row)
}

/// One BSON value as plain JSON.
pub fn json(value: &Bson) -> Value {
    match value {
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        Bson::DateTime(at) => Value::String(
            at.try_to_rfc3339_string()
                .unwrap_or_else(|_| at.timestamp_millis().to_string()),
        ),
        Bson::Document(d) => Value::Object(d.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        Bson::Array(items) => Value::Array(items.iter().map(json).collect()),
        Bson::Int32(n) => Value::from(*n),
        Bson::Int64(n) => Value::from(*n),
        Bson::Double(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Decimal128(d) => Value::String(d.to_string()),
        Bson::Null | Bson::Undefined => Value::Null,
        other => Value::String(other.to_string()),
    }
}

/// An id derived from `base` and `salt`: the same inputs give the same id;
/// it keeps `base`'s time so derived rows sort with their change.
pub fn derived_id(base: ObjectId, salt: &str) -> ObjectId {
    let mut bytes = base.bytes();
    let digest = Sha256::new()
        .chain_update(bytes)
        .chain_update(salt.as_bytes())
        .finalize();
    bytes[4..12].copy_from_slice(&digest[..8]);
    ObjectId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let base = ObjectId::new();
        assert_eq!(derived_id(base, "a"), derived_id(base, "a"));
        assert_ne!(derived_id(base, "a"), derived_id(base, "b"));
        assert_eq!(derived_id(base, "a").timestamp(), base.timestamp());
    }

    #[test]
    fn rows_lose_dropped_fields_and_get_a_global_id() {
        let id = ObjectId::new();
        let row = row_json(
            "Asset",
            &bson::doc! { "_id": id, "name": "Hoist", "secret": "x", "at": bson::DateTime::from_millis(0) },
            &["secret".into()],
        );
        assert_eq!(row["name"], "Hoist");
        assert!(row.get("secret").is_none());
        assert_eq!(row["at"], "1970-01-01T00:00:00Z");
        assert_eq!(
            row["id"],
            GlobalId::new(NodeKind::Asset, id).encode().as_str()
        );
    }
}
