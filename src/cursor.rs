//! Signed, opaque list cursors: the sort key and id of a row, HMAC-signed
//! with a key derived from the token secret, so a cursor edited by a client
//! is refused and a cursor only works with the ordering that made it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::Bson;
use bson::oid::ObjectId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::page::Position;
use crate::error::{ApiError, ApiResult};

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
        // The same text as `json!([...]).to_string()`, without building a `Value` array.
        let payload = serde_json::to_string(&(
            ordering,
            position.key.clone().into_canonical_extjson(),
            position.id.to_hex(),
        ))
        .unwrap_or_default();
        let mut cursor = String::with_capacity(payload.len() * 4 / 3 + 24);
        URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut cursor);
        cursor.push('.');
        URL_SAFE_NO_PAD.encode_string(self.mac(payload.as_bytes()), &mut cursor);
        cursor
    }

    pub fn decode(&self, ordering: &str, cursor: &str, field: &str) -> ApiResult<Position> {
        let bad =
            || ApiError::bad_input(field, "this cursor is not valid for this list and ordering");
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
