//! `POST /graphql` and `GET /graphql`: transport rules (content types, body
//! size, batches, mutations over GET), authentication, trusted documents and
//! persisted queries,
//! the document limits, then execution with per-request data and loaders.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{
    BatchRequest, ErrorExtensionValues, Request, Response as GqlResponse, ServerError,
};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Api;
use super::responses::{self, CacheStatus, Freshness};
use super::{client_address, request_id};
use crate::auth::caller::Caller;
use crate::error::code;
use crate::graphql::context::RequestContext;
use crate::graphql::errors;
use crate::graphql::loaders::Loaders;
use crate::graphql::splice::{self, Splice};
use crate::response_cache::hints::Plan;
use crate::response_cache::{self, Flight, Lookup};
use crate::state::AppState;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A transport-level refusal, still in the GraphQL error shape.
fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

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
fn reply(api: &Api, headers: &HeaderMap, mut answers: Vec<Answer>, batch: bool) -> Response {
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
    if text.len() >= usize::from(super::COMPRESS_FROM_BYTES) && responses::accepts_gzip(headers) {
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
fn reply_to_get(headers: &HeaderMap, answer: Answer, signed_in: bool) -> Response {
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

/// How an answer's text begins.
const DATA: &str = "{\"data\":";

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

fn error_response(code: &str, message: impl Into<String>) -> GqlResponse {
    let mut error = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code);
    error.extensions = Some(ext);
    GqlResponse::from_errors(vec![error])
}

pub async fn post(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let state = &api.app;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" && media != GRAPHQL_RESPONSE {
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_USER_INPUT,
            "send GraphQL requests as Content-Type: application/json",
        );
    }
    let limit = state.settings.server.body_limit_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::QUERY_TOO_LONG,
                &format!("the request body is larger than {limit} bytes"),
            );
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(error) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                code::PARSE_FAILED,
                &format!("the body is not a GraphQL request ({error})"),
            );
        }
    };
    let batch_shape = match &batch {
        BatchRequest::Single(_) => Shape::Single,
        BatchRequest::Batch(_) => Shape::Batch,
    };
    let requests = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => {
            let max = state.settings.graphql.max_batch_size;
            if max == 0 {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    code::BATCH_TOO_LARGE,
                    "array batches are turned off; send one operation per request",
                );
            }
            if requests.len() > max {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    code::BATCH_TOO_LARGE,
                    &format!("a batch has at most {max} operations"),
                );
            }
            requests
        }
    };
    let batch = !matches!(batch_shape, Shape::Single);
    match run(&api, &headers, peer, requests, false).await {
        Ok((answers, _)) => reply(&api, &headers, answers, batch),
        Err(response) => response,
    }
}

pub async fn get(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let state = &api.app;
    let query = query.unwrap_or_default();
    if query.is_empty() {
        let html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        if html && state.settings.server.graphiql {
            return super::graphiql::response(&headers);
        }
        return refusal(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "pass the query in the `query` parameter, or POST it as JSON",
        );
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(error) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                code::PARSE_FAILED,
                &format!("the query string is not a GraphQL request ({error})"),
            );
        }
    };
    match run(&api, &headers, peer, vec![request], true).await {
        Ok((mut answers, signed_in)) => reply_to_get(&headers, answers.remove(0), signed_in),
        Err(response) => response,
    }
}

/// Authenticates once, then checks and executes each operation; also tells
/// whether the caller is signed in.
async fn run(
    api: &Api,
    headers: &HeaderMap,
    peer: SocketAddr,
    requests: Vec<Request>,
    queries_only: bool,
) -> Result<(Vec<Answer>, bool), Response> {
    let request_id = request_id(headers);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let state = &api.app;
    let caller = match state.authenticate(authorization).await {
        Ok(caller) => caller,
        Err(error) => {
            let failed = || {
                Answer::plain(errors::finalize(
                    error_response(error.code(), error.message()),
                    &request_id,
                ))
            };
            return Ok((requests.iter().map(|_| failed()).collect(), true));
        }
    };
    let context = RequestContext {
        caller,
        request_id: request_id.clone(),
        client_address: client_address(headers, peer, state.settings.server.trust_forwarded_for),
    };
    let signed_in = !matches!(context.caller, Caller::Anonymous);
    let fresh = responses::bypass_requested(headers);
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        answers.push(execute(api, &context, request, queries_only, fresh).await?);
    }
    Ok((answers, signed_in))
}

/// Whether a POST body was one request or an array of them.
enum Shape {
    Single,
    Batch,
}

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
    fn cached(data: Arc<str>, plan: &Plan, digest: &str, show_status: bool) -> Self {
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
            freshness: Some(Freshness {
                max_age: plan.max_age,
                private: plan.private,
            }),
            hit: Some(format!("{digest}:{show_status}")),
        }
    }

    fn plain(response: GqlResponse) -> Self {
        Self {
            response,
            data_json: None,
            freshness: None,
            hit: None,
        }
    }
}

/// Runs one operation: limits first, then the response cache (unless
/// `fresh`), then the schema. A mutation sent over GET is refused with 405.
pub async fn execute(
    api: &Api,
    context: &RequestContext,
    mut request: Request,
    queries_only: bool,
    fresh: bool,
) -> Result<Answer, Response> {
    let state = &api.app;
    let started = Instant::now();
    let admitted =
        match crate::documents::trusted::admit::admit(state, &api.documents, &mut request) {
            Ok(crate::documents::trusted::admit::Gate::Run) => Ok(()),
            Ok(crate::documents::trusted::admit::Gate::Persisted) => {
                crate::documents::persisted::resolve(state, &mut request).await
            }
            Err(refusal) => Err(refusal),
        };
    if let Err((code, message)) = admitted {
        let operation = crate::http::metrics::operation_label(request.operation_name.as_deref());
        crate::http::metrics::record_request(operation, false, started.elapsed().as_secs_f64());
        return Ok(Answer::plain(error_response(code, message)));
    }
    let document = match api.documents.check(&request.query) {
        Ok(document) => document,
        Err(refused) => {
            let operation =
                crate::http::metrics::operation_label(request.operation_name.as_deref());
            crate::http::metrics::record_request(operation, false, started.elapsed().as_secs_f64());
            return Ok(Answer::plain(error_response(refused.code, refused.message)));
        }
    };
    let operation = crate::http::metrics::operation_label(operation_name(
        &document,
        request.operation_name.as_deref(),
    ));
    if queries_only && !is_query(&document, request.operation_name.as_deref()) {
        let mut response = refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            code::BAD_USER_INPUT,
            "mutations and subscriptions must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return Err(response);
    }
    let show_status = responses::status_requested(&request);
    let plan = state
        .responses
        .enabled()
        .then(|| {
            api.hints.plan(
                &document,
                request.operation_name.as_deref(),
                &request.variables,
            )
        })
        .flatten()
        .map(|mut plan| {
            plan.max_age = plan.max_age.min(state.responses.max_age_cap());
            plan
        });
    let mut status = CacheStatus::Bypass;
    let mut ticket = None;
    let mut lead = None;
    if let Some(plan) = &plan {
        let digest = responses::digest(
            &request.query,
            request.operation_name.as_deref(),
            &request.variables,
            &context.caller,
            plan,
        );
        let ttl = Duration::from_secs(u64::from(plan.max_age));
        let lookup = if fresh {
            state
                .responses
                .renewal(&digest, &plan.dependencies, ttl)
                .await
        } else {
            state
                .responses
                .lookup(&digest, &plan.dependencies, ttl)
                .await
        };
        if let Lookup::Ready { found, ticket: t } = lookup {
            let hit = |data| {
                crate::http::metrics::record_request(
                    operation.clone(),
                    true,
                    started.elapsed().as_secs_f64(),
                );
                Answer::cached(data, plan, &digest, show_status)
            };
            if let Some(data) = found.filter(|_| !fresh) {
                return Ok(hit(data));
            }
            if !fresh {
                status = CacheStatus::Miss;
                match state.responses.flight(&digest) {
                    Flight::Lead(leader) => lead = Some(leader),
                    Flight::Follow(answer) => {
                        let wait = Duration::from_millis(state.settings.server.admission_wait_ms);
                        if let Some(data) = response_cache::follow(answer, wait).await {
                            // Computed once, by the request this one waited for.
                            return Ok(hit(data));
                        }
                    }
                }
            }
            ticket = Some(t);
        }
    }
    status.count();
    let wait = Duration::from_millis(state.settings.server.admission_wait_ms);
    let Ok(Ok(_admitted)) =
        tokio::time::timeout(wait, state.admission.clone().acquire_owned()).await
    else {
        metrics::counter!("alawael_operations_shed_total").increment(1);
        crate::http::metrics::record_request(operation, false, started.elapsed().as_secs_f64());
        return Ok(Answer::plain(error_response(
            code::SERVICE_UNAVAILABLE,
            "the server is busy; retry in a moment",
        )));
    };
    let spliced = splice::safe(&document, request.operation_name.as_deref());
    request.set_parsed_query(document.to_document());
    let mut request = with_request_data(request, state, context);
    if spliced {
        request = request.data(Splice);
    }
    let validated = document.validated();
    let (schema, validation) = if validated {
        (&api.validated_schema, "skipped")
    } else {
        (&api.schema, "full")
    };
    metrics::counter!("alawael_validations_total", "validation" => validation).increment(1);
    let response = schema.execute(request).await;
    if !validated && response.errors.is_empty() {
        document.passed_validation();
    }
    let mut response = errors::finalize(response, &context.request_id);
    let mut data_json = None;
    if let Some(ticket) = ticket
        && response.errors.is_empty()
    {
        let text = splice::to_string_after(DATA, &response.data);
        let data = &text[DATA.len()..];
        state.responses.store(ticket, data).await;
        response.data = async_graphql::Value::Null;
        if let Some(leader) = &lead {
            leader.land(Arc::from(data));
        }
        data_json = Some(DataText::Started(text));
    }
    drop(lead);
    if show_status {
        response
            .extensions
            .insert("cacheStatus".into(), status.as_str().into());
    }
    crate::http::metrics::record_request(
        operation,
        response.errors.is_empty(),
        started.elapsed().as_secs_f64(),
    );
    Ok(Answer {
        freshness: plan.map(|plan| Freshness {
            max_age: plan.max_age,
            private: plan.private,
        }),
        response,
        data_json,
        hit: None,
    })
}

/// The data every operation carries: the state, the caller and fresh loaders.
pub fn with_request_data(
    request: Request,
    state: &Arc<AppState>,
    context: &RequestContext,
) -> Request {
    let access = state.db.access(context.viewer());
    request
        .data(state.clone())
        .data(context.clone())
        .data(Loaders::new(access))
}

/// The name of the operation that would run, when it has one.
pub fn operation_name<'a>(
    document: &'a ExecutableDocument,
    requested: Option<&'a str>,
) -> Option<&'a str> {
    match (&document.operations, requested) {
        (_, Some(name)) => Some(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.keys().next().map(|n| n.as_str())
        }
        _ => None,
    }
}

/// The type of the operation that would run; `None` when the name matches none.
pub fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) => {
            // Several operations and no name: execution names the problem,
            // unless one of them could change data.
            let mut types = ops.values().map(|op| op.node.ty);
            let first = types.next();
            if types.all(|t| Some(t) == first) {
                first
            } else {
                Some(OperationType::Mutation)
            }
        }
    }
}

/// Whether the operation that would run only reads.
pub fn is_query(document: &ExecutableDocument, name: Option<&str>) -> bool {
    operation_type(document, name).is_none_or(|ty| ty == OperationType::Query)
}
