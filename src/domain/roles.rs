//! Staff roles, from most to least privileged.

use serde::{Deserialize, Serialize};

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

/// Every role: whoever is signed in.
pub const ANY_ROLE: &[Role] = &[Role::Admin, Role::Manager, Role::Therapist, Role::User];
/// ADMIN and MANAGER.
pub const MANAGERS: &[Role] = &[Role::Admin, Role::Manager];
/// Everyone who works with beneficiaries' records (not front-desk USERs).
pub const CLINICAL: &[Role] = &[Role::Admin, Role::Manager, Role::Therapist];
/// ADMIN alone.
pub const ADMIN: &[Role] = &[Role::Admin];

impl Role {
    /// The role's name as stored and shown (`ADMIN`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Manager => "MANAGER",
            Self::Therapist => "THERAPIST",
            Self::User => "USER",
        }
    }

    /// ADMIN or MANAGER: the roles that read every user and manage assets.
    pub fn is_staff_manager(self) -> bool {
        matches!(self, Self::Admin | Self::Manager)
    }

    /// Whether a caller with this role may create or change an account of `target`.
    pub fn may_manage_role(self, target: Role) -> bool {
        match self {
            Self::Admin => true,
            Self::Manager => matches!(target, Self::Therapist | Self::User),
            _ => false,
        }
    }
}
