//! Relay object identification: the `Node` interface and `node`/`nodes`,
//! which resolve any global id with the same guards as the typed queries.

use async_graphql::{Context, ID, Interface, Object};

use super::assets::Asset;
use super::context::ContextExt;
use super::guards::{ANY_ROLE, RoleGuard};
use super::users::User;
use crate::domain::{GlobalId, NodeKind};
use crate::error::{ApiError, ApiResult};

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's global id."))]
pub enum Node {
    User(User),
    Asset(Asset),
}

async fn resolve(ctx: &Context<'_>, id: &ID) -> ApiResult<Node> {
    let global = GlobalId::decode(id.as_str()).ok_or(ApiError::NotFound)?;
    let db = &ctx.app()?.db;
    match global.kind {
        NodeKind::User => Ok(Node::User(User::new(
            db.users().get(global.id).await?.ok_or(ApiError::NotFound)?,
        ))),
        NodeKind::Asset => Ok(Node::Asset(Asset::new(
            db.assets()
                .get(global.id)
                .await?
                .ok_or(ApiError::NotFound)?,
        ))),
    }
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id.")] id: ID,
    ) -> async_graphql::Result<Node> {
        Ok(resolve(ctx, &id).await?)
    }

    /// Several objects by global id, in the same order; `null` where one is not found.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100 global ids.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > 100 {
            return Err(ApiError::bad_input("ids", "at most 100 ids at a time").into());
        }
        let mut found = Vec::with_capacity(ids.len());
        for id in &ids {
            found.push(match resolve(ctx, id).await {
                Ok(node) => Some(node),
                Err(ApiError::NotFound) => None,
                Err(other) => return Err(other.into()),
            });
        }
        Ok(found)
    }
}
