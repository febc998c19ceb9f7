//! The enums every model shares, as GraphQL sees them (roles, change
//! kinds), `stored`, which turns a list of mirrored values into stored
//! ones, and `api_enum!`, a model's stored enum that is its GraphQL enum too.

use async_graphql::Enum;

use crate::events;

/// Declares, in a model's declaration (`mod.rs`), an enum stored as text
/// (`stored_enum!`) that is also the GraphQL enum of that name: its docs
/// and its variants' docs are the schema's.
#[macro_export]
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $crate::stored_enum!(
            $(#[$meta])* #[derive(async_graphql::Enum)] $name { $($(#[$vmeta])* $variant),+ }
        );
    };
}

/// What a staff member may do.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::Role")]
pub enum Role {
    /// IT or centre director: everything.
    Admin,
    /// Programme or department manager.
    Manager,
    /// Clinician working with the beneficiaries enrolled with them.
    Therapist,
    /// Front desk and other staff.
    User,
}

/// What happened to an object.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "events::ChangeKind")]
pub enum ChangeKind {
    /// It was created.
    Created,
    /// It was changed.
    Updated,
    /// It was deleted; the event carries its last state.
    Deleted,
}

/// Converts a list of mirrored values to stored ones.
pub fn stored<A: Copy + Into<B>, B>(values: Option<Vec<A>>) -> Vec<B> {
    values
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}
