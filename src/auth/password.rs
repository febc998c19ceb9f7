//! Argon2id password hashing at OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1), run off the async threads.

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP Password Storage Cheat Sheet, Argon2id, first configuration.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password could not be hashed or checked: internal failures, never
/// a wrong password (that is `verify` answering false).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Argon2 refused to hash (it does not at these parameters).
    #[error("hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    /// The blocking task that hashes stopped before it answered.
    #[error("the hashing task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The rules a new password must meet; `Err` says which it breaks.
pub fn check_strength(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < 12 {
        return Err("a password needs at least 12 characters");
    }
    if chars > 256 {
        return Err("a password has at most 256 characters");
    }
    Ok(())
}

pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(PasswordError::Hash)
    })
    .await?
}

/// Whether `password` matches `stored`; a malformed hash never matches.
pub async fn verify(password: String, stored: String) -> Result<bool, PasswordError> {
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                hasher()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await?)
}

/// A valid hash of a random password, verified against when an account does
/// not exist, so a failed login takes as long either way.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(uuid::Uuid::new_v4().to_string().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let stored = hash("correct horse battery".into()).await.expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(
            verify("correct horse battery".into(), stored.clone())
                .await
                .expect("verify")
        );
        assert!(!verify("wrong".into(), stored).await.expect("verify"));
        assert!(
            !verify("x".into(), "not a hash".into())
                .await
                .expect("verify")
        );
    }
}
