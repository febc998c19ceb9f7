//! The models, one folder each, found by the model's name: its stored
//! record and filters, its declaration (collection, order fields, indexes,
//! scope, sensitive fields), its rules, and its GraphQL type and resolvers.
//!
//! [`with_models!`](crate::with_models) is the one list of them. Every
//! per-model registry is derived from it: the node kinds and their names,
//! the `Node` interface and `node(id:)`, the merged Query, Mutation and
//! Subscription roots, the event catalogue, the seeded types and the
//! generated indexes. Adding a model is one folder and one line there.

pub mod analytics_event;
pub mod asset;
pub mod audit_log_entry;
pub mod beneficiary;
pub mod disability_program;
pub mod enrollment;
pub mod events;
pub mod registry;
pub mod report;
pub mod schedule;
pub mod seeding;
pub mod therapy_session;
pub mod user;
pub mod webhook;
pub mod webhook_delivery;

/// The one list of models: `TypeName => folder`, in the order the schema
/// shows their roots. Calls `$callback! { TypeName => folder, ... }`, so a
/// registry is a small macro that takes the list (see `domain::ids`,
/// `graphql::node`, `graphql` and `models::registry`).
///
/// Each folder `models::<folder>` has `api::<TypeName>` (the node type)
/// and, in its `mod.rs`, the model's share of the roots (`Query`,
/// `Mutation`, `Subscription`, empty where it has none) and its
/// declaration (`EVENTS`, `SEEDED`, `indexes`).
#[macro_export]
macro_rules! with_models {
    ($($callback:ident)::+) => {
        $($callback)::+! {
            User => user,
            Asset => asset,
            DisabilityProgram => disability_program,
            Beneficiary => beneficiary,
            Enrollment => enrollment,
            TherapySession => therapy_session,
            Schedule => schedule,
            AuditLogEntry => audit_log_entry,
            AnalyticsEvent => analytics_event,
            Webhook => webhook,
            WebhookDelivery => webhook_delivery,
            Report => report,
        }
    };
}
