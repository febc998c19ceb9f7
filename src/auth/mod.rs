//! Authentication: password hashing, access and refresh tokens, the caller's
//! identity, and the login throttle.

pub mod caller;
pub mod password;
pub mod throttle;
pub mod tokens;

pub use caller::{Caller, Principal};
