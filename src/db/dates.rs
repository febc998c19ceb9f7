//! Stored dates read straight from BSON. `bson::DateTime`'s own
//! `Deserialize` goes through extended JSON (`{"$date": {"$numberLong":
//! "…"}}`, the number formatted and parsed again), which was a visible share
//! of decoding a page; reading the field as raw BSON takes the number as is.

use bson::{DateTime, RawBson};
use serde::de::{Deserialize, Deserializer, Error};

/// For `#[serde(deserialize_with = "dates::read")]` on a `DateTime` field.
pub fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime, D::Error> {
    match RawBson::deserialize(deserializer)? {
        RawBson::DateTime(date) => Ok(date),
        other => Err(D::Error::custom(format!(
            "expected a date, found {:?}",
            other.element_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Row {
        #[serde(deserialize_with = "read")]
        at: DateTime,
    }

    #[test]
    fn reads_a_date_from_raw_bson_and_from_a_document() {
        let at = DateTime::from_millis(1_795_924_377_006);
        let raw = rawdoc! { "at": at };
        let row: Row = bson::from_slice(raw.as_bytes()).unwrap();
        assert_eq!(row.at, at);
        let row: Row = bson::from_document(doc! { "at": at }).unwrap();
        assert_eq!(row.at, at);
        assert!(bson::from_document::<Row>(doc! { "at": "2026-01-01" }).is_err());
    }
}
