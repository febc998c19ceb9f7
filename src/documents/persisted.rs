//! Automatic persisted queries, Apollo's protocol: a request may carry
//! `extensions.persistedQuery { version: 1, sha256Hash }`. With the query
//! text, the hash must be the text's SHA-256 (else `BAD_USER_INPUT`) and the
//! text is stored under it; without it, the stored text is used, or the
//! answer is `PERSISTED_QUERY_NOT_FOUND` (message `PersistedQueryNotFound`,
//! which Apollo's clients answer by sending the text). Texts live in Redis,
//! shared by every instance, with an in-process tier in front (alone while
//! Redis is down), bounded in bytes. A text is stored only once it has
//! passed the length and limit checks (`register`, after
//! `Documents::check`), and, where `documents.register_signed_in_only` is
//! on (production), only for a signed-in caller: a refused or anonymous
//! text costs nothing to keep. Looking texts up happens before the checks,
//! which need the text: async-graphql's own APQ extension resolves the text
//! inside execution, after our limits check, so it cannot be used here.

use std::time::Duration;

use async_graphql::{Request, Value};
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::error::code;

/// How long a stored text lives after it was last registered.
const TTL: Duration = Duration::from_secs(7 * 86_400);

/// A text sent with its hash, to store once it has passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    hash: String,
}

/// Why a persisted-query request is refused: a code and a message.
pub type Refusal = (&'static str, String);

/// The key of a text in `cache`, under the database's name as namespace.
fn key(namespace: &str, hash: &str) -> String {
    format!("{namespace}:apq:{hash}")
}

/// The hash a request names, when it uses the protocol.
pub(super) fn requested_hash(request: &Request) -> Result<Option<String>, Refusal> {
    let Some(persisted) = request.extensions.0.get("persistedQuery") else {
        return Ok(None);
    };
    let bad = |why: &str| Err((code::BAD_USER_INPUT, why.to_string()));
    let Value::Object(fields) = persisted else {
        return bad("extensions.persistedQuery must be an object { version: 1, sha256Hash }");
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_i64() == Some(1) => {}
        _ => return bad("extensions.persistedQuery.version must be 1"),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Ok(Some(hash.to_ascii_lowercase()))
        }
        _ => bad("extensions.persistedQuery.sha256Hash must be 64 hexadecimal characters"),
    }
}

/// Fills in the request's text when it names a persisted query by hash
/// alone; when it sends the text with its hash, checks the hash and returns
/// the registration to make once the text has passed the checks. Texts are
/// kept in `cache` under `namespace` (the database's name, so instances of
/// one database share them).
pub async fn resolve(
    cache: &Cache,
    namespace: &str,
    request: &mut Request,
) -> Result<Option<Registration>, Refusal> {
    let Some(hash) = requested_hash(request)? else {
        return Ok(None);
    };
    if request.query.is_empty() {
        return match cache.get_text(&key(namespace, &hash), TTL).await {
            Some(text) => {
                request.query = text.to_string();
                metrics::counter!("alawael_persisted_queries_total", "result" => "hit")
                    .increment(1);
                Ok(None)
            }
            None => {
                metrics::counter!("alawael_persisted_queries_total", "result" => "miss")
                    .increment(1);
                Err((
                    code::PERSISTED_QUERY_NOT_FOUND,
                    "PersistedQueryNotFound".into(),
                ))
            }
        };
    }
    let actual = hex::encode(Sha256::digest(request.query.as_bytes()));
    if actual != hash {
        return Err((
            code::BAD_USER_INPUT,
            "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query".into(),
        ));
    }
    Ok(Some(Registration { hash }))
}

/// Stores a registered text that passed the checks, if `allowed` (the
/// caller may register); counted either way.
pub async fn register(
    cache: &Cache,
    namespace: &str,
    registration: &Registration,
    text: &str,
    allowed: bool,
) {
    if !allowed {
        metrics::counter!("alawael_persisted_queries_total", "result" => "not_registered")
            .increment(1);
        return;
    }
    cache
        .set_text(&key(namespace, &registration.hash), text, TTL)
        .await;
    metrics::counter!("alawael_persisted_queries_total", "result" => "registered").increment(1);
}
