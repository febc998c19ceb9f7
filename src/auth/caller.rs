//! Who is calling: nobody, or a staff member with a role. Put in every
//! GraphQL request's data by the HTTP layer after the token is checked.

use bson::oid::ObjectId;

use crate::auth::tokens::TokenError;
use crate::db::DbError;
use crate::domain::Role;

/// Why the caller may not go on. The boundary maps `SignedOut` to
/// `UNAUTHENTICATED` and `Forbidden` to `FORBIDDEN`; resolvers reach these
/// checks through `graphql::context::CallerExt`, which does that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    /// Nobody is signed in.
    #[error("sign in to do this")]
    SignedOut,
    /// The caller's role is not one of those allowed.
    #[error("you are not allowed to do this")]
    Forbidden,
}

/// Why the `Authorization` header does not give a caller
/// (`AppState::authenticate`). Every variant is the boundary's
/// `UNAUTHENTICATED` with this text, except `Db`, which maps as database
/// errors do.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The header is present but neither `Bearer <token>` nor `ApiKey <key>`.
    #[error("use `Authorization: Bearer <accessToken>` (or `ApiKey <key>`)")]
    NotBearer,
    /// The token is refused: expired, not valid yet, not for this API, or invalid.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token is well signed but names no account.
    #[error("the access token is invalid")]
    NoAccount,
    /// The token's account is deactivated.
    #[error("this account has been deactivated")]
    Deactivated,
    /// An `ApiKey` that is not a key this server issued.
    #[error("the API key is invalid")]
    BadKey,
    /// The key was revoked or has expired.
    #[error("this API key is revoked or expired")]
    KeyEnded,
    /// The token's session has ended (signed out, revoked, or every session
    /// of the account ended by a password, role or status change).
    #[error("this session has ended; sign in again")]
    SessionEnded,
    /// The account could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// An authenticated staff member, as read from the database for this request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub id: ObjectId,
    pub role: Role,
    pub name: String,
    /// For an API key (a service principal), the scopes it holds; `None`
    /// for a person.
    pub key: Option<crate::domain::scopes::Scopes>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous,
    User(Principal),
}

impl Caller {
    /// The signed-in staff member; `SignedOut` for nobody.
    pub fn signed_in(&self) -> Result<&Principal, CallerError> {
        match self {
            Self::User(p) => Ok(p),
            Self::Anonymous => Err(CallerError::SignedOut),
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

    /// Requires one of `roles`: `SignedOut` for nobody, `Forbidden` otherwise.
    pub fn with_role(&self, roles: &[Role]) -> Result<&Principal, CallerError> {
        let principal = self.signed_in()?;
        if roles.contains(&principal.role) {
            Ok(principal)
        } else {
            Err(CallerError::Forbidden)
        }
    }
}
