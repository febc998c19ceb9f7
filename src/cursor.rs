//! Signed, opaque list cursors: the sort key and id of a row, HMAC-signed
//! with a key derived from the token secret, so a cursor edited by a client
//! is refused and a cursor only works with the ordering that made it.

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
    /// Not a cursor this server signed, or one made by another list or
    /// ordering; `field` is the argument that carried it (`after`, `before`).
    #[error("this cursor is not valid for this list and ordering")]
    Invalid { field: String },
}

/// Signs and reads cursors. The key is derived from the token secret, so a
/// cursor edited by a client is refused.
#[derive(Clone)]
pub struct CursorCodec {
    /// The HMAC already keyed: each cursor clones it instead of hashing the
    /// key again.
    keyed: Hmac<Sha256>,
}

impl CursorCodec {
    pub fn new(secret: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"alawael cursor key")
            .expect("HMAC takes any key length");
        mac.update(secret.as_bytes());
        let key = mac.finalize().into_bytes();
        Self {
            keyed: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length"),
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; 16] {
        let mut mac = self.keyed.clone();
        mac.update(payload);
        let mut tag = [0; 16];
        tag.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        tag
    }

    /// `ordering` names the list's order (e.g. `assets:NAME`): a cursor only
    /// works with the ordering that made it.
    pub fn encode(&self, ordering: &str, position: &Position) -> String {
        let mut cursor = Vec::with_capacity(128);
        self.encode_into(ordering, position, &mut cursor);
        // Base64 and a dot are ASCII.
        String::from_utf8(cursor).unwrap_or_default()
    }

    /// Appends the cursor (URL-safe base64 and a dot: no character a JSON
    /// string would escape) to `out`.
    pub fn encode_into(&self, ordering: &str, position: &Position, out: &mut Vec<u8>) {
        // The same text as `json!([...]).to_string()`, without building a
        // `Value` array; a string key (most orderings) is written as it is.
        let mut hex = [0u8; 24];
        crate::domain::ids::hex_into(&position.id.bytes(), &mut hex);
        let hex = std::str::from_utf8(&hex).unwrap_or_default();
        let mut payload = SmallVec::<[u8; 192]>::new();
        payload.push(b'[');
        write_json_string(ordering, &mut payload);
        payload.push(b',');
        match &position.key {
            Bson::String(key) => write_json_string(key, &mut payload),
            // Writing to memory cannot fail; a JSON value always serialises.
            key => {
                let _ = serde_json::to_writer(&mut payload, &key.clone().into_canonical_extjson());
            }
        }
        payload.extend_from_slice(b",\"");
        payload.extend_from_slice(hex.as_bytes());
        payload.extend_from_slice(b"\"]");
        append_base64(&payload, out);
        out.push(b'.');
        append_base64(&self.mac(&payload), out);
    }

    /// The position `cursor` names, if this codec signed it for `ordering`;
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
        let (body, sig) = cursor.split_once('.').ok_or_else(bad)?;
        let payload = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| bad())?;
        let mut mac = self.keyed.clone();
        mac.update(&payload);
        mac.verify_truncated_left(&sig).map_err(|_| bad())?;
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
            // The payload is the JSON array `[ordering, canonical key, hex id]`.
            let body = cursor.split_once('.').unwrap().0;
            let payload = URL_SAFE_NO_PAD.decode(body).unwrap();
            let expected =
                serde_json::json!(["assets:NAME", key.into_canonical_extjson(), id.to_hex()]);
            assert_eq!(String::from_utf8(payload).unwrap(), expected.to_string());
            assert!(codec.decode("assets:CREATED_AT", &cursor, "after").is_err());
        }
    }
}
