//! The hash chain: each entry stores the hash of the one before it and its
//! own hash over its content, so a changed, deleted, reordered or truncated
//! entry is found by `verify`. `AuditLog` is the one writer that appends;
//! nothing in the API updates or deletes entries (erasure keeps digests).

use std::sync::{Arc, OnceLock};

use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::Collection;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::changes::value_digest;
use super::entry::{AuditLogEntryRecord, COLLECTION, NewEntry};
use crate::db::{Db, DbError, DbResult};

/// The `prevHash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The chain version new entries are written with.
pub const CHAIN_VERSION: i32 = 2;
/// Attempts of an append that races appends in other processes.
const APPEND_ATTEMPTS: usize = 5;

/// Why an entry could not be appended.
#[derive(Debug, thiserror::Error)]
enum AppendError {
    #[error("the audit sequence is exhausted")]
    Exhausted,
    #[error("audit append lost the race five times")]
    LostTheRace,
}

impl From<AppendError> for DbError {
    fn from(error: AppendError) -> Self {
        Self::Other(error.into())
    }
}

impl AuditLogEntryRecord {
    /// The hash over everything but `_id` and `hash`, in a fixed order.
    pub fn compute_hash(&self) -> String {
        let changes: Vec<serde_json::Value> = self
            .changes
            .iter()
            .map(|c| {
                if self.v >= 2 {
                    let digest = |value: &Bson, kept: &Option<String>| {
                        kept.clone().unwrap_or_else(|| value_digest(value))
                    };
                    serde_json::json!([
                        c.field,
                        digest(&c.before, &c.before_digest),
                        digest(&c.after, &c.after_digest)
                    ])
                } else {
                    serde_json::json!([
                        c.field,
                        c.before.clone().into_relaxed_extjson(),
                        c.after.clone().into_relaxed_extjson()
                    ])
                }
            })
            .collect();
        let canonical = serde_json::json!([
            self.seq,
            self.at.timestamp_millis(),
            self.actor.kind,
            self.actor.id.map(|id| id.to_hex()),
            self.action,
            self.entity_type,
            self.entity_id,
            changes,
            self.request_id,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// Where an entry goes in the chain: its position and the hash it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub prev_hash: String,
}

impl Link {
    /// The first entry's place.
    pub fn first() -> Self {
        Self {
            seq: 1,
            prev_hash: GENESIS.to_string(),
        }
    }

    /// The place after the entry `seq` whose hash is `hash`; `None` when
    /// the sequence is exhausted.
    pub fn after(seq: i64, hash: &str) -> Option<Self> {
        Some(Self {
            seq: seq.checked_add(1)?,
            prev_hash: hash.to_string(),
        })
    }
}

impl NewEntry {
    /// The entry as it is stored at `link`, written `at`, with its hash.
    pub fn chained(&self, link: Link, at: DateTime) -> AuditLogEntryRecord {
        let mut entry = AuditLogEntryRecord {
            id: self.id.unwrap_or_default(),
            seq: link.seq,
            at,
            actor: self.actor.clone(),
            action: self.action.clone(),
            entity_type: self.entity_type.clone(),
            entity_id: self.entity_id.clone(),
            changes: self.changes.clone(),
            request_id: self.request_id.clone(),
            prev_hash: link.prev_hash,
            hash: String::new(),
            v: CHAIN_VERSION,
        };
        entry.hash = entry.compute_hash();
        entry
    }
}

/// The first entry that does not hold, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub seq: i64,
    pub reason: String,
}

/// Checks a chain entry by entry, in `seq` order, from the first.
#[derive(Debug)]
pub struct Verifier {
    expected_seq: i64,
    prev: String,
    checked: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev: GENESIS.to_string(),
            checked: 0,
        }
    }
}

impl Verifier {
    /// How many entries held so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Checks the next entry; the breach it makes, if it does not hold.
    pub fn check(&mut self, entry: &AuditLogEntryRecord) -> Result<(), Breach> {
        let breach = |reason: &str| Breach {
            seq: entry.seq,
            reason: reason.into(),
        };
        if entry.seq != self.expected_seq {
            return Err(Breach {
                seq: self.expected_seq,
                reason: format!(
                    "entry {} is missing (found {} next)",
                    self.expected_seq, entry.seq
                ),
            });
        }
        if entry.prev_hash != self.prev {
            return Err(breach("its prevHash does not match the entry before it"));
        }
        if entry.compute_hash() != entry.hash {
            return Err(breach("its content does not match its hash"));
        }
        // A kept digest stands only for an erased value.
        if entry.changes.iter().any(|c| c.forged()) {
            return Err(breach(
                "a value kept beside its digest is not the erased mark",
            ));
        }
        self.prev = entry.hash.clone();
        self.expected_seq += 1;
        self.checked += 1;
        Ok(())
    }
}

/// Checks a whole sequence of entries, in the order given: how many held,
/// and the first that did not.
pub fn verify_entries<'a>(
    entries: impl IntoIterator<Item = &'a AuditLogEntryRecord>,
) -> (u64, Option<Breach>) {
    let mut verifier = Verifier::default();
    for entry in entries {
        if let Err(breach) = verifier.check(entry) {
            return (verifier.checked(), Some(breach));
        }
    }
    (verifier.checked(), None)
}

fn append_lock() -> Arc<Mutex<()>> {
    static LOCK: OnceLock<Arc<Mutex<()>>> = OnceLock::new();
    LOCK.get_or_init(|| Arc::new(Mutex::new(()))).clone()
}

/// The `audit_logs` collection: the one writer every entry goes through,
/// verification, and erasure.
pub struct AuditLog {
    pub(super) collection: Collection<Document>,
    pub(super) max_time: std::time::Duration,
}

impl AuditLog {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            max_time: db.max_time(),
        }
    }

    /// Appends an entry after the current last one. Appends in this process
    /// are serialised; across processes the unique `seq` index makes a racing
    /// append retry.
    pub async fn append(&self, entry: NewEntry) -> DbResult<AuditLogEntryRecord> {
        let lock = append_lock();
        let _guard = lock.lock().await;
        for _ in 0..APPEND_ATTEMPTS {
            let last = self
                .collection
                .find_one(doc! {})
                .sort(doc! { "seq": -1 })
                .max_time(self.max_time)
                .await?;
            let link = match last {
                Some(d) => {
                    let seq = d.get_i64("seq").map_err(|e| DbError::Other(e.into()))?;
                    let hash = d.get_str("hash").map_err(|e| DbError::Other(e.into()))?;
                    Link::after(seq, hash).ok_or(AppendError::Exhausted)?
                }
                None => Link::first(),
            };
            let record = entry.chained(link, DateTime::now());
            match self
                .collection
                .insert_one(bson::to_document(&record)?)
                .await
            {
                Ok(_) => return Ok(record),
                Err(e) if crate::db::duplicate_key(&e) => {
                    if let Some(id) = entry.id
                        && let Some(written) = self
                            .collection
                            .find_one(doc! { "_id": id })
                            .max_time(self.max_time)
                            .await?
                    {
                        return Ok(bson::from_document(written)?);
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppendError::LostTheRace.into())
    }

    /// Walks the chain in `seq` order; the first entry that does not hold.
    pub async fn verify(&self) -> DbResult<Option<Breach>> {
        Ok(self.verify_counting().await?.1)
    }

    /// Like `verify`, also counting the entries that held.
    pub async fn verify_counting(&self) -> DbResult<(u64, Option<Breach>)> {
        let mut cursor = self
            .collection
            .find(doc! {})
            .sort(doc! { "seq": 1 })
            .await?;
        let mut verifier = Verifier::default();
        while let Some(document) = cursor.try_next().await? {
            let seq = document.get_i64("seq").unwrap_or(-1);
            let entry: AuditLogEntryRecord = match bson::from_document(document) {
                Ok(entry) => entry,
                Err(e) => {
                    let reason = format!("unreadable entry: {e}");
                    return Ok((verifier.checked(), Some(Breach { seq, reason })));
                }
            };
            if let Err(breach) = verifier.check(&entry) {
                return Ok((verifier.checked(), Some(breach)));
            }
        }
        Ok((verifier.checked(), None))
    }

    /// Erases the values of `fields` in the entries about one entity,
    /// keeping each value's digest so the chain still verifies. Returns how
    /// many entries changed. The only write to existing entries, for the
    /// right to erasure.
    pub async fn erase_values(
        &self,
        entity_type: &str,
        entity_id: &str,
        fields: &[&str],
    ) -> DbResult<u64> {
        let mut changed = 0;
        for mut entry in self.for_entity(entity_type, entity_id).await? {
            if entry.v < 2 {
                // Version-1 hashes cover values themselves; those entries
                // hold sensitive fields redacted already.
                continue;
            }
            let mut touched = false;
            for change in &mut entry.changes {
                if fields.contains(&change.field.as_str()) {
                    touched |= change.erase();
                }
            }
            if touched {
                self.collection
                    .update_one(
                        doc! { "_id": entry.id },
                        doc! { "$set": { "changes": bson::to_bson(&entry.changes)? } },
                    )
                    .await?;
                changed += 1;
            }
        }
        Ok(changed)
    }
}

impl Db {
    /// The audit collection's own operations.
    pub fn audit(&self) -> AuditLog {
        AuditLog::new(self)
    }
}

#[cfg(test)]
mod tests {
    use bson::oid::ObjectId;

    use super::super::changes::Change;
    use super::super::entry::Actor;
    use super::*;

    fn new_entry(n: u8) -> NewEntry {
        NewEntry {
            id: None,
            actor: Actor::user(ObjectId::from_bytes([n; 12])),
            action: format!("test.step{n}"),
            entity_type: "Test".into(),
            entity_id: Some(n.to_string()),
            changes: vec![Change::new(
                "name",
                Bson::String(format!("before {n}")),
                Bson::String(format!("after {n}")),
            )],
            request_id: Some(format!("request-{n}")),
        }
    }

    /// `count` entries, each chained after the one before.
    fn chain(count: u8) -> Vec<AuditLogEntryRecord> {
        let mut entries: Vec<AuditLogEntryRecord> = Vec::new();
        for n in 1..=count {
            let link = match entries.last() {
                Some(last) => Link::after(last.seq, &last.hash).expect("far from exhausted"),
                None => Link::first(),
            };
            let at = DateTime::from_millis(1_700_000_000_000 + i64::from(n));
            entries.push(new_entry(n).chained(link, at));
        }
        entries
    }

    /// A change made to a stored entry.
    type Edit = fn(&mut AuditLogEntryRecord);

    #[test]
    fn an_entrys_hash_changes_when_any_hashed_field_changes() {
        let entry = chain(1).remove(0);
        let edits: Vec<(&str, Edit)> = vec![
            ("seq", |e| e.seq += 1),
            ("at", |e| {
                e.at = DateTime::from_millis(e.at.timestamp_millis() + 1);
            }),
            ("actor kind", |e| e.actor.kind = "system".into()),
            ("actor id", |e| e.actor.id = None),
            ("action", |e| e.action = "test.rewritten".into()),
            ("entity type", |e| e.entity_type = "Other".into()),
            ("entity id", |e| e.entity_id = None),
            ("a change's field", |e| e.changes[0].field = "title".into()),
            ("a change's before", |e| e.changes[0].before = Bson::Null),
            ("a change's after", |e| e.changes[0].after = Bson::Int32(1)),
            ("a change added", |e| {
                e.changes
                    .push(Change::new("extra", Bson::Null, Bson::Int32(1)));
            }),
            ("a change removed", |e| e.changes.clear()),
            ("request id", |e| e.request_id = None),
            ("prev hash", |e| e.prev_hash = "1".repeat(64)),
        ];
        for (what, edit) in edits {
            let mut edited = entry.clone();
            edit(&mut edited);
            assert_ne!(edited.compute_hash(), entry.hash, "{what}");
        }
        let mut moved = entry.clone();
        moved.id = ObjectId::new();
        assert_eq!(moved.compute_hash(), entry.hash, "the id is not hashed");
    }

    #[test]
    fn the_chain_links_each_entry_to_the_previous_hash_starting_from_genesis() {
        let entries = chain(4);
        assert_eq!(entries[0].seq, 1);
        assert_eq!(entries[0].prev_hash, GENESIS);
        for pair in entries.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1);
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        for entry in &entries {
            assert_eq!(entry.v, CHAIN_VERSION);
            assert_eq!(entry.hash, entry.compute_hash());
        }
        assert_eq!(verify_entries(&entries), (4, None));
    }

    #[test]
    fn no_entry_follows_the_last_possible_seq() {
        assert_eq!(Link::after(i64::MAX, GENESIS), None);
    }

    #[test]
    fn verification_finds_a_changed_entry() {
        let mut entries = chain(5);
        entries[2].action = "test.rewritten".into();
        let breach = Breach {
            seq: 3,
            reason: "its content does not match its hash".into(),
        };
        assert_eq!(verify_entries(&entries), (2, Some(breach)));
    }

    #[test]
    fn verification_finds_a_removed_entry() {
        let mut entries = chain(5);
        entries.remove(3);
        let breach = Breach {
            seq: 4,
            reason: "entry 4 is missing (found 5 next)".into(),
        };
        assert_eq!(verify_entries(&entries), (3, Some(breach)));
    }

    #[test]
    fn verification_finds_a_reordered_entry() {
        let mut entries = chain(5);
        entries.swap(1, 2);
        let breach = Breach {
            seq: 2,
            reason: "entry 2 is missing (found 3 next)".into(),
        };
        assert_eq!(verify_entries(&entries), (1, Some(breach)));
    }

    #[test]
    fn verification_finds_entries_whose_positions_were_swapped() {
        let mut entries = chain(5);
        entries.swap(1, 2);
        entries[1].seq = 2;
        entries[2].seq = 3;
        let (checked, breach) = verify_entries(&entries);
        assert_eq!(checked, 1);
        assert_eq!(breach.map(|b| b.seq), Some(2));
    }

    #[test]
    fn erased_values_keep_the_chain_verifiable() {
        let mut entries = chain(3);
        assert!(entries[1].changes[0].erase());
        assert_eq!(verify_entries(&entries), (3, None));
    }

    #[test]
    fn verification_finds_a_digest_kept_beside_a_value_that_is_not_erased() {
        let mut entries = chain(3);
        let change = &mut entries[1].changes[0];
        change.after_digest = Some(super::super::changes::value_digest(&change.after));
        let breach = Breach {
            seq: 2,
            reason: "a value kept beside its digest is not the erased mark".into(),
        };
        assert_eq!(verify_entries(&entries), (1, Some(breach)));
    }
}
