//! One operation's answer and how it goes out: its JSON text (written once,
//! or already text when it came from the response cache), a batch's array,
//! and the HTTP replies of POST (`no-store`, gzip from 1 KB) and GET
//! (`Cache-Control` from the hints, `ETag`, `304`).

use std::sync::Arc;

use async_graphql::Response as GqlResponse;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{GRAPHQL_RESPONSE, refusal};
use crate::error::code;
use crate::graphql::splice;
use crate::http::Api;
use crate::http::responses::{self, CacheStatus, Freshness};

/// One operation's response, and how long HTTP caches may keep it.
pub struct Answer {
    /// The response; its `data` is not used when `data_json` is set.
    pub response: GqlResponse,
    /// The `data` as JSON text, when it already is text (read from the
    /// response cache, or just stored in it).
    pub data_json: Option<DataText>,
    pub freshness: Option<Freshness>,
    /// For an answer read from the response cache: the key its compressed
    /// body is kept under.
    pub hit: Option<String>,
    /// What the operation was charged to its caller's quota (the
    /// `RateLimit` headers), when quotas are on.
    pub rate: Option<crate::auth::quota::Charge>,
}

/// An answer's `data` already written as JSON text.
pub enum DataText {
    /// Shared with the response cache or with other requests.
    Shared(Arc<str>),
    /// This request's own: the answer's text so far, `{"data":` and the data.
    Started(String),
}

impl Answer {
    /// An answer the response cache holds (or another request just computed).
    pub(super) fn cached(
        data: Arc<str>,
        freshness: Freshness,
        digest: &str,
        show_status: bool,
    ) -> Self {
        let mut response = GqlResponse::new(async_graphql::Value::Null);
        if show_status {
            response
                .extensions
                .insert("cacheStatus".into(), CacheStatus::Hit.as_str().into());
        }
        CacheStatus::Hit.count();
        Self {
            response,
            data_json: Some(DataText::Shared(data)),
            freshness: Some(freshness),
            hit: Some(format!("{digest}:{show_status}")),
            rate: None,
        }
    }

    pub(super) fn plain(response: GqlResponse) -> Self {
        Self {
            response,
            data_json: None,
            freshness: None,
            hit: None,
            rate: None,
        }
    }
}

/// How an answer's text begins.
pub(super) const DATA: &str = "{\"data\":";

fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(GRAPHQL_RESPONSE))
}

/// The answer of a POST: never kept by HTTP caches (answers are cached
/// server-side; GET carries the HTTP caching headers). An answer read from
/// the response cache goes out as the bytes compressed the first time it
/// was sent, while its text stays the same.
pub(super) fn reply(
    api: &Api,
    headers: &HeaderMap,
    mut answers: Vec<Answer>,
    batch: bool,
) -> Response {
    let memo = match answers.as_mut_slice() {
        [answer] if !batch => answer.hit.take(),
        _ => None,
    };
    let text = if batch {
        render_batch(answers)
    } else {
        answers
            .into_iter()
            .next()
            .map(render)
            .unwrap_or_else(|| Ok("null".into()))
    };
    let text = match text {
        Ok(text) => text,
        Err(error) => return unserialisable(&error),
    };
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type(headers)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response();
    if text.len() >= usize::from(crate::http::COMPRESS_FROM_BYTES)
        && responses::accepts_gzip(headers)
    {
        // Compressed here, not by the compression layer (which skips a
        // body that already has an encoding): a kept compressor per thread,
        // and a cached answer's bytes compressed once.
        let compressed = match &memo {
            Some(key) => api.compressed.gzip(key, &text),
            None => responses::gzip(text.as_bytes()).map(Bytes::from),
        };
        if let Some(compressed) = compressed {
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            *response.body_mut() = Body::from(compressed);
            return response;
        }
    }
    *response.body_mut() = Body::from(text);
    response
}

fn content_type(headers: &HeaderMap) -> HeaderValue {
    HeaderValue::from_static(if wants_graphql_response(headers) {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    })
}

/// The answer of a GET: `Cache-Control` from the hints, a weak `ETag`, and
/// `304 Not Modified` when the client already has this body.
pub(super) fn reply_to_get(headers: &HeaderMap, answer: Answer, signed_in: bool) -> Response {
    let freshness = answer
        .freshness
        .filter(|_| answer.response.errors.is_empty());
    let cache_control = responses::cache_control(freshness, signed_in);
    let text = match render(answer) {
        Ok(text) => text,
        Err(error) => return unserialisable(&error),
    };
    let etag = responses::etag(&text);
    if responses::not_modified(headers, &etag) {
        return responses::not_modified_response(etag, cache_control);
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type(headers)),
            (header::CACHE_CONTROL, cache_control),
            (header::ETAG, etag),
            (header::VARY, HeaderValue::from_static("authorization")),
        ],
        text,
    )
        .into_response()
}

/// The JSON text of one answer. Data already held as text (read from the
/// cache, or just stored there) is not serialised again.
fn render(answer: Answer) -> serde_json::Result<String> {
    let response = &answer.response;
    let mut text = match answer.data_json {
        Some(DataText::Started(text)) => text,
        Some(DataText::Shared(data)) => {
            let mut text = String::with_capacity(DATA.len() + data.len() + 64);
            text.push_str(DATA);
            text.push_str(&data);
            text
        }
        None => splice::to_string_after(DATA, &response.data),
    };
    if !response.errors.is_empty() {
        text.push_str(",\"errors\":");
        text.push_str(&serde_json::to_string(&response.errors)?);
    }
    if !response.extensions.is_empty() {
        text.push_str(",\"extensions\":");
        text.push_str(&serde_json::to_string(&response.extensions)?);
    }
    text.push('}');
    Ok(text)
}

/// The JSON array of a batch's answers.
fn render_batch(answers: Vec<Answer>) -> serde_json::Result<String> {
    let mut text = String::from("[");
    for (n, answer) in answers.into_iter().enumerate() {
        if n > 0 {
            text.push(',');
        }
        text.push_str(&render(answer)?);
    }
    text.push(']');
    Ok(text)
}

fn unserialisable(error: &serde_json::Error) -> Response {
    tracing::error!(%error, "response did not serialise");
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL,
        "internal server error",
    )
}
