//! What every resolver can reach: the application state, the caller and
//! its checks, the request id, the loaders. (The audit entries a request
//! writes itself are the audit model's: `models::audit_log_entry::request_api`.)

use std::sync::Arc;

use async_graphql::Context;

use super::loaders::Loaders;
use crate::auth::{Caller, Principal};
use crate::db::model::{Access, Viewer};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Per-request facts, put in the request's data by the HTTP layer.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub caller: Caller,
    pub request_id: String,
    pub client_address: String,
    /// The session (sign-in) the access token belongs to.
    pub session: Option<String>,
    /// The client's `User-Agent`, cut short (what a session list shows).
    pub user_agent: Option<String>,
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
                scopes: p.key,
            }),
            Caller::Anonymous => None,
        }
    }
}
