//! What an entry says changed: one `Change` per field, found by `diff`
//! between two versions of a row, with sensitive values redacted and erased
//! values kept as digests, so an entry's hash holds after erasure.

use bson::{Bson, Document};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an erased value reads.
pub const ERASED: &str = "[erased]";
/// Field names whose values never enter the log.
const SENSITIVE: &[&str] = &[
    "passwordHash",
    "password",
    "secret",
    "nationalId",
    "medicalNotes",
    "notes",
];

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

/// Replaces the values of sensitive fields (the shared list and `extra`) by a mark.
pub fn redact_fields(changes: Vec<Change>, extra: &[&str]) -> Vec<Change> {
    changes
        .into_iter()
        .map(|mut c| {
            if SENSITIVE.contains(&c.field.as_str()) || extra.contains(&c.field.as_str()) {
                let mark = |b: &Bson| {
                    if matches!(b, Bson::Null) {
                        Bson::Null
                    } else {
                        Bson::String("[redacted]".into())
                    }
                };
                c.before = mark(&c.before);
                c.after = mark(&c.after);
            }
            c
        })
        .collect()
}

/// The fields that differ between two documents, as changes.
pub fn diff(before: Option<&Document>, after: Option<&Document>) -> Vec<Change> {
    let empty = Document::new();
    let before = before.unwrap_or(&empty);
    let after = after.unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "_id" | "updatedAt" | "createdAt" | "serialKey"))
        .filter_map(|k| {
            let b = before.get(k).cloned().unwrap_or(Bson::Null);
            let a = after.get(k).cloned().unwrap_or(Bson::Null);
            (b != a).then(|| Change::new(k.clone(), b, a))
        })
        .collect()
}
