//! The enums every model shares, as GraphQL sees them (roles, change
//! kinds), and `stored`, which turns a list of mirrored values into stored
//! ones. A model's own enums are mirrored in its `api.rs`.

use async_graphql::Enum;

use crate::events;

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
