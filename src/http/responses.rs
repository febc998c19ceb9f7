//! The response cache at the HTTP edge: the key of an answer (document,
//! operation, variables, the caller's role and row scope, and the caller
//! for private answers), the client's opt-ins (`extensions.cacheStatus`,
//! `Cache-Control: no-cache`), and the HTTP caching headers of a GET
//! (`Cache-Control` from the hints, a weak `ETag`, `304 Not Modified`),
//! and the compressed bodies of answers read from the cache.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::{Request, Value, Variables};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::caller::Caller;
use crate::domain::Role;
use crate::response_cache::hints::Plan;

/// What the cache did for one operation, as `extensions.cacheStatus` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Answered from the cache.
    Hit,
    /// Computed, and kept for the next caller with the same key.
    Miss,
    /// Not looked up: the operation is not cacheable, the client asked for
    /// a fresh answer, or the cache is unavailable.
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Bypass => "BYPASS",
        }
    }

    pub fn count(self) {
        let result = match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Bypass => "bypass",
        };
        metrics::counter!("alawael_response_cache_total", "result" => result).increment(1);
    }
}

/// How long HTTP caches may keep an answer, from its hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub max_age: u32,
    /// Only the caller's own cache may keep it.
    pub private: bool,
}

/// Whether the request asks to see `extensions.cacheStatus`.
pub fn status_requested(request: &Request) -> bool {
    matches!(
        request.extensions.0.get("cacheStatus"),
        Some(Value::Boolean(true))
    )
}

/// Whether the client asks for a fresh answer (`Cache-Control: no-cache`,
/// `no-store` or `max-age=0`, or `Pragma: no-cache`).
pub fn bypass_requested(headers: &HeaderMap) -> bool {
    let says = |name: header::HeaderName, words: &[&str]| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .map(|d| d.trim().to_ascii_lowercase())
                    .any(|d| words.contains(&d.as_str()))
            })
        })
    };
    says(
        header::CACHE_CONTROL,
        &["no-cache", "no-store", "max-age=0"],
    ) || says(header::PRAGMA, &["no-cache"])
}

/// The key of an answer. Public answers are shared by the callers of one
/// role and row scope: every ADMIN, every MANAGER, and per person for the
/// roles whose rows are their own (THERAPIST, USER). Private answers are
/// kept per caller.
pub fn digest(
    query: &str,
    operation: Option<&str>,
    variables: &Variables,
    caller: &Caller,
    plan: &Plan,
) -> String {
    let (role, person) = match caller {
        Caller::Anonymous => ("anonymous", None),
        Caller::User(p) => (p.role.as_str(), Some(p.id)),
    };
    let personal = plan.private
        || matches!(caller, Caller::User(p) if matches!(p.role, Role::Therapist | Role::User));
    let scope = match person {
        Some(id) if personal => id.to_hex(),
        _ => "all".to_string(),
    };
    let variables = serde_json::to_string(variables).unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [query, operation.unwrap_or(""), &variables, role, &scope] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// The `Cache-Control` of a GET answer: `no-store` unless cacheable;
/// `private` for anything a signed-in caller asked (never `public` for
/// authenticated data).
pub fn cache_control(freshness: Option<Freshness>, signed_in: bool) -> HeaderValue {
    match freshness {
        Some(f) if f.max_age > 0 => {
            let scope = if f.private || signed_in {
                "private"
            } else {
                "public"
            };
            HeaderValue::from_str(&format!("{scope}, max-age={}", f.max_age))
                .unwrap_or(HeaderValue::from_static("no-store"))
        }
        _ => HeaderValue::from_static("no-store"),
    }
}

/// A weak validator of the body (weak: compression may change the bytes).
pub fn etag(body: &str) -> HeaderValue {
    let hash = Sha256::digest(body.as_bytes());
    HeaderValue::from_str(&format!("W/\"{}\"", hex::encode(&hash[..16])))
        .unwrap_or(HeaderValue::from_static("W/\"0\""))
}

/// Whether the client's `If-None-Match` names this validator.
pub fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag
        .as_bytes()
        .strip_prefix(b"W/")
        .unwrap_or(etag.as_bytes());
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
}

/// `304 Not Modified` with the validator and caching headers.
pub fn not_modified_response(etag: HeaderValue, cache_control: HeaderValue) -> Response {
    (
        StatusCode::NOT_MODIFIED,
        [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
    )
        .into_response()
}

/// Whether the client takes a gzip body (`Accept-Encoding`, with its
/// q-values: `gzip;q=0` refuses it, `*` stands for it when it is not named).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut named = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let wanted = parts.all(|p| {
            p.trim()
                .strip_prefix("q=")
                .is_none_or(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0))
        });
        if name.eq_ignore_ascii_case("gzip") {
            named = Some(wanted);
        } else if name == "*" {
            any = Some(wanted);
        }
    }
    named.or(any).unwrap_or(false)
}

/// `text` gzipped at the fastest level. Each thread keeps one compressor
/// and resets it, rather than allocating and clearing a few hundred
/// kilobytes of tables per response as a new encoder does. `None` only if
/// compressing failed.
pub fn gzip(text: &[u8]) -> Option<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static COMPRESSOR: RefCell<Compress> =
            RefCell::new(Compress::new_gzip(Compression::fast(), 15));
    }
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        let mut out = Vec::with_capacity(text.len() / 4 + 64);
        loop {
            let done = usize::try_from(compressor.total_in()).ok()?;
            let rest = text.get(done..)?;
            match compressor.compress_vec(rest, &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Some(out),
                Ok(Status::Ok | Status::BufError) => out.reserve(out.capacity().max(4096)),
                Err(_) => return None,
            }
        }
    })
}

/// Compressed bodies of answers read from the response cache, by cache key
/// and whether the body carries the cache status: an answer read again is
/// sent as the bytes compressed the first time while its text is the same.
/// Bounded by bytes held: past its budget it starts over.
pub struct Compressed {
    bodies: Mutex<Bodies>,
    budget: usize,
}

#[derive(Default)]
struct Bodies {
    by_key: HashMap<String, (Arc<str>, Bytes)>,
    bytes: usize,
}

impl Compressed {
    /// Keeps at most `budget` bytes of texts and their gzip.
    pub fn new(budget: usize) -> Self {
        Self {
            bodies: Mutex::new(Bodies::default()),
            budget,
        }
    }

    /// The gzip of `text`, kept under `key`; `None` only if compressing failed.
    pub fn gzip(&self, key: &str, text: &str) -> Option<Bytes> {
        if let Ok(bodies) = self.bodies.lock()
            && let Some((kept, compressed)) = bodies.by_key.get(key)
            && **kept == *text
        {
            return Some(compressed.clone());
        }
        let compressed = Bytes::from(gzip(text.as_bytes())?);
        let size = text.len() + compressed.len();
        if size <= self.budget / 4
            && let Ok(mut bodies) = self.bodies.lock()
        {
            if bodies.bytes + size > self.budget {
                bodies.by_key.clear();
                bodies.bytes = 0;
            }
            if let Some((old, old_gz)) = bodies
                .by_key
                .insert(key.to_string(), (Arc::from(text), compressed.clone()))
            {
                bodies.bytes = bodies.bytes.saturating_sub(old.len() + old_gz.len());
            }
            bodies.bytes += size;
        }
        Some(compressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::caller::Principal;
    use bson::oid::ObjectId;

    fn caller(role: Role) -> Caller {
        Caller::User(Principal {
            key: None,
            id: ObjectId::new(),
            role,
            name: "n".into(),
        })
    }

    fn plan(private: bool) -> Plan {
        Plan {
            max_age: 60,
            private,
            dependencies: vec!["Asset".into()],
        }
    }

    #[test]
    fn public_answers_are_shared_by_role_and_private_ones_are_not() {
        let key = |c: &Caller, p: &Plan| digest("{ a }", None, &Variables::default(), c, p);
        let (a1, a2) = (caller(Role::Admin), caller(Role::Admin));
        let (t1, t2) = (caller(Role::Therapist), caller(Role::Therapist));
        let m = caller(Role::Manager);
        assert_eq!(key(&a1, &plan(false)), key(&a2, &plan(false)));
        assert_ne!(key(&a1, &plan(false)), key(&m, &plan(false)));
        assert_ne!(key(&a1, &plan(true)), key(&a2, &plan(true)));
        assert_ne!(key(&t1, &plan(false)), key(&t2, &plan(false)));
        assert_ne!(
            key(&a1, &plan(false)),
            key(&Caller::Anonymous, &plan(false))
        );
    }

    #[test]
    fn a_kept_compressor_gzips_one_text_after_another() {
        let unzip = |bytes: &[u8]| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(bytes), &mut text)
                .expect("gzip");
            text
        };
        let long = "{\"data\":[".to_string() + &"\"row\",".repeat(20_000) + "1]}";
        for text in ["{\"data\":1}", long.as_str(), "", "{\"data\":2}"] {
            assert_eq!(unzip(&gzip(text.as_bytes()).expect("compressed")), text);
        }
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).expect("header"),
            );
            accepts_gzip(&headers)
        };
        assert!(with("gzip"));
        assert!(with("br, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("gzip;q=0, *"));
        assert!(!with("br, deflate"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_compressed_body_is_reused_only_for_the_same_text() {
        use std::io::Read;
        let inflate = |bytes: &Bytes| {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .expect("gzip");
            text
        };
        let memo = Compressed::new(200);
        let first = memo.gzip("k", "{\"data\":1}").expect("compressed");
        assert_eq!(inflate(&first), "{\"data\":1}");
        assert_eq!(memo.gzip("k", "{\"data\":1}"), Some(first));
        let changed = memo.gzip("k", "{\"data\":2}").expect("compressed");
        assert_eq!(inflate(&changed), "{\"data\":2}");
        for n in 0..20 {
            memo.gzip(&n.to_string(), "abcdef");
        }
        let held = memo.bodies.lock().map(|b| b.bytes).unwrap_or(999);
        assert!(held <= 200, "{held} bytes held");
    }

    #[test]
    fn validators_and_directives() {
        let tag = etag("{\"data\":{}}");
        let mut headers = HeaderMap::new();
        assert!(!not_modified(&headers, &tag));
        headers.insert(header::IF_NONE_MATCH, tag.clone());
        assert!(not_modified(&headers, &tag));
        let fresh = Some(Freshness {
            max_age: 60,
            private: false,
        });
        assert_eq!(cache_control(fresh, true), "private, max-age=60");
        assert_eq!(cache_control(fresh, false), "public, max-age=60");
        assert_eq!(cache_control(None, false), "no-store");
        let mut asks = HeaderMap::new();
        asks.insert(header::CACHE_CONTROL, HeaderValue::from_static("No-Cache"));
        assert!(bypass_requested(&asks));
        assert!(!bypass_requested(&HeaderMap::new()));
    }
}
