//! The audit entries a request writes itself, for what is not an audited
//! write of a model row (those go through `graphql::model` and the
//! outbox): sign-in and sign-out, redelivery, exports and erasures.

use async_graphql::Context;

use super::changes::Change;
use super::entry::NewEntry;
use crate::auth::Caller;
use crate::domain::Actor;
use crate::error::ApiResult;
use crate::graphql::context::ContextExt;

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
