//! Versioned schema steps (indexes, mostly), applied in order and recorded
//! in `_migrations`. `down` undoes the last applied step. Steps that need
//! real MongoDB (TTL indexes) check the server kind: FerretDB refuses them.

use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::IndexModel;
use mongodb::options::IndexOptions;

use super::model::{IndexSpec, Model};
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
    /// Indexes generated from model declarations (one per order field and
    /// the model's extras). Re-ensured on every `up`, so an order field added
    /// to a model later gets its index without a new step.
    generated: Option<fn() -> Vec<IndexSpec>>,
}

const STEPS: &[Step] = &[
    Step {
        id: 1,
        name: "users: unique e-mail and list orderings",
        generated: None,
        indexes: &[
            Index {
                collection: "users",
                name: "email_unique",
                keys: || doc! { "email": 1 },
                unique: true,
                ttl_secs: None,
            },
            Index {
                collection: "users",
                name: "name_id",
                keys: || doc! { "name": 1, "_id": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "users",
                name: "createdAt_id",
                keys: || doc! { "createdAt": 1, "_id": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "users",
                name: "role_active",
                keys: || doc! { "role": 1, "active": 1 },
                unique: false,
                ttl_secs: None,
            },
        ],
    },
    Step {
        id: 2,
        name: "assets: category/status, unique serial key, list orderings",
        generated: None,
        indexes: &[
            Index {
                collection: "assets",
                name: "category_status",
                keys: || doc! { "category": 1, "status": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "assets",
                name: "serialKey_unique",
                keys: || doc! { "serialKey": 1 },
                unique: true,
                ttl_secs: None,
            },
            Index {
                collection: "assets",
                name: "name_id",
                keys: || doc! { "name": 1, "_id": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "assets",
                name: "createdAt_id",
                keys: || doc! { "createdAt": 1, "_id": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "assets",
                name: "updatedAt_id",
                keys: || doc! { "updatedAt": 1, "_id": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "assets",
                name: "value_id",
                keys: || doc! { "value.amountMinor": 1, "_id": 1 },
                unique: false,
                ttl_secs: None,
            },
            Index {
                collection: "assets",
                name: "assignedTo",
                keys: || doc! { "assignedTo": 1 },
                unique: false,
                ttl_secs: None,
            },
        ],
    },
    Step {
        id: 3,
        name: "refresh-token families and the audit chain",
        generated: None,
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
        generated: None,
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
        generated: None,
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
        generated: Some(clinical_indexes),
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
        generated: Some(live_indexes),
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
                collection: crate::models::analytics_event::record::COLLECTION,
                name: "at_ttl",
                keys: || doc! { "at": 1 },
                unique: false,
                ttl_secs: Some(90 * 86_400),
            },
            Index {
                collection: crate::models::webhook::record::CLAIMS,
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
                collection: crate::models::webhook::record::DELIVERIES,
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
        generated: Some(report_indexes),
        indexes: &[Index {
            collection: crate::models::report::record::CLAIMS,
            name: "reportId",
            keys: || doc! { "reportId": 1 },
            unique: false,
            ttl_secs: None,
        }],
    },
];

/// Every index the analytics and webhook models declare.
pub fn live_indexes() -> Vec<IndexSpec> {
    use crate::models::analytics_event::record as analytics;
    use crate::models::webhook::record as webhooks;
    use crate::models::webhook_delivery::record as deliveries;
    [
        analytics::AnalyticsRecord::indexes(),
        webhooks::WebhookRecord::indexes(),
        deliveries::DeliveryRecord::indexes(),
    ]
    .concat()
}

/// Every index the reports declare (`createdAt` among them, for retention).
pub fn report_indexes() -> Vec<IndexSpec> {
    crate::models::report::record::ReportRecord::indexes()
}

/// Every index the clinical models declare.
pub fn clinical_indexes() -> Vec<IndexSpec> {
    use crate::models::beneficiary::record as beneficiaries;
    use crate::models::disability_program::record as programs;
    use crate::models::enrollment::record as enrollments;
    use crate::models::schedule::record as schedules;
    use crate::models::therapy_session::record as sessions;
    [
        programs::ProgramRecord::indexes(),
        beneficiaries::BeneficiaryRecord::indexes(),
        enrollments::EnrollmentRecord::indexes(),
        sessions::SessionRecord::indexes(),
        schedules::ScheduleRecord::indexes(),
    ]
    .concat()
}

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

/// Applies every pending step; returns the ids applied.
pub async fn up(db: &Db) -> DbResult<Vec<i32>> {
    let done = status(db).await?;
    let mut applied = Vec::new();
    for step in STEPS {
        if done
            .iter()
            .any(|s| s.id == step.id && s.applied_at.is_some())
        {
            if let Some(generated) = step.generated {
                for index in generated() {
                    create_generated(db, &index).await?;
                }
            }
            continue;
        }
        for index in step.indexes {
            create_index(db, index).await?;
        }
        if let Some(generated) = step.generated {
            for index in generated() {
                create_generated(db, &index).await?;
            }
        }
        db.collection(COLLECTION)
            .insert_one(doc! { "_id": step.id, "name": step.name, "appliedAt": DateTime::now() })
            .await?;
        tracing::info!(step = step.id, name = step.name, "migration applied");
        applied.push(step.id);
    }
    Ok(applied)
}

/// Undoes the last applied step; returns its id, `None` when none is applied.
pub async fn down(db: &Db) -> DbResult<Option<i32>> {
    let done = status(db).await?;
    let Some(last) = done.iter().rev().find(|s| s.applied_at.is_some()) else {
        return Ok(None);
    };
    let step = STEPS
        .iter()
        .find(|s| s.id == last.id)
        .expect("status lists only known steps");
    let generated: Vec<(&str, String)> = step
        .generated
        .map(|g| g().into_iter().map(|i| (i.collection, i.name)).collect())
        .unwrap_or_default();
    let listed = step
        .indexes
        .iter()
        .map(|i| (i.collection, i.name.to_string()));
    for (collection, name) in listed.chain(generated) {
        if let Err(error) = db.collection(collection).drop_index(&name).await {
            // An index that was never created (TTL on FerretDB) or already gone.
            tracing::debug!(index = name, %error, "index not dropped");
        }
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
