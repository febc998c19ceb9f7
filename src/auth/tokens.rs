//! Access tokens (short-lived HS256 JWTs with `iss`, `aud`, `exp`, `nbf`,
//! `sub` and the role) and refresh tokens (opaque random strings of which
//! only a SHA-256 hash is stored).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::oid::ObjectId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::AuthSettings;
use crate::domain::Role;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// Always `access`: no other kind of token is accepted as one.
    pub typ: String,
    /// The session (sign-in) it belongs to: its refresh-token family.
    #[serde(default)]
    pub sid: String,
    /// When it was issued, in milliseconds (`iat` counts whole seconds).
    #[serde(default)]
    pub ims: i64,
}

impl Claims {
    /// When it was issued, in milliseconds.
    pub fn issued_ms(&self) -> i64 {
        if self.ims > 0 {
            self.ims
        } else {
            self.iat * 1000
        }
    }
}

/// Why a token was refused; the text is what the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The access token has expired; refresh it.
    #[error("the access token has expired")]
    Expired,
    /// The token is not valid yet (`nbf` is in the future).
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// The token was issued for another audience or by another issuer.
    #[error("the access token was not issued for this API")]
    WrongAudience,
    /// A bad signature, algorithm, shape or type.
    #[error("the access token is invalid")]
    Invalid,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: i64,
}

impl TokenKeys {
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: i64::try_from(settings.access_token_ttl_secs).unwrap_or(900),
        }
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl
    }

    /// A signed access token for `user` in session `sid`; fails only if signing does.
    pub fn issue(
        &self,
        user: ObjectId,
        role: Role,
        sid: &str,
    ) -> jsonwebtoken::errors::Result<String> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_hex(),
            role,
            iat: now,
            nbf: now,
            exp: now + self.access_ttl,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: "access".into(),
            sid: sid.to_string(),
            ims: now_ms,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks signature, algorithm, issuer, audience and times; returns the user id.
    pub fn verify(&self, token: &str) -> Result<(ObjectId, Claims), TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => TokenError::WrongAudience,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ != "access" {
            return Err(TokenError::Invalid);
        }
        let id = ObjectId::parse_str(&data.claims.sub).map_err(|_| TokenError::Invalid)?;
        Ok((id, data.claims))
    }
}

/// A new opaque refresh token and the hash that is stored for it.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
