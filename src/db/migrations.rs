//! Versioned schema steps (indexes, mostly), applied in order and recorded
//! in `_migrations`. `down` undoes the last applied step. Steps that need
//! real MongoDB (TTL indexes) check the server kind: FerretDB refuses them.
//!
//! The indexes the models declare come from the caller
//! (`models::registry::indexes()`), so this machinery knows no model. A
//! step names the collections it touched by their names at the time: a
//! step is history, and a renamed collection would need a new step.

use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::IndexModel;
use mongodb::options::IndexOptions;

use super::model::IndexSpec;
use super::{Db, DbResult};

pub const COLLECTION: &str = "_migrations";

/// One index a step creates.
struct Index {
    collection: &'static str,
    name: &'static str,
    keys: fn() -> Document,
    unique: bool,
    /// Seconds after which MongoDB removes the row (not on FerretDB).
    ttl_secs: Option<u64>,
}

struct Step {
    id: i32,
    name: &'static str,
    indexes: &'static [Index],
    /// Whether the step makes the indexes the models declare (one per order
    /// field and the model's extras), given to `up` and `down`. Re-ensured
    /// on every `up`, so an order field added to a model later gets its
    /// index without a new step.
    declared: bool,
    /// Indexes this step removes (`collection`, `name`), before its own are made.
    drops: &'static [(&'static str, &'static str)],
}

const STEPS: &[Step] = &[
    Step {
        id: 1,
        name: "users: unique e-mail and list orderings",
        // Every model's declared indexes (`models::registry::indexes`): one
        // behind each order field and the model's extras. Re-ensured after
        // every `up`, so a model or order field added later gets its index
        // without a new step; undone with this, the first step.
        declared: true,
        indexes: &[],
        drops: &[],
    },
    Step {
        id: 2,
        name: "assets: category/status, unique serial key, list orderings",
        // Declared by the asset model since step 9.
        declared: false,
        indexes: &[],
        drops: &[],
    },
    Step {
        id: 3,
        name: "refresh-token families and the audit chain",
        declared: false,
        drops: &[],
        indexes: &[
            Index {
                collection: "refresh_tokens",
                name: "family",
                keys: || doc! { "family": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "refresh_tokens",
                name: "userId",
                keys: || doc! { "userId": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "refresh_tokens",
                name: "expiresAt_ttl",
                keys: || doc! { "expiresAt": 1 },
                unique: false,
                ttl_secs: Some(0),
            },
            Index {
                collection: "audit_logs",
                name: "seq_unique",
                keys: || doc! { "seq": 1 },
                unique: true,
                ttl_secs: None,
            },
            Index {
                collection: "audit_logs",
                name: "entity",
                keys: || doc! { "entityType": 1, "entityId": 1 },
                unique: false,
                ttl_secs: None,
            },
        ],
    },
    Step {
        id: 4,
        name: "refresh-token use claims",
        declared: false,
        drops: &[],
        indexes: &[
            Index {
                collection: "refresh_token_uses",
                name: "family",
                keys: || doc! { "family": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "refresh_token_uses",
                name: "expiresAt_ttl",
                keys: || doc! { "expiresAt": 1 },
                unique: false,
                ttl_secs: Some(0),
            },
        ],
    },
    Step {
        id: 5,
        name: "refresh-token family revocations",
        declared: false,
        drops: &[],
        indexes: &[Index {
            collection: "refresh_token_revocations",
            name: "expiresAt_ttl",
            keys: || doc! { "expiresAt": 1 },
            unique: false,
            ttl_secs: Some(0),
        }],
    },
    Step {
        id: 6,
        name: "clinical models, booking slots, programme seats, audit filters",
        declared: false,
        drops: &[],
        indexes: &[
            Index {
                collection: "schedule_slots",
                name: "scheduleId",
                keys: || doc! { "scheduleId": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "enrollment_seats",
                name: "programId",
                keys: || doc! { "programId": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "enrollment_seats",
                name: "enrollmentId",
                keys: || doc! { "enrollmentId": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "audit_logs",
                name: "actorId",
                keys: || doc! { "actor.id": 1, "seq": -1 },
                unique: false,
                ttl_secs: None,
            },
        ],
    },
    Step {
        id: 7,
        name: "analytics, webhooks and deliveries, the outbox; TTL backstops for retention",
        declared: false,
        drops: &[],
        indexes: &[
            Index {
                collection: super::outbox::COLLECTION,
                name: "state_at",
                keys: || doc! { "state": 1, "at": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: super::outbox::COLLECTION,
                name: "entity_prevStamp",
                keys: || doc! { "entityId": 1, "prevStamp": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "analytics_events",
                name: "at_ttl",
                keys: || doc! { "at": 1 },
                unique: false,
                ttl_secs: Some(90 * 86_400),
            },
            Index {
                collection: "webhook_claims",
                name: "at_ttl",
                keys: || doc! { "at": 1 },
                unique: false,
                ttl_secs: Some(90 * 86_400),
            },
            Index {
                collection: "leases",
                name: "at_ttl",
                keys: || doc! { "at": 1 },
                unique: false,
                ttl_secs: Some(86_400),
            },
            Index {
                collection: "webhook_deliveries",
                name: "createdAt_ttl",
                keys: || doc! { "createdAt": 1 },
                unique: false,
                ttl_secs: Some(90 * 86_400),
            },
        ],
    },
    Step {
        id: 8,
        name: "reports: list orderings, the worker's queue, claims by report",
        declared: false,
        drops: &[],
        indexes: &[Index {
            collection: "report_claims",
            name: "reportId",
            keys: || doc! { "reportId": 1 },
            unique: false,
            ttl_secs: None,
        }],
    },
    Step {
        id: 9,
        name: "users and assets: list orderings from their declarations (order_<field>)",
        declared: false,
        indexes: &[],
        // Named by hand before the models declared them; the declared ones
        // have the same keys, so these must go before those are made.
        drops: &[
            ("users", "name_id"),
            ("users", "createdAt_id"),
            ("assets", "name_id"),
            ("assets", "createdAt_id"),
            ("assets", "updatedAt_id"),
            ("assets", "value_id"),
        ],
    },
    Step {
        id: 10,
        name: "beneficiaries: ordered by birth year (the date of birth is sealed)",
        declared: false,
        indexes: &[],
        // The declared `order_birthYear` follows from the model.
        drops: &[("beneficiaries", "order_dateOfBirth")],
    },
    Step {
        id: 11,
        name: "sessions: a person's sessions; gone once expired (MongoDB)",
        declared: false,
        indexes: &[
            Index {
                collection: "sessions",
                name: "userId",
                keys: || doc! { "userId": 1, "lastUsedAt": -1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "sessions",
                name: "expiresAt_ttl",
                keys: || doc! { "expiresAt": 1 },
                unique: false,
                ttl_secs: Some(0),
            },
        ],
        drops: &[],
    },
];

/// A step and whether it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatus {
    pub id: i32,
    pub name: &'static str,
    pub applied_at: Option<DateTime>,
}

pub async fn status(db: &Db) -> DbResult<Vec<StepStatus>> {
    let applied: Vec<Document> = db
        .collection(COLLECTION)
        .find(doc! {})
        .max_time(db.max_time())
        .await?
        .try_collect()
        .await?;
    Ok(STEPS
        .iter()
        .map(|step| StepStatus {
            id: step.id,
            name: step.name,
            applied_at: applied
                .iter()
                .find(|d| d.get_i32("_id").ok() == Some(step.id))
                .and_then(|d| d.get_datetime("appliedAt").ok().copied()),
        })
        .collect())
}

/// Applies every pending step, then makes sure the `declared` indexes
/// (`models::registry::indexes()`) exist once their step is applied;
/// returns the ids applied.
pub async fn up(db: &Db, declared: &[IndexSpec]) -> DbResult<Vec<i32>> {
    let done = status(db).await?;
    let mut applied = Vec::new();
    let mut ensure = false;
    for step in STEPS {
        if done
            .iter()
            .any(|s| s.id == step.id && s.applied_at.is_some())
        {
            ensure |= step.declared;
            continue;
        }
        for (collection, name) in step.drops {
            drop_index(db, collection, name).await;
        }
        for index in step.indexes {
            create_index(db, index).await?;
        }
        if step.declared {
            for index in declared {
                create_generated(db, index).await?;
            }
        }
        db.collection(COLLECTION)
            .insert_one(doc! { "_id": step.id, "name": step.name, "appliedAt": DateTime::now() })
            .await?;
        tracing::info!(step = step.id, name = step.name, "migration applied");
        applied.push(step.id);
    }
    // After the pending steps: one of them may drop an index whose keys a
    // declared one takes over (step 9).
    if ensure {
        for index in declared {
            create_generated(db, index).await?;
        }
    }
    Ok(applied)
}

async fn drop_index(db: &Db, collection: &str, name: &str) {
    if let Err(error) = db.collection(collection).drop_index(name).await {
        // An index that was never created (TTL on FerretDB) or already gone.
        tracing::debug!(index = name, %error, "index not dropped");
    }
}

/// Undoes the last applied step (dropping the `declared` indexes with the
/// step that made them); returns its id, `None` when none is applied.
pub async fn down(db: &Db, declared: &[IndexSpec]) -> DbResult<Option<i32>> {
    let done = status(db).await?;
    let Some(last) = done.iter().rev().find(|s| s.applied_at.is_some()) else {
        return Ok(None);
    };
    let step = STEPS
        .iter()
        .find(|s| s.id == last.id)
        .expect("status lists only known steps");
    let declared = declared
        .iter()
        .filter(|_| step.declared)
        .map(|i| (i.collection, i.name.as_str()));
    let listed = step.indexes.iter().map(|i| (i.collection, i.name));
    for (collection, name) in listed.chain(declared) {
        drop_index(db, collection, name).await;
    }
    db.collection(COLLECTION)
        .delete_one(doc! { "_id": step.id })
        .await?;
    tracing::info!(step = step.id, name = step.name, "migration undone");
    Ok(Some(step.id))
}

async fn create_generated(db: &Db, index: &IndexSpec) -> DbResult<()> {
    let options = IndexOptions::builder()
        .name(index.name.clone())
        .unique(index.unique.then_some(true))
        .build();
    let model = IndexModel::builder()
        .keys(index.keys.clone())
        .options(options)
        .build();
    db.collection(index.collection).create_index(model).await?;
    Ok(())
}

async fn create_index(db: &Db, index: &Index) -> DbResult<()> {
    if index.ttl_secs.is_some() && db.is_ferretdb() {
        tracing::info!(
            index = index.name,
            "FerretDB has no TTL indexes; expired rows are refused by their queries instead"
        );
        return Ok(());
    }
    let mut options = IndexOptions::builder().name(index.name.to_string()).build();
    if index.unique {
        options.unique = Some(true);
    }
    if let Some(secs) = index.ttl_secs {
        options.expire_after = Some(std::time::Duration::from_secs(secs));
    }
    let model = IndexModel::builder()
        .keys((index.keys)())
        .options(options)
        .build();
    db.collection(index.collection).create_index(model).await?;
    Ok(())
}

/// Every collection a step names, for the test that they are still the models'.
#[cfg(test)]
pub(crate) fn collections() -> Vec<&'static str> {
    STEPS
        .iter()
        .flat_map(|step| step.indexes.iter().map(|i| i.collection))
        .chain(STEPS.iter().flat_map(|step| step.drops.iter().map(|d| d.0)))
        .collect()
}
