//! What an entry says changed: one `Change` per field, found by `diff`
//! between two versions of a row, with sensitive values redacted and erased
//! values kept as digests, so an entry's hash holds after erasure.

use bson::{Bson, Document};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::model::Model;

/// What an erased value reads.
pub const ERASED: &str = "[erased]";
/// What a redacted value reads.
pub const REDACTED: &str = "[redacted]";
/// Fields no change lists: the id and the bookkeeping stamps.
const BOOKKEEPING: &[&str] = &["_id", "updatedAt", "createdAt"];

/// One changed field, before and after. When a person's data is erased, a
/// value is replaced by `[erased]` and its digest kept beside it, so the
/// entry's hash (over digests of values, from chain version 2) still holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub field: String,
    pub before: Bson,
    pub after: Bson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_digest: Option<String>,
}

impl Change {
    pub fn new(field: impl Into<String>, before: Bson, after: Bson) -> Self {
        Self {
            field: field.into(),
            before,
            after,
            before_digest: None,
            after_digest: None,
        }
    }

    /// Replaces the values that are set and not erased yet by `[erased]`,
    /// keeping their digests; whether anything changed.
    pub fn erase(&mut self) -> bool {
        let mut touched = false;
        for (value, digest) in [
            (&mut self.before, &mut self.before_digest),
            (&mut self.after, &mut self.after_digest),
        ] {
            if digest.is_none() && !matches!(value, Bson::Null) {
                *digest = Some(value_digest(value));
                *value = Bson::String(ERASED.into());
                touched = true;
            }
        }
        touched
    }

    /// Whether a kept digest stands beside anything but the erased mark.
    pub fn forged(&self) -> bool {
        (self.before_digest.is_some() && self.before != Bson::String(ERASED.into()))
            || (self.after_digest.is_some() && self.after != Bson::String(ERASED.into()))
    }
}

/// The digest a value contributes to a version-2 hash.
pub fn value_digest(value: &Bson) -> String {
    hex::encode(Sha256::digest(
        value.clone().into_relaxed_extjson().to_string().as_bytes(),
    ))
}

/// What the audit log keeps out of one model's changes, as the model
/// declares it: the values it redacts (`Model::SENSITIVE`) and the fields
/// it leaves out altogether (`Model::UNAUDITED`).
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

    fn redacts(&self, field: &str) -> bool {
        self.redacted.iter().any(|f| f == field)
    }

    fn omits(&self, field: &str) -> bool {
        BOOKKEEPING.contains(&field) || self.omitted.iter().any(|f| f == field)
    }
}

/// A set value replaced by the redaction mark (an unset one stays unset).
fn redact(value: Bson) -> Bson {
    match value {
        Bson::Null => Bson::Null,
        _ => Bson::String(REDACTED.into()),
    }
}

/// The top-level fields that differ between two versions of a row, as
/// changes (a nested document that differs is one change, whole), with
/// `redaction` applied; the id and the bookkeeping stamps are left out.
pub fn diff(
    before: Option<&Document>,
    after: Option<&Document>,
    redaction: &Redaction,
) -> Vec<Change> {
    let empty = Document::new();
    let before = before.unwrap_or(&empty);
    let after = after.unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !redaction.omits(k))
        .filter_map(|k| {
            let b = before.get(k).cloned().unwrap_or(Bson::Null);
            let a = after.get(k).cloned().unwrap_or(Bson::Null);
            (b != a).then(|| {
                if redaction.redacts(k) {
                    Change::new(k.clone(), redact(b), redact(a))
                } else {
                    Change::new(k.clone(), b, a)
                }
            })
        })
        .collect()
}

