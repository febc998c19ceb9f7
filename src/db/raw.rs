//! Records read field by field from raw BSON, for the records every page
//! decodes by the hundred (assets, users). serde's BSON deserializer, and
//! the bson crate's own element iterator under it, check every key as
//! UTF-8, build an element and wrap each step for its error messages; a
//! page spent more time there than in anything else of its own. Here a
//! walk over the bytes finds each element's key and extent (bounds-checked;
//! a malformed document is an error, never a panic), keys are compared as
//! bytes, and only the values a record keeps are decoded (strings still
//! checked as UTF-8). Unknown fields are skipped, as serde does; `null`
//! reads as absent. Each reader names the field it refuses.

use bson::oid::ObjectId;
use bson::spec::ElementType;
use bson::{DateTime, RawDocument};
use compact_str::CompactString;
use serde::de::DeserializeOwned;
use serde::de::value::{BorrowedStrDeserializer, Error as ValueError};

use super::{DbError, DbResult};

fn malformed(what: &str) -> DbError {
    DbError::Other(anyhow::anyhow!("malformed stored document: {what}"))
}

/// The value of a field every stored record has.
pub fn required<T>(value: Option<T>, field: &str) -> DbResult<T> {
    value.ok_or_else(|| DbError::Other(anyhow::anyhow!("stored field `{field}` is missing")))
}

/// The `(key, value)` pairs of a stored document, in stored order.
pub fn fields(document: &RawDocument) -> Fields<'_> {
    let bytes = document.as_bytes();
    // A `RawDocument` has its length prefix and final NUL checked.
    Fields {
        bytes: bytes
            .get(..bytes.len().saturating_sub(1))
            .unwrap_or_default(),
        at: 4,
    }
}

/// The elements of a document: key bytes and value.
pub struct Fields<'a> {
    /// The document without its final NUL.
    bytes: &'a [u8],
    at: usize,
}

/// A stored value: its BSON type byte and its bytes.
#[derive(Clone, Copy)]
pub struct Value<'a> {
    kind: u8,
    bytes: &'a [u8],
}

fn le<const N: usize>(bytes: &[u8], at: usize) -> DbResult<[u8; N]> {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("a value runs past the end"))
}

fn length(bytes: &[u8]) -> DbResult<usize> {
    usize::try_from(i32::from_le_bytes(le(bytes, 0)?)).map_err(|_| malformed("a negative length"))
}

fn nul(bytes: &[u8]) -> DbResult<usize> {
    bytes
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| malformed("an unterminated string"))
}

/// How many bytes a value of type `kind` takes at the start of `rest`.
fn extent(kind: u8, rest: &[u8]) -> DbResult<usize> {
    Ok(match kind {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x02 | 0x0D | 0x0E => 4 + length(rest)?,
        0x03 | 0x04 | 0x0F => length(rest)?,
        0x05 => 5 + length(rest)?,
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        0x07 => 12,
        0x08 => 1,
        0x0B => {
            let pattern = nul(rest)? + 1;
            pattern + nul(rest.get(pattern..).unwrap_or_default())? + 1
        }
        0x0C => 4 + length(rest)? + 12,
        0x10 => 4,
        0x13 => 16,
        other => return Err(malformed(&format!("unknown element type {other:#04x}"))),
    })
}

impl<'a> Iterator for Fields<'a> {
    type Item = DbResult<(&'a [u8], Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.bytes;
        let kind = *bytes.get(self.at)?;
        let step = || {
            let key_start = self.at + 1;
            let key_end = key_start + nul(bytes.get(key_start..).unwrap_or_default())?;
            let start = key_end + 1;
            let end = start + extent(kind, bytes.get(start..).unwrap_or_default())?;
            let value = bytes
                .get(start..end)
                .ok_or_else(|| malformed("a value runs past the end"))?;
            Ok((end, &bytes[key_start..key_end], value))
        };
        match step() {
            Ok((end, key, value)) => {
                self.at = end;
                Some(Ok((key, Value { kind, bytes: value })))
            }
            Err(error) => {
                // Nothing after a malformed element can be trusted.
                self.at = bytes.len();
                Some(Err(error))
            }
        }
    }
}

impl<'a> Value<'a> {
    fn wrong(self, field: &str, expected: &str) -> DbError {
        let found = ElementType::from(self.kind)
            .map(|t| format!("{t:?}"))
            .unwrap_or_else(|| format!("type {:#04x}", self.kind));
        DbError::Other(anyhow::anyhow!(
            "stored field `{field}`: expected {expected}, found {found}"
        ))
    }

    /// `null` as absent, anything else read by `read`.
    fn optional<T>(self, read: impl FnOnce(Self) -> DbResult<T>) -> DbResult<Option<T>> {
        if self.kind == 0x0A {
            return Ok(None);
        }
        read(self).map(Some)
    }

    fn text(self, field: &str) -> DbResult<&'a str> {
        if self.kind != 0x02 {
            return Err(self.wrong(field, "a string"));
        }
        // Length, the UTF-8 bytes, NUL.
        let body = self
            .bytes
            .get(4..self.bytes.len().saturating_sub(1))
            .filter(|_| self.bytes.len() >= 5 && self.bytes.last() == Some(&0))
            .ok_or_else(|| malformed("a string without its NUL"))?;
        std::str::from_utf8(body).map_err(|_| malformed("a string that is not UTF-8"))
    }

    pub fn string(self, field: &str) -> DbResult<String> {
        self.text(field).map(str::to_owned)
    }

    pub fn optional_string(self, field: &str) -> DbResult<Option<String>> {
        self.optional(|v| v.string(field))
    }

    /// A string kept inline when short (most names, codes and dates).
    pub fn compact(self, field: &str) -> DbResult<CompactString> {
        self.text(field).map(CompactString::from)
    }

    pub fn optional_compact(self, field: &str) -> DbResult<Option<CompactString>> {
        self.optional(|v| v.compact(field))
    }

    pub fn object_id(self, field: &str) -> DbResult<ObjectId> {
        if self.kind != 0x07 {
            return Err(self.wrong(field, "an object id"));
        }
        Ok(ObjectId::from_bytes(le(self.bytes, 0)?))
    }

    pub fn optional_object_id(self, field: &str) -> DbResult<Option<ObjectId>> {
        self.optional(|v| v.object_id(field))
    }

    pub fn date(self, field: &str) -> DbResult<DateTime> {
        if self.kind != 0x09 {
            return Err(self.wrong(field, "a date"));
        }
        Ok(DateTime::from_millis(i64::from_le_bytes(le(
            self.bytes, 0,
        )?)))
    }

    pub fn optional_date(self, field: &str) -> DbResult<Option<DateTime>> {
        self.optional(|v| v.date(field))
    }

    pub fn boolean(self, field: &str) -> DbResult<bool> {
        match (self.kind, self.bytes) {
            (0x08, [0]) => Ok(false),
            (0x08, [1]) => Ok(true),
            (0x08, _) => Err(malformed("a boolean that is neither 0 nor 1")),
            _ => Err(self.wrong(field, "a boolean")),
        }
    }

    /// A whole number, stored as a 32- or 64-bit integer.
    pub fn integer(self, field: &str) -> DbResult<i64> {
        match self.kind {
            0x10 => Ok(i64::from(i32::from_le_bytes(le(self.bytes, 0)?))),
            0x12 => Ok(i64::from_le_bytes(le(self.bytes, 0)?)),
            _ => Err(self.wrong(field, "an integer")),
        }
    }

    pub fn document(self, field: &str) -> DbResult<&'a RawDocument> {
        if self.kind != 0x03 {
            return Err(self.wrong(field, "a document"));
        }
        RawDocument::from_bytes(self.bytes).map_err(|_| malformed("an embedded document"))
    }

    /// A stored enum value (its serde name), read with the enum's own mapping.
    pub fn variant<T: DeserializeOwned>(self, field: &str) -> DbResult<T> {
        let text = self.text(field)?;
        T::deserialize(BorrowedStrDeserializer::<ValueError>::new(text))
            .map_err(|e| DbError::Other(anyhow::anyhow!("stored field `{field}`: {e}")))
    }
}

/// The value at a dotted path (`value.amountMinor`), as a `Bson`; `None`
/// when a step is missing or not a document. The common scalar types are
/// read here; anything else is left to the bson crate.
pub fn lookup(document: &RawDocument, path: &str) -> DbResult<Option<bson::Bson>> {
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    for field in fields(document) {
        let (key, value) = field?;
        if key != first.as_bytes() {
            continue;
        }
        return match rest {
            Some(rest) if value.kind == 0x03 => lookup(value.document(first)?, rest),
            Some(_) => Ok(None),
            None => value.to_bson(first).map(Some),
        };
    }
    Ok(None)
}

impl Value<'_> {
    fn to_bson(self, field: &str) -> DbResult<bson::Bson> {
        use bson::Bson;
        Ok(match self.kind {
            0x01 => Bson::Double(f64::from_le_bytes(le(self.bytes, 0)?)),
            0x02 => Bson::String(self.string(field)?),
            0x07 => Bson::ObjectId(self.object_id(field)?),
            0x08 => Bson::Boolean(self.boolean(field)?),
            0x09 => Bson::DateTime(self.date(field)?),
            0x0A => Bson::Null,
            0x10 => Bson::Int32(i32::from_le_bytes(le(self.bytes, 0)?)),
            0x12 => Bson::Int64(i64::from_le_bytes(le(self.bytes, 0)?)),
            _ => {
                // One element as a document of its own, decoded by the crate.
                let mut framed = Vec::with_capacity(self.bytes.len() + 8);
                let size = i32::try_from(self.bytes.len() + 8)
                    .map_err(|_| malformed("a value too large"))?;
                framed.extend_from_slice(&size.to_le_bytes());
                framed.extend_from_slice(&[self.kind, b'v', 0]);
                framed.extend_from_slice(self.bytes);
                framed.push(0);
                let document = bson::Document::from_reader(framed.as_slice())
                    .map_err(|e| DbError::Other(e.into()))?;
                document.get("v").cloned().unwrap_or(Bson::Null)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use bson::{RawDocumentBuf, doc};

    use super::super::store::Record;
    use crate::domain::Role;
    use crate::models::asset::record::{AssetCategory, AssetRecord, AssetStatus, StoredMoney};
    use crate::models::user::record::UserRecord;

    fn asset(serial: Option<&str>, assigned: Option<bson::oid::ObjectId>) -> AssetRecord {
        AssetRecord {
            id: bson::oid::ObjectId::new(),
            name: "Standing frame".into(),
            category: AssetCategory::Medical,
            serial_number: serial.map(Into::into),
            serial_key: "SF-1".into(),
            value: StoredMoney {
                amount_minor: 1_250_000,
                currency: "SAR".into(),
            },
            status: AssetStatus::InUse,
            location: Some("Hall B".into()),
            purchase_date: Some("2026-01-02".into()),
            warranty_until: None,
            assigned_to: assigned,
            created_at: bson::DateTime::from_millis(1_795_000_000_000),
            updated_at: bson::DateTime::from_millis(1_795_000_360_000),
        }
    }

    /// Reading fields directly gives what serde gives, for every shape.
    fn same_as_serde<T: Record + std::fmt::Debug>(raw: &RawDocumentBuf) {
        let direct = T::from_raw(raw).expect("direct read");
        let serde: T = bson::from_slice(raw.as_bytes()).expect("serde read");
        assert_eq!(format!("{direct:?}"), format!("{serde:?}"));
    }

    #[test]
    fn assets_read_directly_match_serde() {
        for record in [
            asset(Some("SF-1"), Some(bson::oid::ObjectId::new())),
            asset(None, None),
        ] {
            same_as_serde::<AssetRecord>(&bson::to_raw_document_buf(&record).unwrap());
        }
        // Absent and null optional fields, a 32-bit amount, an unknown field.
        let mut stored = bson::to_document(&asset(None, None)).unwrap();
        stored.remove("location");
        stored.insert("warrantyUntil", bson::Bson::Null);
        stored.insert("value", doc! { "amountMinor": 700_i32, "currency": "SAR" });
        stored.insert("legacyTag", "x");
        same_as_serde::<AssetRecord>(&RawDocumentBuf::from_document(&stored).unwrap());
    }

    #[test]
    fn users_read_directly_match_serde() {
        let record = UserRecord {
            id: bson::oid::ObjectId::new(),
            email: "t@alawael.local".into(),
            name: "Therapist".into(),
            role: Role::Therapist,
            department: Some("OT".into()),
            phone: None,
            active: true,
            password_hash: "$argon2id$…".into(),
            last_login_at: Some(bson::DateTime::from_millis(1_795_000_000_000)),
            sessions_since: Some(bson::DateTime::from_millis(1_795_000_000_100)),
            ended_sessions: vec![crate::models::user::record::EndedSession {
                id: "a-session".into(),
                until: bson::DateTime::from_millis(1_795_000_900_000),
            }],
            created_at: bson::DateTime::from_millis(1_794_000_000_000),
            updated_at: bson::DateTime::from_millis(1_794_000_000_001),
        };
        same_as_serde::<UserRecord>(&bson::to_raw_document_buf(&record).unwrap());
        let mut stored = bson::to_document(&record).unwrap();
        stored.remove("lastLoginAt");
        stored.insert("phone", bson::Bson::Null);
        same_as_serde::<UserRecord>(&RawDocumentBuf::from_document(&stored).unwrap());
    }

    #[test]
    fn every_element_type_is_stepped_over() {
        let mut stored = bson::to_document(&asset(None, None)).unwrap();
        let extra = doc! {
            "double": 1.5, "doc": { "a": [1, "two"] }, "array": [1_i64, { "b": null }],
            "binary": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "undefined": bson::Bson::Undefined, "bool": false,
            "regex": bson::Regex { pattern: "a.*".into(), options: "i".into() },
            "code": bson::Bson::JavaScriptCode("f()".into()),
            "scoped": bson::JavaScriptCodeWithScope { code: "g()".into(), scope: doc! { "x": 1 } },
            "int": 3_i32, "stamp": bson::Timestamp { time: 1, increment: 2 }, "long": 4_i64,
            "decimal": bson::Decimal128::from_bytes([7; 16]),
            "min": bson::Bson::MinKey, "max": bson::Bson::MaxKey, "symbol": bson::Bson::Symbol("s".into()),
        };
        // Unknown fields before and after the record's own.
        let mut shuffled = extra.clone();
        shuffled.extend(std::mem::take(&mut stored));
        shuffled.extend(extra);
        same_as_serde::<AssetRecord>(&RawDocumentBuf::from_document(&shuffled).unwrap());
    }

    #[test]
    fn lookup_reads_what_the_bson_crate_reads() {
        let stored = doc! {
            "_id": bson::oid::ObjectId::new(), "name": "Walker", "n": 3_i32, "big": 4_i64,
            "x": 2.5, "at": bson::DateTime::from_millis(5), "none": null, "yes": true,
            "value": { "amountMinor": 700_i64, "currency": "SAR" },
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![9] },
            "list": [1, 2],
        };
        let raw = RawDocumentBuf::from_document(&stored).unwrap();
        for path in [
            "_id",
            "name",
            "n",
            "big",
            "x",
            "at",
            "none",
            "yes",
            "value",
            "value.amountMinor",
            "value.currency",
            "value.missing",
            "name.inner",
            "bin",
            "list",
            "missing",
        ] {
            let expected = crate::db::page::lookup(&stored, path).cloned();
            assert_eq!(super::lookup(&raw, path).unwrap(), expected, "{path}");
        }
    }

    #[test]
    fn a_malformed_document_is_an_error_not_a_panic() {
        let good = bson::to_raw_document_buf(&asset(Some("SF-1"), None)).unwrap();
        let bytes = good.as_bytes();
        // Every single-byte corruption that keeps the outer frame valid.
        let mut refused = 0;
        for at in 4..bytes.len() - 1 {
            for value in [0x00, 0x01, 0x7F, 0xFF] {
                let mut broken = bytes.to_vec();
                broken[at] = value;
                if let Ok(document) = bson::RawDocument::from_bytes(&broken) {
                    refused += usize::from(AssetRecord::from_raw(document).is_err());
                }
            }
        }
        assert!(refused > bytes.len(), "{refused} corruptions refused");
    }

    #[test]
    fn a_wrong_or_missing_field_is_refused_by_name() {
        let mut stored = bson::to_document(&asset(None, None)).unwrap();
        stored.insert("status", "LOST_IN_SPACE");
        let error = AssetRecord::from_raw(&RawDocumentBuf::from_document(&stored).unwrap())
            .unwrap_err()
            .to_string();
        assert!(error.contains("`status`"), "{error}");
        stored.insert("status", "IN_USE");
        stored.insert("createdAt", "2026-01-01");
        let error = AssetRecord::from_raw(&RawDocumentBuf::from_document(&stored).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`createdAt`") && error.contains("a date"),
            "{error}"
        );
        stored.remove("createdAt");
        let error = AssetRecord::from_raw(&RawDocumentBuf::from_document(&stored).unwrap())
            .unwrap_err()
            .to_string();
        assert!(error.contains("`createdAt` is missing"), "{error}");
    }
}
