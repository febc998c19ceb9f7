//! The seeded accounts: `seeds/users.json` and the clinic's staff, as accounts to create.

use serde::Deserialize;

use super::record::UserForCreate;
use crate::domain::{Email, Role};

/// An account in `seeds/users.json`.
#[derive(Deserialize)]
pub struct SeedUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub department: Option<String>,
    pub phone: Option<String>,
}

/// A member of staff in `seeds/clinic.json`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Staff {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub department: String,
}

/// The account of `user`, under its checked `email`, with the seed password's hash.
pub fn account(user: SeedUser, email: Email, password_hash: String) -> UserForCreate {
    UserForCreate {
        email,
        name: user.name,
        role: user.role,
        department: user.department,
        phone: user.phone,
        password_hash,
    }
}

/// The account of a member of staff, under its checked `email`, with the seed password's hash.
pub fn staff_account(person: &Staff, email: Email, password_hash: String) -> UserForCreate {
    UserForCreate {
        email,
        name: person.name.clone(),
        role: person.role,
        department: Some(person.department.clone()),
        phone: None,
        password_hash,
    }
}
