//! The master keys: they wrap every person's data key and never leave the
//! process (not stored in the database, not logged, not returned). They
//! come from `ALAWAEL_MASTER_KEY` or a key file as `id:base64` entries; the
//! first wraps, the others only unwrap (the old key during a rotation).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::VaultError;

/// The development master key: published, so development data is not
/// private. Production refuses it.
pub const DEVELOPMENT_MASTER_KEY: &str = "development:YWxhd2FlbC1kZXZlbG9wbWVudC1tYXN0ZXIta2V5ISE=";

const NONCE: usize = 24;

/// One master key and its id.
struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// The keys in order: the first wraps, every one unwraps.
pub struct MasterKeys {
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "MasterKeys({ids:?})")
    }
}

impl MasterKeys {
    /// Parses `id:base64[,id:base64...]` (whitespace and newlines between
    /// entries are allowed, so a key file may hold one per line).
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        let mut keys = Vec::new();
        for entry in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (id, key) = entry.split_once(':').ok_or_else(|| {
                VaultError::Config("a master key is written `id:base64-of-32-bytes`".into())
            })?;
            let id = id.trim();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(VaultError::Config(
                    "a master key id is letters, digits, `-` and `_`".into(),
                ));
            }
            let bytes = STANDARD
                .decode(key.trim())
                .map_err(|_| VaultError::Config(format!("master key {id} is not base64")))?;
            if bytes.len() != 32 {
                return Err(VaultError::Config(format!(
                    "master key {id} has {} bytes; it needs 32",
                    bytes.len()
                )));
            }
            if keys.iter().any(|k: &MasterKey| k.id == id) {
                return Err(VaultError::Config(format!(
                    "master key {id} is given twice"
                )));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| VaultError::Config(format!("master key {id} is unusable")))?;
            keys.push(MasterKey {
                id: id.to_string(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(VaultError::Config("no master key is given".into()));
        }
        Ok(Self { keys })
    }

    /// A fresh random master key, as `id:base64` (`alawael keys generate`).
    pub fn generate(id: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        format!("{id}:{}", STANDARD.encode(bytes))
    }

    /// The id of the key that wraps.
    pub fn current(&self) -> &str {
        &self.keys[0].id
    }

    /// The ids of every key, the wrapping one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    fn find(&self, id: &str) -> Result<&MasterKey, VaultError> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| VaultError::UnknownMasterKey(id.to_string()))
    }

    /// `secret` wrapped by the current key, bound to `context` (what the
    /// key is for); returns the key's id and the wrapped bytes.
    pub fn wrap(&self, secret: &[u8], context: &[u8]) -> Result<(String, Vec<u8>), VaultError> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: context,
                },
            )
            .map_err(|_| VaultError::Crypto("wrapping a data key failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok((key.id.clone(), out))
    }

    /// The secret that `master` wrapped for `context`.
    pub fn unwrap(
        &self,
        master: &str,
        wrapped: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let key = self.find(master)?;
        if wrapped.len() < NONCE {
            return Err(VaultError::Crypto("a wrapped key is cut short".into()));
        }
        let (nonce, sealed) = wrapped.split_at(NONCE);
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .map_err(|_| {
                VaultError::Crypto(format!(
                    "a data key does not open with master key {master} (wrong key, or altered)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_secret_opens_with_its_key_and_context_only() {
        let keys = MasterKeys::parse(&MasterKeys::generate("k1")).unwrap();
        let (id, wrapped) = keys.wrap(b"a data key", b"subject 1").unwrap();
        assert_eq!(id, "k1");
        assert_eq!(
            keys.unwrap("k1", &wrapped, b"subject 1").unwrap(),
            b"a data key"
        );
        assert!(keys.unwrap("k1", &wrapped, b"subject 2").is_err());
        let other = MasterKeys::parse(&MasterKeys::generate("k1")).unwrap();
        assert!(other.unwrap("k1", &wrapped, b"subject 1").is_err());
        assert!(matches!(
            keys.unwrap("k2", &wrapped, b"subject 1"),
            Err(VaultError::UnknownMasterKey(_))
        ));
    }

    #[test]
    fn old_and_new_keys_both_unwrap_and_the_first_wraps() {
        let old = MasterKeys::generate("old");
        let new = MasterKeys::generate("new");
        let before = MasterKeys::parse(&old).unwrap();
        let (_, wrapped) = before.wrap(b"secret", b"c").unwrap();
        let during = MasterKeys::parse(&format!("{new}\n{old}")).unwrap();
        assert_eq!(during.current(), "new");
        assert_eq!(during.unwrap("old", &wrapped, b"c").unwrap(), b"secret");
        assert_eq!(during.wrap(b"secret", b"c").unwrap().0, "new");
    }

    #[test]
    fn malformed_keys_are_refused_without_showing_them() {
        for text in ["", "nokey", "k:notbase64!", "k:c2hvcnQ=", "bad id:AAAA"] {
            let error = MasterKeys::parse(text).unwrap_err().to_string();
            assert!(!error.contains("c2hvcnQ"), "{error}");
        }
        let twice = MasterKeys::generate("k");
        assert!(MasterKeys::parse(&format!("{twice},{twice}")).is_err());
        assert!(MasterKeys::parse(DEVELOPMENT_MASTER_KEY).is_ok());
        assert!(
            !format!("{:?}", MasterKeys::parse(DEVELOPMENT_MASTER_KEY).unwrap()).contains("YWx")
        );
    }
}
