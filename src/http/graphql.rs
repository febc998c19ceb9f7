//! `POST /graphql` and `GET /graphql`: transport rules (content types, body
//! size, batches, mutations over GET), authentication, trusted documents and
//! persisted queries,
//! the document limits, then execution with per-request data and loaders.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{
    BatchRequest, BatchResponse, ErrorExtensionValues, Request, Response as GqlResponse,
    ServerError,
};
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Api;
use super::{client_address, request_id};
use crate::error::code;
use crate::graphql::context::RequestContext;
use crate::graphql::errors;
use crate::graphql::loaders::Loaders;
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

fn reply(headers: &HeaderMap, body: &BatchResponse) -> Response {
    let content_type = if wants_graphql_response(headers) {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    match serde_json::to_string(body) {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "response did not serialise");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                "internal server error",
            )
        }
    }
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
    let single = requests.len() == 1;
    let responses = run(&api, &headers, peer, requests, false).await;
    match responses {
        Ok(mut responses) if single => reply(&headers, &BatchResponse::Single(responses.remove(0))),
        Ok(responses) => reply(&headers, &BatchResponse::Batch(responses)),
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
        Ok(mut responses) => reply(&headers, &BatchResponse::Single(responses.remove(0))),
        Err(response) => response,
    }
}

/// Authenticates once, then checks and executes each operation.
async fn run(
    api: &Api,
    headers: &HeaderMap,
    peer: SocketAddr,
    requests: Vec<Request>,
    queries_only: bool,
) -> Result<Vec<GqlResponse>, Response> {
    let request_id = request_id(headers);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let state = &api.app;
    let caller = match state.authenticate(authorization).await {
        Ok(caller) => caller,
        Err(error) => {
            let failed =
                || errors::finalize(error_response(error.code(), error.message()), &request_id);
            return Ok(requests.iter().map(|_| failed()).collect());
        }
    };
    let context = RequestContext {
        caller,
        request_id: request_id.clone(),
        client_address: client_address(headers, peer, state.settings.server.trust_forwarded_for),
    };
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        responses.push(execute(api, &context, request, queries_only).await?);
    }
    Ok(responses)
}

/// Runs one operation: limits first, then the schema. A mutation sent over
/// GET is refused with 405.
pub async fn execute(
    api: &Api,
    context: &RequestContext,
    mut request: Request,
    queries_only: bool,
) -> Result<GqlResponse, Response> {
    let state = &api.app;
    let started = Instant::now();
    let admitted = match super::trusted::admit(state, &api.documents, &mut request) {
        Ok(super::trusted::Gate::Run) => Ok(()),
        Ok(super::trusted::Gate::Persisted) => super::persisted::resolve(state, &mut request).await,
        Err(refusal) => Err(refusal),
    };
    if let Err((code, message)) = admitted {
        let operation = crate::http::metrics::operation_label(request.operation_name.as_deref());
        crate::http::metrics::record_request(operation, false, started.elapsed().as_secs_f64());
        return Ok(error_response(code, message));
    }
    let document = match api.documents.check(&request.query) {
        Ok(document) => document,
        Err(refused) => {
            let operation =
                crate::http::metrics::operation_label(request.operation_name.as_deref());
            crate::http::metrics::record_request(operation, false, started.elapsed().as_secs_f64());
            return Ok(error_response(refused.code, refused.message));
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
    request.set_parsed_query(document);
    let request = with_request_data(request, state, context);
    let response = errors::finalize(api.schema.execute(request).await, &context.request_id);
    crate::http::metrics::record_request(
        operation,
        response.errors.is_empty(),
        started.elapsed().as_secs_f64(),
    );
    Ok(response)
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
