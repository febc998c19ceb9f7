//! Newtypes and rules that need no database: identities, e-mail addresses,
//! money, roles. Values are parsed once at the edge and trusted afterwards.

pub mod clinic;
pub mod email;
pub mod ids;
pub mod money;
pub mod roles;
pub mod text;

pub use email::Email;
pub use ids::{GlobalId, NodeKind};
pub use money::{Currency, Money};
pub use roles::Role;
