//! Newtypes and rules that need no database: identities, e-mail addresses,
//! money, roles, who made a change. Values are parsed once at the edge and
//! trusted afterwards.

/// Declares an enum stored as `SCREAMING_SNAKE_CASE` text, with `ALL`.
#[macro_export]
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
        }
    };
}

pub mod actor;
pub mod email;
pub mod ids;
pub mod money;
pub mod roles;
pub mod scopes;
pub mod text;

pub use actor::Actor;
pub use email::Email;
pub use ids::{GlobalId, NodeKind};
pub use money::{Currency, Money};
pub use roles::Role;
