//! The audit log in the API (ADMIN): `auditLog` pages the chain newest
//! first with filters, `verifyAuditChain` walks it as `alawael audit verify`
//! does. Nothing in the API changes an entry.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};

use super::entry::{AuditFilter as DbFilter, AuditLogEntryRecord, AuditOrder};
use crate::domain::{GlobalId, NodeKind, text};
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::{ADMIN, RoleGuard};
use crate::graphql::inputs::DateTimeRange;
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, OrderDirection, PageArgs, connection_cost};
use crate::graphql::scalars::{DateTime, Long};
use crate::models::user::api::User;

/// One entry of the append-only, hash-chained audit log.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct AuditLogEntry {
    #[graphql(skip)]
    pub record: Arc<AuditLogEntryRecord>,
    /// What was done (`asset.update`, `enrollment.activate`, `auth.login`, ...).
    pub action: String,
    /// The kind of object it was done to (`Asset`, `Beneficiary`, ...).
    pub entity_type: String,
    /// The request that did it (as in the server's logs).
    pub request_id: Option<String>,
    /// The hash of the entry before this one.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl crate::graphql::rows::Plain for AuditLogEntry {}

impl Listed for AuditLogEntry {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for AuditLogEntry {
    type Record = AuditLogEntryRecord;
    fn wrap(record: Arc<AuditLogEntryRecord>) -> Self {
        Self {
            action: record.action.clone(),
            entity_type: record.entity_type.clone(),
            request_id: record.request_id.clone(),
            prev_hash: record.prev_hash.clone(),
            hash: record.hash.clone(),
            record,
        }
    }
    fn record(&self) -> &AuditLogEntryRecord {
        &self.record
    }
}

/// One changed field; sensitive values read `[redacted]`, erased ones `[erased]`.
#[derive(SimpleObject, Clone)]
pub struct AuditChange {
    /// The field's name as stored.
    pub field: String,
    /// Its value before (null when it had none).
    pub before: Json<serde_json::Value>,
    /// Its value after (null when it has none).
    pub after: Json<serde_json::Value>,
}

#[ComplexObject]
impl AuditLogEntry {
    /// The entry's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// Its position in the chain, from 1.
    async fn seq(&self) -> Long {
        Long(self.record.seq)
    }

    /// When it was written.
    async fn at(&self) -> DateTime {
        self.record.at.into()
    }

    /// `user`, `system` or `anonymous`.
    async fn actor_kind(&self) -> &str {
        &self.record.actor.kind
    }

    /// The user who did it, when a user did.
    async fn actor(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.record.actor.id {
            Some(id) => Ok(model::load(ctx, id).await?),
            None => Ok(None),
        }
    }

    /// The global id of the object (when it has one).
    async fn entity_id(&self) -> Option<String> {
        let raw = self.record.entity_id.as_deref()?;
        let kind = NodeKind::ALL
            .iter()
            .find(|k| k.name() == self.record.entity_type);
        match (kind, bson::oid::ObjectId::parse_str(raw)) {
            (Some(kind), Ok(id)) => Some(GlobalId::new(*kind, id).encode()),
            _ => Some(raw.to_string()),
        }
    }

    /// The fields that changed. A person's personal values are kept sealed
    /// under their data key and shown opened; once the person is erased
    /// they read `[erased]`.
    async fn changes(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<AuditChange>> {
        let mut shown = Vec::with_capacity(self.record.changes.len());
        for c in &self.record.changes {
            shown.push(AuditChange {
                field: c.field.clone(),
                before: Json(opened(ctx, &c.before).await?),
                after: Json(opened(ctx, &c.after).await?),
            });
        }
        Ok(shown)
    }
}

/// A value of a change as shown: sealed ones opened (their text is JSON
/// when the audit writer sealed it, the stored text when the field itself
/// is sealed), `[erased]` when the key is gone.
async fn opened(
    ctx: &async_graphql::Context<'_>,
    value: &bson::Bson,
) -> crate::error::ApiResult<serde_json::Value> {
    let bson::Bson::String(text) = value else {
        return Ok(value.clone().into_relaxed_extjson());
    };
    let Some(sealed) = crate::vault::Sealed::parse(text) else {
        return Ok(serde_json::Value::String(text.clone()));
    };
    Ok(
        match crate::graphql::sealed::open(ctx, Some(&sealed)).await? {
            Some(plain) => serde_json::from_str(&plain).unwrap_or(serde_json::Value::String(plain)),
            None => serde_json::Value::String(super::changes::ERASED.into()),
        },
    )
}

/// Which entries `auditLog` shows.
#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// Only entries about this kind of object (`Asset`, `Beneficiary`, ...).
    entity_type: Option<String>,
    /// Only entries about this object (its global id).
    entity_id: Option<ID>,
    /// Only entries by this user.
    actor_id: Option<ID>,
    /// Only this action (`beneficiary.update`, ...).
    action: Option<String>,
    /// Only entries written in this span.
    at: Option<DateTimeRange>,
}

/// The outcome of walking the chain.
#[derive(SimpleObject)]
pub struct AuditChainReport {
    /// Whether every entry holds.
    pub ok: bool,
    /// How many entries held before the first that does not (all of them when `ok`).
    pub checked: i32,
    /// The first entry that does not hold.
    pub first_broken_seq: Option<Long>,
    /// Why it does not hold.
    pub reason: Option<String>,
}

fn short(value: String, field: &str) -> ApiResult<String> {
    text::required(&value, 100).map_err(|m| ApiError::bad_input(field, format!("the value {m}")))
}

#[derive(Default)]
pub struct AuditLogEntryQuery;

#[Object]
impl AuditLogEntryQuery {
    /// The audit log, newest first (ADMIN).
    #[graphql(
        guard = "RoleGuard::new(ADMIN)",
        complexity = "connection_cost(first, None, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many entries (at most 100).")] first: Option<i32>,
        #[graphql(desc = "Entries after (older than) this cursor.")] after: Option<String>,
        #[graphql(desc = "Which entries.")] filter: Option<AuditLogFilter>,
    ) -> async_graphql::Result<Connection<AuditLogEntry>> {
        let filter = filter.unwrap_or_default();
        let range = filter.at.unwrap_or_default();
        let entity_id = filter
            .entity_id
            .map(|id| match GlobalId::decode(id.as_str()) {
                Some(global) => global.id.to_hex(),
                None => id.0,
            });
        let db_filter = DbFilter {
            entity_type: filter
                .entity_type
                .map(|t| short(t, "filter.entityType"))
                .transpose()?,
            entity_id,
            actor: filter
                .actor_id
                .as_ref()
                .map(|id| model::reference::<User>(id, "filter.actorId"))
                .transpose()?,
            action: filter
                .action
                .map(|a| short(a, "filter.action"))
                .transpose()?,
            from: range.from.map(Into::into),
            to: range.to.map(Into::into),
        };
        let args = PageArgs::new(first, after, None, None);
        Ok(model::list(
            ctx,
            args,
            db_filter.to_document(),
            Some((AuditOrder::Seq, OrderDirection::Desc)),
        )
        .await?)
    }

    /// Walks the whole chain and names the first entry that does not hold (ADMIN).
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn verify_audit_chain(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<AuditChainReport> {
        let (checked, breach) = ctx.app()?.db.audit().verify_counting().await?;
        Ok(AuditChainReport {
            ok: breach.is_none(),
            checked: i32::try_from(checked).unwrap_or(i32::MAX),
            first_broken_seq: breach.as_ref().map(|b| Long(b.seq)),
            reason: breach.map(|b| b.reason),
        })
    }
}
