//! What every resolver can reach: the application state, the caller, the
//! request id, and the audit and event helpers that use them.

use std::sync::Arc;

use async_graphql::Context;

use super::loaders::Loaders;
use crate::auth::{Caller, Principal};
use crate::db::model::{Access, Viewer};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::models::audit_log_entry::changes::Change;
use crate::models::audit_log_entry::entry::{Actor, NewEntry};
use crate::state::AppState;

/// Per-request facts, put in the request's data by the HTTP layer.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub caller: Caller,
    pub request_id: String,
    pub client_address: String,
}

pub trait ContextExt {
    fn app(&self) -> ApiResult<&Arc<AppState>>;
    fn request(&self) -> ApiResult<&RequestContext>;
    fn caller(&self) -> ApiResult<&Caller> {
        Ok(&self.request()?.caller)
    }
    fn loaders(&self) -> ApiResult<&Loaders>;
    /// The data layer as this caller sees it (row scopes applied).
    fn access(&self) -> ApiResult<&Access> {
        Ok(self.loaders()?.access())
    }
}

impl ContextExt for Context<'_> {
    fn app(&self) -> ApiResult<&Arc<AppState>> {
        self.data::<Arc<AppState>>().map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "application state missing from the request"
            ))
        })
    }

    fn request(&self) -> ApiResult<&RequestContext> {
        self.data::<RequestContext>().map_err(|_| {
            ApiError::internal(anyhow::anyhow!("request context missing from the request"))
        })
    }

    fn loaders(&self) -> ApiResult<&Loaders> {
        self.data::<Loaders>()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("loaders missing from the request")))
    }
}

/// The caller's checks as the API answers them (`UNAUTHENTICATED` for
/// nobody, `FORBIDDEN` for a role not allowed), for resolvers:
/// `ctx.caller()?.principal()?`. `auth::Caller` has them with its own error.
pub trait CallerExt {
    /// The signed-in staff member.
    fn principal(&self) -> ApiResult<&Principal>;
    /// The signed-in staff member, when their role is one of `roles`.
    fn require(&self, roles: &[Role]) -> ApiResult<&Principal>;
}

impl CallerExt for Caller {
    fn principal(&self) -> ApiResult<&Principal> {
        Ok(self.signed_in()?)
    }

    fn require(&self, roles: &[Role]) -> ApiResult<&Principal> {
        Ok(self.with_role(roles)?)
    }
}

impl RequestContext {
    /// The data layer's view of the caller.
    pub fn viewer(&self) -> Option<Viewer> {
        match &self.caller {
            Caller::User(p) => Some(Viewer {
                id: p.id,
                role: p.role,
            }),
            Caller::Anonymous => None,
        }
    }
}

/// Writes the audit entry for a change this request has already stored. If
/// the entry cannot be written, `undo` takes the change back, so a failed
/// mutation changes nothing, and the failure is reported. (FerretDB has no
/// transactions; this keeps the data and its audit trail together.)
pub async fn audit_change(
    ctx: &Context<'_>,
    action: &str,
    entity_type: &str,
    entity_id: Option<String>,
    changes: Vec<Change>,
    undo: impl std::future::Future<Output = crate::db::DbResult<()>>,
) -> ApiResult<()> {
    match audit(ctx, action, entity_type, entity_id, changes).await {
        Ok(()) => Ok(()),
        Err(error) => {
            if let Err(undo_error) = undo.await {
                tracing::error!(%undo_error, action, "the audit entry failed and the change could not be undone");
            } else {
                tracing::warn!(action, "the audit entry failed; the change was undone");
            }
            Err(error)
        }
    }
}

/// Writes an audit entry for something this request did.
pub async fn audit(
    ctx: &Context<'_>,
    action: &str,
    entity_type: &str,
    entity_id: Option<String>,
    changes: Vec<Change>,
) -> ApiResult<()> {
    let request = ctx.request()?;
    let actor = match &request.caller {
        Caller::User(p) => Actor::user(p.id),
        Caller::Anonymous => Actor::anonymous(),
    };
    ctx.app()?
        .db
        .audit()
        .append(NewEntry {
            id: None,
            actor,
            action: action.to_string(),
            entity_type: entity_type.to_string(),
            entity_id,
            changes,
            request_id: Some(request.request_id.clone()),
        })
        .await?;
    Ok(())
}
