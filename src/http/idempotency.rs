//! Idempotent mutations for clients on unreliable networks: a `POST` with
//! an `Idempotency-Key` header whose operation is a mutation is run once
//! per caller and key; its answer is kept 24 hours, and a retry with the
//! same key and the same body gets that answer again (`Idempotent-Replayed:
//! true`) without running anything. The same key with another body is
//! `CONFLICT`; a retry that arrives while the first is still running waits
//! for its answer. The claim is one `SET NX` in Redis (in process without
//! it), so two simultaneous retries run the mutation once.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::error::code;

/// How long an answer is kept for retries.
const KEPT: Duration = Duration::from_secs(24 * 3600);
/// How long a retry waits for the first request's answer.
const WAIT: Duration = Duration::from_secs(30);
/// The answers kept are bounded in size (a larger one is not replayed).
const LARGEST: usize = 1 << 20;

/// What is kept under a key: the request it was for, and its answer once there.
#[derive(Serialize, Deserialize)]
struct Kept {
    /// SHA-256 of the request's body.
    request: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    content_encoding: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

/// The key a request names, if it is usable (printable, at most 200
/// bytes); `Err` with the refusal to send otherwise.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty() && key.len() <= 200 && key.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_string()))
        }
        _ => Err(Box::new(super::graphql::refusal_response(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "an Idempotency-Key is 1 to 200 printable characters",
        ))),
    }
}

/// Where a caller's key is kept.
pub fn slot(namespace: &str, caller: &str, key: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{caller}\0{key}").as_bytes()));
    format!("{namespace}:idempotency:{digest}")
}

/// What a request with a key may do.
pub enum Claim {
    /// Run it, then `keep` its answer.
    Run,
    /// Answer this instead (a replay, or a refusal).
    Answer(Response),
}

/// Claims `slot` for a request with body `body`.
pub async fn claim(cache: &Cache, slot: &str, body: &[u8]) -> Claim {
    let request = hex::encode(Sha256::digest(body));
    let first = Kept {
        request: request.clone(),
        status: None,
        content_type: None,
        content_encoding: None,
        body: None,
    };
    let Ok(text) = serde_json::to_string(&first) else {
        return Claim::Run;
    };
    if cache.put_new(slot, &text, KEPT).await {
        return Claim::Run;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let kept = cache
            .fetch(slot)
            .await
            .and_then(|t| serde_json::from_str::<Kept>(&t).ok());
        let Some(kept) = kept else {
            // Gone meanwhile (expired): this request is the first now.
            return if cache.put_new(slot, &text, KEPT).await {
                Claim::Run
            } else {
                Claim::Answer(conflict("this Idempotency-Key is in use; retry"))
            };
        };
        if kept.request != request {
            return Claim::Answer(conflict(
                "this Idempotency-Key was used with another request; use a new key for a new request",
            ));
        }
        if let (Some(status), Some(body)) = (kept.status, &kept.body) {
            metrics::counter!("alawael_idempotent_replays_total").increment(1);
            return Claim::Answer(replay(status, &kept, body));
        }
        if Instant::now() >= deadline {
            return Claim::Answer(conflict(
                "the first request with this Idempotency-Key is still running",
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Keeps `response` under `slot` for retries, and gives it back.
pub async fn keep(cache: &Cache, slot: &str, body: &[u8], response: Response) -> Response {
    let (parts, answer) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(answer, LARGEST).await else {
        return conflict("the answer was too large to keep for retries");
    };
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let kept = Kept {
        request: hex::encode(Sha256::digest(body)),
        status: Some(parts.status.as_u16()),
        content_type: header(header::CONTENT_TYPE),
        content_encoding: header(header::CONTENT_ENCODING),
        body: Some(STANDARD.encode(&bytes)),
    };
    if let Ok(text) = serde_json::to_string(&kept) {
        cache.put(slot, &text, KEPT).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(status: u16, kept: &Kept, body: &str) -> Response {
    let bytes = STANDARD.decode(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, &kept.content_type),
        (header::CONTENT_ENCODING, &kept.content_encoding),
    ] {
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn conflict(message: &str) -> Response {
    let mut response =
        super::graphql::refusal_response(StatusCode::CONFLICT, code::CONFLICT, message);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.into_response()
}
