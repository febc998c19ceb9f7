//! Authentication: password hashing, access and refresh tokens, the caller's
//! identity and its cached account, and the login throttle.

pub mod accounts;
pub mod caller;
pub mod password;
pub mod quota;
pub mod throttle;
pub mod tokens;

pub use caller::{AuthError, Caller, CallerError, Principal};
