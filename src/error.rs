//! The error type at the API boundary. Each variant maps to one stable
//! `extensions.code` (listed in `docs/errors.md`); internal details go to the log, never to
//! the client.

use async_graphql::ErrorExtensions;

/// Codes a client can receive in `extensions.code`.
pub mod code {
    pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const QUERY_TOO_DEEP: &str = "QUERY_TOO_DEEP";
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    pub const TOO_MANY_ALIASES: &str = "TOO_MANY_ALIASES";
    pub const TOO_MANY_ROOT_FIELDS: &str = "TOO_MANY_ROOT_FIELDS";
    pub const TOO_MANY_DIRECTIVES: &str = "TOO_MANY_DIRECTIVES";
    pub const QUERY_TOO_LONG: &str = "QUERY_TOO_LONG";
    pub const BATCH_TOO_LARGE: &str = "BATCH_TOO_LARGE";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    pub const PERSISTED_QUERY_REQUIRED: &str = "PERSISTED_QUERY_REQUIRED";
    pub const INTERNAL: &str = "INTERNAL";
}

/// What went wrong, as a client may learn it. Deliberately not `Display`:
/// async-graphql converts any `Display` error into one without a code, so
/// this type converts only through the `From` below, which sets the code.
#[derive(Debug)]
pub enum ApiError {
    /// A value validates as its type but breaks a rule; `field` is the input path.
    BadUserInput { message: String, field: String },
    /// No valid credentials where they are needed.
    Unauthenticated(String),
    /// The caller's role or the row rules deny this.
    Forbidden,
    /// No such object, or one the caller may not know exists.
    NotFound,
    /// Uniqueness, overlap, capacity or a wrong status transition.
    Conflict(String),
    /// A throttle; retry after the given number of seconds.
    RateLimited { retry_after_secs: u64 },
    /// A dependency is down and the request cannot be served.
    ServiceUnavailable,
    /// Anything else. The cause is logged, the client sees a generic message.
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            message: message.into(),
            field: field.into(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// The message the client reads.
    pub fn message(&self) -> String {
        match self {
            Self::BadUserInput { message, .. } => message.clone(),
            Self::Unauthenticated(message) | Self::Conflict(message) => message.clone(),
            Self::Forbidden => "you are not allowed to do this".into(),
            Self::NotFound => "not found".into(),
            Self::RateLimited { retry_after_secs } => {
                format!("too many attempts; retry in {retry_after_secs} seconds")
            }
            Self::ServiceUnavailable => {
                "the service is temporarily unavailable; retry shortly".into()
            }
            Self::Internal(_) => "internal server error".into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput { .. } => code::BAD_USER_INPUT,
            Self::Unauthenticated(_) => code::UNAUTHENTICATED,
            Self::Forbidden => code::FORBIDDEN,
            Self::NotFound => code::NOT_FOUND,
            Self::Conflict(_) => code::CONFLICT,
            Self::RateLimited { .. } => code::RATE_LIMITED,
            Self::ServiceUnavailable => code::SERVICE_UNAVAILABLE,
            Self::Internal(_) => code::INTERNAL,
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        if let ApiError::Internal(cause) = &error {
            tracing::error!(error = ?cause, "internal error");
        }
        async_graphql::Error::new(error.message()).extend_with(|_, ext| {
            ext.set("code", error.code());
            match &error {
                ApiError::BadUserInput { field, .. } => ext.set("field", field.as_str()),
                ApiError::RateLimited { retry_after_secs } => {
                    ext.set("retryAfterSeconds", *retry_after_secs)
                }
                _ => {}
            }
        })
    }
}

/// Reading a record that must exist: absent is `NOT_FOUND`, a database
/// failure maps as usual.
pub trait Found<T> {
    fn found(self) -> ApiResult<T>;
}

impl<T> Found<T> for Result<Option<T>, crate::db::DbError> {
    fn found(self) -> ApiResult<T> {
        self.map_err(ApiError::from)?.ok_or(ApiError::NotFound)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        use crate::db::DbError;
        match error {
            DbError::Duplicate(what) => Self::Conflict(what),
            DbError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::ServiceUnavailable
            }
            DbError::Forbidden(_) => Self::Forbidden,
            DbError::Other(cause) => Self::Internal(cause),
        }
    }
}

// The lower layers' own errors, mapped to the codes and texts clients have
// always read. Nothing below this module knows about `ApiError`.

impl From<crate::auth::CallerError> for ApiError {
    fn from(error: crate::auth::CallerError) -> Self {
        use crate::auth::CallerError;
        match error {
            CallerError::SignedOut => Self::Unauthenticated(error.to_string()),
            CallerError::Forbidden => Self::Forbidden,
        }
    }
}

impl From<crate::auth::throttle::ThrottleError> for ApiError {
    fn from(error: crate::auth::throttle::ThrottleError) -> Self {
        use crate::auth::throttle::ThrottleError;
        match error {
            ThrottleError::TooManyAttempts { retry_after_secs } => {
                Self::RateLimited { retry_after_secs }
            }
        }
    }
}

impl From<crate::auth::password::PasswordError> for ApiError {
    fn from(error: crate::auth::password::PasswordError) -> Self {
        Self::internal(error)
    }
}

impl From<crate::vault::VaultError> for ApiError {
    fn from(error: crate::vault::VaultError) -> Self {
        match error {
            crate::vault::VaultError::Db(error) => error.into(),
            other => Self::internal(other),
        }
    }
}

impl From<crate::cursor::CursorError> for ApiError {
    fn from(error: crate::cursor::CursorError) -> Self {
        let message = error.to_string();
        match error {
            crate::cursor::CursorError::Invalid { field } => Self::BadUserInput { message, field },
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(error: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match error {
            AuthError::Db(error) => error.into(),
            AuthError::NotBearer
            | AuthError::Token(_)
            | AuthError::NoAccount
            | AuthError::Deactivated
            | AuthError::SessionEnded
            | AuthError::BadKey
            | AuthError::KeyEnded => Self::Unauthenticated(error.to_string()),
        }
    }
}
