//! Settling a change recorded in the outbox: its audit entry (written once:
//! the entry's id is the outbox entry's), then its analytics events, its
//! webhook deliveries and its bus event, then the entry is marked done.
//! The request path does this right after its write; `recover` does it for
//! intents a crash left behind, once it has read the row to tell whether
//! the write happened.

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, DateTime, Document};

use super::Host;
use crate::db::outbox::{Entry, Outbox};
use crate::db::{DbError, DbResult};
use crate::events::{ChangeKind, Event, Snapshot};
use crate::models::audit_log_entry::changes::{Change, ERASED, REDACTED, diff};
use crate::models::audit_log_entry::entry::NewEntry;
use crate::models::events as names;
use crate::vault::{DataKey, Sealed, VaultError};

/// How old an intent must be before recovery settles it: far longer than
/// any request takes between its intent and its write.
pub const SETTLE_AFTER: Duration = Duration::from_secs(30);

fn kind(entry: &Entry) -> ChangeKind {
    ChangeKind::parse(&entry.kind).unwrap_or(ChangeKind::Updated)
}

/// Writes the change's audit entry (at most once); returns its changes.
pub async fn audit(
    app: &dyn Host,
    entry: &Entry,
    after: Option<&Document>,
) -> DbResult<Vec<Change>> {
    let mut changes = diff(entry.before.as_ref(), after, &entry.redaction());
    seal_personal(app, entry, after, &mut changes).await?;
    app.db()
        .audit()
        .append(NewEntry {
            id: Some(entry.id),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            entity_type: entry.entity.clone(),
            entity_id: Some(entry.entity_id.to_hex()),
            changes: changes.clone(),
            request_id: entry.request_id.clone(),
        })
        .await?;
    Ok(changes)
}

/// Seals a change's personal values (`Model::PERSONAL`) under its person's
/// data key, so that erasing the person (destroying the key) reaches the
/// audit entry without rewriting it: its hash covers the sealed text, which
/// no guess can be checked against. Values already sealed (sealed fields)
/// and redacted ones stay as they are.
async fn seal_personal(
    app: &dyn Host,
    entry: &Entry,
    after: Option<&Document>,
    changes: &mut [Change],
) -> DbResult<()> {
    let row = after.or(entry.before.as_ref());
    let Some(subject) = row.and_then(|r| entry.subject_of(r)).or(entry.subject) else {
        return Ok(());
    };
    let mut key = None;
    for change in changes
        .iter_mut()
        .filter(|c| entry.personal.contains(&c.field))
    {
        let key = match &key {
            Some(key) => key,
            None => key.insert(
                app.vault()
                    .create_key(subject)
                    .await
                    .map_err(vault_failed)?,
            ),
        };
        for value in [&mut change.before, &mut change.after] {
            *value = seal_value(key, std::mem::replace(value, Bson::Null));
        }
    }
    Ok(())
}

fn vault_failed(error: VaultError) -> DbError {
    match error {
        VaultError::Db(error) => error,
        other => DbError::Other(other.into()),
    }
}

/// A value as the audit entry keeps it: sealed, unless unset, sealed already or redacted.
fn seal_value(key: &DataKey, value: Bson) -> Bson {
    match value {
        Bson::Null => Bson::Null,
        Bson::String(text) if Sealed::is_sealed(&text) || text == REDACTED || text == ERASED => {
            Bson::String(text)
        }
        other => {
            let text = other.into_relaxed_extjson().to_string();
            Bson::String(key.seal(&text).as_str().to_string())
        }
    }
}

/// Everything after the audit entry: analytics, deliveries, the bus event,
/// and the entry marked done.
pub async fn follow(
    app: &dyn Host,
    entry: &Entry,
    changes: &[Change],
    row: &Document,
    snapshot: Snapshot,
) -> DbResult<()> {
    // First, so that no cached answer outlives the write even if what
    // follows fails and waits for recovery.
    app.responses()
        .invalidate(&entry.entity, entry.entity_id)
        .await;
    let kind = kind(entry);
    let fields: Vec<String> = changes.iter().map(|c| c.field.clone()).collect();
    let raised = names::raised(&entry.action, kind, &fields);
    super::analytics::record_change(app, entry, &raised).await?;
    super::webhooks::enqueue_change(app, entry, &raised, changes, row).await?;
    app.bus().publish(Event::record(
        &entry.entity,
        kind,
        entry.entity_id,
        snapshot,
    ));
    Outbox::new(app.db()).done(entry.id).await
}

/// Settles intents older than `age`; returns how many it settled.
pub async fn recover(app: &dyn Host, age: Duration) -> DbResult<usize> {
    let outbox = Outbox::new(app.db());
    let cutoff = DateTime::from_millis(
        DateTime::now().timestamp_millis() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX / 2),
    );
    let stale = outbox.stale(cutoff, 100).await?;
    let mut settled = 0;
    for entry in stale {
        let row = outbox.row(&entry).await?;
        let happened = match kind(&entry) {
            ChangeKind::Created => row.is_some(),
            ChangeKind::Deleted => row.is_none(),
            ChangeKind::Updated => match (&row, entry.stamp) {
                (Some(row), Some(stamp)) => {
                    row.get_datetime("updatedAt").ok() == Some(&stamp)
                        || outbox.continued_from(entry.entity_id, stamp).await?
                }
                _ => false,
            },
        };
        if !happened {
            tracing::info!(action = %entry.action, id = %entry.entity_id, "an unfinished change did not happen; its intent is void");
            outbox.void(entry.id).await?;
            continue;
        }
        let after = if kind(&entry) == ChangeKind::Deleted {
            None
        } else {
            row
        };
        let changes = audit(app, &entry, after.as_ref()).await?;
        let mut shown = after.or_else(|| entry.before.clone()).unwrap_or_default();
        for field in &entry.secret {
            shown.remove(field);
        }
        let mut announced = shown.clone();
        for field in &entry.personal {
            announced.remove(field);
        }
        follow(
            app,
            &entry,
            &changes,
            &shown,
            Snapshot::from_document(announced),
        )
        .await?;
        tracing::warn!(action = %entry.action, id = %entry.entity_id, "settled a change a stopped request left unfinished");
        metrics::counter!("alawael_outbox_recovered_total").increment(1);
        settled += 1;
    }
    Ok(settled)
}

/// Every few seconds, on the instance holding the lease, settles what crashes left.
pub async fn recovery_loop(app: Arc<dyn Host>) {
    loop {
        if !super::wait(&*app, Duration::from_secs(10)).await {
            return;
        }
        match super::lease::take(app.db(), "outbox-recovery", &app.live().instance, 30).await {
            Ok(true) => {
                if let Err(error) = recover(&*app, SETTLE_AFTER).await {
                    tracing::warn!(%error, "outbox recovery failed; retrying later");
                }
            }
            Ok(false) => {}
            Err(error) => tracing::debug!(%error, "outbox recovery lease unavailable"),
        }
    }
}
