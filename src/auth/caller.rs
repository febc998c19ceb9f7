//! Who is calling: nobody, or a staff member with a role. Put in every
//! GraphQL request's data by the HTTP layer after the token is checked.

use bson::oid::ObjectId;

use crate::domain::Role;
use crate::error::ApiError;

/// An authenticated staff member, as read from the database for this request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub id: ObjectId,
    pub role: Role,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous,
    User(Principal),
}

impl Caller {
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        match self {
            Self::User(p) => Ok(p),
            Self::Anonymous => Err(ApiError::Unauthenticated("sign in to do this".into())),
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Self::User(p) => Some(p.role),
            Self::Anonymous => None,
        }
    }

    pub fn is(&self, id: ObjectId) -> bool {
        matches!(self, Self::User(p) if p.id == id)
    }

    /// Requires one of `roles`: UNAUTHENTICATED for nobody, FORBIDDEN otherwise.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        let principal = self.principal()?;
        if roles.contains(&principal.role) {
            Ok(principal)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}
