//! Guards that sit next to the fields and mutations they protect.

use async_graphql::{Context, Guard, Result};

use super::context::{CallerExt, ContextExt};
use crate::domain::Role;
use crate::error::ApiError;

/// Admits callers whose role is one of the listed; anonymous callers get
/// `UNAUTHENTICATED`, others `FORBIDDEN`.
pub struct RoleGuard(&'static [Role]);

pub use crate::domain::roles::{ADMIN, ANY_ROLE, CLINICAL, MANAGERS};

impl RoleGuard {
    pub const fn new(roles: &'static [Role]) -> Self {
        Self(roles)
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        ctx.caller()?.require(self.0)?;
        Ok(())
    }
}

/// Admits a user reading their own account, and ADMIN or MANAGER reading
/// any. The flag marks an account handed to its owner by sign-in.
pub struct SelfOrManagers(pub bson::oid::ObjectId, pub bool);

impl Guard for SelfOrManagers {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        if self.1 {
            return Ok(());
        }
        let caller = ctx.caller()?;
        let principal = caller.principal()?;
        if principal.id == self.0 || principal.role.is_staff_manager() {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }
}
