//! Relay object identification: the `Node` interface and `node`/`nodes`,
//! which resolve any global id through the same loaders and row scopes as
//! the typed queries (a row the caller may not see is `null`/`NOT_FOUND`).

use async_graphql::{Context, ID, Interface, Object};

use super::guards::{ANY_ROLE, RoleGuard};
use super::model::{self, ApiModel};
use crate::domain::{GlobalId, NodeKind};
use crate::error::{ApiError, ApiResult};

async fn found<N: ApiModel>(ctx: &Context<'_>, id: bson::oid::ObjectId) -> ApiResult<N> {
    model::load::<N>(ctx, id).await?.ok_or(ApiError::NotFound)
}

macro_rules! node_interface {
    ($($name:ident => $folder:ident),+ $(,)?) => {
        /// An object with a global id.
        #[derive(Interface)]
        #[graphql(field(name = "id", ty = "ID", desc = "The object's global id."))]
        pub enum Node {
            $($name(crate::models::$folder::api::$name)),+
        }

        async fn resolve(ctx: &Context<'_>, id: &ID) -> ApiResult<Node> {
            let global = GlobalId::decode(id.as_str()).ok_or(ApiError::NotFound)?;
            Ok(match global.kind {
                $(NodeKind::$name => Node::$name(found(ctx, global.id).await?),)+
            })
        }
    };
}

crate::with_models!(node_interface);

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id; `null` with a `NOT_FOUND` error when
    /// there is none the caller may see.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id.")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        Ok(Some(resolve(ctx, &id).await?))
    }

    /// Several objects by global id, in the same order; `null` where one is
    /// not found. Loaded in one batch per type.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100 global ids.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > 100 {
            return Err(ApiError::bad_input("ids", "at most 100 ids at a time").into());
        }
        let lookups = ids.iter().map(|id| resolve(ctx, id));
        let mut found = Vec::with_capacity(ids.len());
        for result in futures::future::join_all(lookups).await {
            found.push(match result {
                Ok(node) => Some(node),
                Err(ApiError::NotFound) => None,
                Err(other) => return Err(other.into()),
            });
        }
        Ok(found)
    }
}
