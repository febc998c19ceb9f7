//! What an entry says changed: one `Change` per field, found by `diff`
//! between two versions of a row, with sensitive values redacted and erased
//! values kept as digests, so an entry's hash holds after erasure.

use bson::{Bson, Document};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

    /// Replaces the values that are set, in clear and not erased yet by
    /// `[erased]`, keeping their digests; whether anything changed. Sealed
    /// values stay: erasure destroys the key that opens them, and their
    /// text (which the hash covers) tells a guesser nothing. Values kept in
    /// clear were written before personal values were sealed.
    pub fn erase(&mut self) -> bool {
        let mut touched = false;
        for (value, digest) in [
            (&mut self.before, &mut self.before_digest),
            (&mut self.after, &mut self.after_digest),
        ] {
            let sealed =
                matches!(value, Bson::String(text) if crate::vault::Sealed::is_sealed(text));
            if digest.is_none() && !sealed && !matches!(value, Bson::Null) {
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

pub use crate::db::model::Redaction;

impl Redaction {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bson::doc;

    use super::*;
    use crate::db::model::Model;

    fn none() -> Redaction {
        Redaction::default()
    }

    #[test]
    fn diff_lists_added_removed_and_changed_fields() {
        let before = doc! { "name": "Walker", "location": "Store" };
        let after = doc! { "name": "Walker 2", "status": "AVAILABLE" };
        assert_eq!(
            diff(Some(&before), Some(&after), &none()),
            [
                Change::new("location", "Store".into(), Bson::Null),
                Change::new("name", "Walker".into(), "Walker 2".into()),
                Change::new("status", Bson::Null, "AVAILABLE".into()),
            ]
        );
    }

    #[test]
    fn diff_of_a_creation_or_a_deletion_lists_every_field() {
        let row = doc! { "_id": 1, "name": "Walker" };
        assert_eq!(
            diff(None, Some(&row), &none()),
            [Change::new("name", Bson::Null, "Walker".into())]
        );
        assert_eq!(
            diff(Some(&row), None, &none()),
            [Change::new("name", "Walker".into(), Bson::Null)]
        );
    }

    #[test]
    fn diff_lists_a_changed_nested_document_as_one_change() {
        let before = doc! { "value": { "amountMinor": 1_i64, "currency": "SAR" } };
        let after = doc! { "value": { "amountMinor": 2_i64, "currency": "SAR" } };
        assert_eq!(
            diff(Some(&before), Some(&after), &none()),
            [Change::new(
                "value",
                Bson::Document(doc! { "amountMinor": 1_i64, "currency": "SAR" }),
                Bson::Document(doc! { "amountMinor": 2_i64, "currency": "SAR" }),
            )]
        );
        assert!(diff(Some(&before), Some(&before), &none()).is_empty());
    }

    #[test]
    fn unchanged_fields_and_bookkeeping_stamps_produce_nothing() {
        let before = doc! { "_id": 1, "name": "Walker", "createdAt": 1, "updatedAt": 1 };
        let after = doc! { "_id": 2, "name": "Walker", "createdAt": 2, "updatedAt": 2 };
        assert!(diff(Some(&before), Some(&after), &none()).is_empty());
    }

    #[test]
    fn sensitive_fields_are_redacted_and_omitted_ones_left_out() {
        let redaction = Redaction {
            redacted: vec!["notes".into()],
            omitted: vec!["serialKey".into()],
        };
        let before = doc! { "notes": "private", "serialKey": "a" };
        let after = doc! { "notes": "more private", "serialKey": "b" };
        assert_eq!(
            diff(Some(&before), Some(&after), &redaction),
            [Change::new("notes", REDACTED.into(), REDACTED.into())]
        );
        assert_eq!(
            diff(None, Some(&after), &redaction),
            [Change::new("notes", Bson::Null, REDACTED.into())],
            "an unset value stays unset"
        );
    }

    /// Every field `M` declares anything about, and one it does not, each
    /// changed: the fields redacted are exactly `SENSITIVE`, the fields
    /// left out exactly `UNAUDITED`; every other field shows its values.
    fn assert_redaction_is_declaration<M: Model>() {
        let redaction = Redaction::of::<M>();
        assert_eq!(redaction.redacted, M::SENSITIVE, "{}", M::ENTITY);
        assert_eq!(redaction.omitted, M::UNAUDITED, "{}", M::ENTITY);
        let fields: BTreeSet<&str> = [M::SENSITIVE, M::UNAUDITED, M::SECRET, M::INTERNAL]
            .concat()
            .into_iter()
            .chain(["plain"])
            .collect();
        let mut before = Document::new();
        let mut after = Document::new();
        for field in &fields {
            before.insert(*field, "old");
            after.insert(*field, "new");
        }
        let changes = diff(Some(&before), Some(&after), &redaction);
        let listed: BTreeSet<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        let left_out: BTreeSet<&str> = fields.difference(&listed).copied().collect();
        let redacted: BTreeSet<&str> = changes
            .iter()
            .filter(|c| c.before == Bson::String(REDACTED.into()))
            .map(|c| c.field.as_str())
            .collect();
        let declared = |list: &[&'static str]| list.iter().copied().collect::<BTreeSet<&str>>();
        assert_eq!(left_out, declared(M::UNAUDITED), "{}", M::ENTITY);
        assert_eq!(redacted, declared(M::SENSITIVE), "{}", M::ENTITY);
        for change in changes
            .iter()
            .filter(|c| !redacted.contains(c.field.as_str()))
        {
            assert_eq!(
                (&change.before, &change.after),
                (&Bson::from("old"), &Bson::from("new")),
                "{}",
                M::ENTITY
            );
        }
    }

    #[test]
    fn the_redaction_for_each_model_is_exactly_its_declaration() {
        use crate::models::*;
        assert_redaction_is_declaration::<analytics_event::record::AnalyticsEventRecord>();
        assert_redaction_is_declaration::<asset::record::AssetRecord>();
        assert_redaction_is_declaration::<audit_log_entry::entry::AuditLogEntryRecord>();
        assert_redaction_is_declaration::<beneficiary::record::BeneficiaryRecord>();
        assert_redaction_is_declaration::<disability_program::record::DisabilityProgramRecord>();
        assert_redaction_is_declaration::<enrollment::record::EnrollmentRecord>();
        assert_redaction_is_declaration::<report::record::ReportRecord>();
        assert_redaction_is_declaration::<schedule::record::ScheduleRecord>();
        assert_redaction_is_declaration::<therapy_session::record::TherapySessionRecord>();
        assert_redaction_is_declaration::<user::record::UserRecord>();
        assert_redaction_is_declaration::<webhook::record::WebhookRecord>();
        assert_redaction_is_declaration::<webhook_delivery::record::WebhookDeliveryRecord>();
    }

    #[test]
    fn assets_leave_their_serial_key_out_of_the_audit_log() {
        assert_eq!(
            Redaction::of::<crate::models::asset::record::AssetRecord>(),
            Redaction {
                redacted: vec![],
                omitted: vec!["serialKey".into()],
            }
        );
    }
}
