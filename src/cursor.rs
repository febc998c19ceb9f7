//! Opaque list cursors: the sort key and id of a row, encrypted and
//! authenticated (AES-256-GCM-SIV) with a key derived from the token
//! secret. A client reads nothing in a cursor (not even the sort key of a
//! field it may not read), a cursor edited by a client is refused, and a
//! cursor only works with the list and ordering that made it.

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::Bson;
use bson::oid::ObjectId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use smallvec::SmallVec;

use crate::db::page::Position;
use crate::domain::ids::append_base64;
use crate::domain::text::write_json_string;

/// Why a cursor is refused (the boundary's `BAD_USER_INPUT` on `field`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor this server made, or one made by another list or
    /// ordering; `field` is the argument that carried it (`after`, `before`).
    #[error("this cursor is not valid for this list and ordering")]
    Invalid { field: String },
}

/// Bound into every cursor's tag: a cursor is nothing else's ciphertext.
const CONTEXT: &[u8] = b"alawael cursor v3";
const TAG: usize = 16;
/// GCM-SIV derives its IV from the whole message (a synthetic IV), so one
/// fixed nonce makes it a deterministic AEAD: the same row in the same
/// ordering always gives the same cursor, and it reveals only that.
/// ChaCha20-Poly1305 with a MAC-derived nonce did the same at about four
/// times the cost on a cursor's few dozen bytes (`cargo bench --bench cursor`).
const NONCE: [u8; 12] = [0; 12];

/// Makes and reads cursors, with a key derived from the token secret.
#[derive(Clone)]
pub struct CursorCodec {
    cipher: Aes256GcmSiv,
}

fn derive(secret: &str, purpose: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(purpose).expect("HMAC takes any key length");
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().into()
}

impl CursorCodec {
    pub fn new(secret: &str) -> Self {
        let key = derive(secret, b"alawael cursor encryption key v3");
        Self {
            cipher: Aes256GcmSiv::new(Key::<Aes256GcmSiv>::from_slice(&key)),
        }
    }

    /// `ordering` names the list's order (e.g. `assets:NAME`): a cursor only
    /// works with the ordering that made it.
    pub fn encode(&self, ordering: &str, position: &Position) -> String {
        let mut cursor = Vec::with_capacity(128);
        self.encode_into(ordering, position, &mut cursor);
        // URL-safe base64 is ASCII.
        String::from_utf8(cursor).unwrap_or_default()
    }

    /// Appends the cursor (URL-safe base64: no character a JSON string
    /// would escape) to `out`.
    pub fn encode_into(&self, ordering: &str, position: &Position, out: &mut Vec<u8>) {
        // The payload is the JSON array `[ordering, key, hex id]`, written
        // without building a `Value`; a string key is written as it is.
        let mut hex = [0u8; 24];
        crate::domain::ids::hex_into(&position.id.bytes(), &mut hex);
        let hex = std::str::from_utf8(&hex).unwrap_or_default();
        let mut sealed = SmallVec::<[u8; 224]>::new();
        sealed.push(b'[');
        write_json_string(ordering, &mut sealed);
        sealed.push(b',');
        match &position.key {
            Bson::String(key) => write_json_string(key, &mut sealed),
            // Writing to memory cannot fail; a JSON value always serialises.
            key => {
                let _ = serde_json::to_writer(&mut sealed, &key.clone().into_canonical_extjson());
            }
        }
        sealed.extend_from_slice(b",\"");
        sealed.extend_from_slice(hex.as_bytes());
        sealed.extend_from_slice(b"\"]");
        // AES-GCM-SIV refuses only messages over 64 GiB.
        if let Ok(tag) =
            self.cipher
                .encrypt_in_place_detached(Nonce::from_slice(&NONCE), CONTEXT, &mut sealed)
        {
            sealed.extend_from_slice(&tag);
            append_base64(&sealed, out);
        }
    }

    /// The position `cursor` names, if this codec made it for `ordering`;
    /// `field` names the argument in the error.
    pub fn decode(
        &self,
        ordering: &str,
        cursor: &str,
        field: &str,
    ) -> Result<Position, CursorError> {
        let bad = || CursorError::Invalid {
            field: field.to_string(),
        };
        let mut payload = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        if payload.len() < TAG {
            return Err(bad());
        }
        let tag = payload.split_off(payload.len() - TAG);
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&NONCE),
                CONTEXT,
                &mut payload,
                tag.as_slice().into(),
            )
            .map_err(|_| bad())?;
        let (tag, key, id): (String, serde_json::Value, String) =
            serde_json::from_slice(&payload).map_err(|_| bad())?;
        if tag != ordering {
            return Err(bad());
        }
        Ok(Position {
            key: Bson::try_from(key).map_err(|_| bad())?,
            id: ObjectId::parse_str(&id).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_keep_their_text_for_every_key_type() {
        let codec = CursorCodec::new("a test secret of enough length for tests");
        let id = ObjectId::new();
        for key in [
            Bson::String("Balance \"board\" #026 — ٣".into()),
            Bson::String("Walker 12 — ٣".into()),
            Bson::DateTime(bson::DateTime::from_millis(1_795_000_000_000)),
            Bson::Int64(150_000),
            Bson::Null,
        ] {
            let position = Position {
                key: key.clone(),
                id,
            };
            let cursor = codec.encode("assets:NAME", &position);
            let read = codec.decode("assets:NAME", &cursor, "after").unwrap();
            assert_eq!((read.key, read.id), (key.clone(), id));
            assert_eq!(codec.encode("assets:NAME", &position), cursor, "stable");
            assert!(codec.decode("assets:CREATED_AT", &cursor, "after").is_err());
        }
    }

    #[test]
    fn a_cursor_shows_nothing_of_its_key_and_refuses_any_edit() {
        let codec = CursorCodec::new("a test secret of enough length for tests");
        let position = Position {
            key: Bson::String("2007-05-07".into()),
            id: ObjectId::new(),
        };
        let cursor = codec.encode("beneficiaries:DATE_OF_BIRTH", &position);
        let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        let shown = String::from_utf8_lossy(&bytes);
        for hidden in ["2007", "beneficiaries", &position.id.to_hex()[..8]] {
            assert!(!shown.contains(hidden), "{hidden} shows in the cursor");
        }
        for at in [0, bytes.len() / 2, bytes.len() - TAG, bytes.len() - 1] {
            let mut edited = bytes.clone();
            edited[at] ^= 1;
            let edited = URL_SAFE_NO_PAD.encode(&edited);
            assert!(
                codec
                    .decode("beneficiaries:DATE_OF_BIRTH", &edited, "after")
                    .is_err()
            );
        }
        let other = CursorCodec::new("another secret of enough length for tests");
        assert!(
            other
                .decode("beneficiaries:DATE_OF_BIRTH", &cursor, "after")
                .is_err()
        );
        assert!(
            codec
                .decode("beneficiaries:DATE_OF_BIRTH", "", "after")
                .is_err()
        );
    }
}
