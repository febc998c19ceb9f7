//! Sealed fields in a response and in a write. Reading opens a value where
//! its field is resolved, once, with its person's data key from the
//! request's key loader (one key-store command for every person of a query
//! level; none for keys already in memory); an erased person's values read
//! as absent. Writing seals a value under its person's key, made on their
//! first sealed value.

use std::sync::Arc;

use async_graphql::Context;
use bson::oid::ObjectId;

use super::context::ContextExt;
use crate::error::{ApiError, ApiResult};
use crate::vault::{DataKey, Sealed};

/// The value `sealed` holds; `None` when there is none or its person's
/// key is gone (erased).
pub async fn open(ctx: &Context<'_>, sealed: Option<&Sealed>) -> ApiResult<Option<String>> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let (subject, _) = sealed
        .owner()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a stored sealed value is malformed")))?;
    let key = ctx
        .loaders()?
        .keys()
        .load_one(subject)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("reading a data key failed: {e}")))?;
    match key {
        Some(key) => Ok(Some(key.open(sealed).map_err(ApiError::internal)?)),
        None => Ok(None),
    }
}

/// The data key that seals a person's values, made if they have none.
pub async fn key_for(ctx: &Context<'_>, subject: ObjectId) -> ApiResult<Arc<DataKey>> {
    Ok(ctx.app()?.vault.create_key(subject).await?)
}

/// The data key of a person who has one; an erased person has none, and
/// nothing new is sealed for them (`CONFLICT`).
pub async fn existing_key(ctx: &Context<'_>, subject: ObjectId) -> ApiResult<Arc<DataKey>> {
    ctx.app()?.vault.key(subject).await?.ok_or_else(|| {
        ApiError::Conflict("this person's data was erased; nothing new is kept about them".into())
    })
}
