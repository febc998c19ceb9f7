//! A person's data key, and the values it seals. A sealed value is text
//! (`enc1.<person>.<key id>.<base64>`): XChaCha20-Poly1305 with a random
//! nonce, bound to the person and the key, so a value moved to another
//! person's row, or a key swapped under it, does not open. Once the key is
//! destroyed (erasure), nothing sealed with it opens anywhere: in the live
//! database, in backups, in audit entries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::oid::ObjectId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::VaultError;

const PREFIX: &str = "enc1.";
const NONCE: usize = 24;

/// A sealed value as stored: opaque text that only its person's key opens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

impl Sealed {
    /// Whether stored text is a sealed value (not a value in clear).
    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(PREFIX)
    }

    /// Stored text taken as a sealed value, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Self::is_sealed(text).then(|| Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The person and key id it was sealed for.
    pub fn owner(&self) -> Option<(ObjectId, &str)> {
        let mut parts = self.0.strip_prefix(PREFIX)?.splitn(3, '.');
        let subject = ObjectId::parse_str(parts.next()?).ok()?;
        let key = parts.next()?;
        parts.next()?;
        Some((subject, key))
    }
}

/// One person's data key: 32 random bytes, kept wrapped by the master key
/// in the key store, unwrapped in memory only.
pub struct DataKey {
    subject: ObjectId,
    id: String,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({}, {})", self.subject, self.id)
    }
}

impl DataKey {
    /// A new random key for `subject`, and its 32 bytes (to be wrapped).
    pub fn generate(subject: ObjectId) -> (Self, [u8; 32]) {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let key = Self::from_secret(subject, hex::encode(id), &secret);
        (key, secret)
    }

    /// The key `id` of `subject` from its 32 unwrapped bytes.
    pub fn from_secret(subject: ObjectId, id: String, secret: &[u8]) -> Self {
        let mut sealing = [0u8; 32];
        // HKDF-SHA256 expands to 32 bytes from any input; never fails here.
        let _ = Hkdf::<Sha256>::new(None, secret).expand(b"alawael seal v1", &mut sealing);
        let cipher = XChaCha20Poly1305::new((&sealing).into());
        Self {
            subject,
            id,
            cipher,
        }
    }

    pub fn subject(&self) -> ObjectId {
        self.subject
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(&self) -> Vec<u8> {
        format!("{}.{}", self.subject.to_hex(), self.id).into_bytes()
    }

    /// `value` sealed under this key.
    pub fn seal(&self, value: &str) -> Sealed {
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = self.aad();
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            // XChaCha20-Poly1305 refuses only messages over 256 GiB.
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Sealed(format!(
            "{PREFIX}{}.{}.{}",
            self.subject.to_hex(),
            self.id,
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// The value `sealed` holds, if this key sealed it.
    pub fn open(&self, sealed: &Sealed) -> Result<String, VaultError> {
        let refused = || VaultError::Crypto("a sealed value does not open with its key".into());
        let (subject, key) = sealed.owner().ok_or_else(refused)?;
        if subject != self.subject || key != self.id {
            return Err(refused());
        }
        let body = sealed.0.rsplit('.').next().ok_or_else(refused)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| refused())?;
        if bytes.len() < NONCE {
            return Err(refused());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE);
        let aad = self.aad();
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(plain).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_only_and_shows_nothing() {
        let person = ObjectId::new();
        let (key, secret) = DataKey::generate(person);
        let sealed = key.seal("1234567890");
        assert!(!sealed.as_str().contains("1234567890"));
        assert!(Sealed::is_sealed(sealed.as_str()));
        assert_eq!(sealed.owner().unwrap(), (person, key.id()));
        assert_eq!(key.open(&sealed).unwrap(), "1234567890");
        assert_ne!(key.seal("1234567890"), sealed, "a fresh nonce every time");
        let again = DataKey::from_secret(person, key.id().to_string(), &secret);
        assert_eq!(again.open(&sealed).unwrap(), "1234567890");
        let (other, _) = DataKey::generate(person);
        assert!(other.open(&sealed).is_err());
        let (someone_else, _) = DataKey::generate(ObjectId::new());
        let moved = Sealed(
            sealed
                .as_str()
                .replace(&person.to_hex(), &someone_else.subject().to_hex()),
        );
        assert!(someone_else.open(&moved).is_err());
        let mut edited = sealed.as_str().to_string();
        edited.pop();
        edited.push(if sealed.as_str().ends_with('A') {
            'B'
        } else {
            'A'
        });
        assert!(key.open(&Sealed(edited)).is_err());
        assert!(!format!("{key:?} {sealed:?}").contains("1234"));
    }
}
