//! `POST /graphql` and `GET /graphql`: transport rules (content types, body
//! size, batches), authentication, then each operation through its stages
//! (`execute`: trusted documents, persisted queries, the document limits,
//! the GET rule, the response cache, admission, execution) and the reply.

mod answer;
mod cache;
pub(crate) mod document;
mod engine;
mod execute;

use std::net::SocketAddr;

use async_graphql::{
    BatchRequest, ErrorExtensionValues, Request, Response as GqlResponse, ServerError,
};
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use answer::{Answer, DataText};
use answer::{reply, reply_to_get};
pub use document::{is_query, operation_name, operation_type};
pub use engine::with_request_data;
pub use execute::execute;

use super::Api;
use super::responses;
use super::{client_address, request_id};
use crate::auth::caller::Caller;
use crate::error::{ApiError, code};
use crate::graphql::context::RequestContext;
use crate::graphql::errors;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A transport-level refusal, still in the GraphQL error shape.
pub(crate) fn refusal_response(status: StatusCode, code: &str, message: &str) -> Response {
    refusal(status, code, message)
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An operation refused: a GraphQL response with one error and its code.
fn error_response(code: &str, message: impl Into<String>) -> GqlResponse {
    let mut error = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code);
    error.extensions = Some(ext);
    GqlResponse::from_errors(vec![error])
}

/// Whether any of the requests runs a mutation.
fn holds_mutation(requests: &[Request]) -> bool {
    requests.iter().any(|request| {
        async_graphql::parser::parse_query(&request.query).is_ok_and(|document| {
            operation_type(&document, request.operation_name.as_deref())
                == Some(async_graphql::parser::types::OperationType::Mutation)
        })
    })
}

/// Whose `Idempotency-Key` it is: the signed-in caller (or key), else the
/// client's address.
async fn caller_scope(api: &Api, headers: &HeaderMap, peer: SocketAddr) -> String {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match api.app.authenticate(authorization).await {
        Ok(Caller::User(principal)) => format!("principal:{}", principal.id.to_hex()),
        _ => format!(
            "address:{}",
            client_address(headers, peer, &api.app.settings.server)
        ),
    }
}

/// The quota's headers on an answer; a single operation refused by its
/// quota is answered `429 Too Many Requests` with `Retry-After`.
fn rated(response: &mut Response, rate: Option<crate::auth::quota::Charge>, batch: bool) {
    let Some(rate) = rate else {
        return;
    };
    super::quota::headers(response.headers_mut(), &rate);
    if !rate.allowed && !batch {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
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
    // An `Idempotency-Key` on a mutation: run once per caller and key.
    let slot = match super::idempotency::key_of(&headers) {
        Err(refused) => return *refused,
        Ok(Some(key)) if holds_mutation(&requests) => {
            let caller = caller_scope(&api, &headers, peer).await;
            Some(super::idempotency::slot(state.db.name(), &caller, &key))
        }
        Ok(_) => None,
    };
    if let Some(slot) = &slot
        && let super::idempotency::Claim::Answer(answer) =
            super::idempotency::claim(&state.cache, slot, &bytes).await
    {
        return answer;
    }
    let response = match run(&api, &headers, peer, requests, false).await {
        Ok((answers, _)) => {
            let rate = answers.iter().rev().find_map(|a| a.rate.clone());
            let mut response = reply(&api, &headers, answers, batch);
            rated(&mut response, rate, batch);
            response
        }
        Err(response) => response,
    };
    match slot {
        Some(slot) => super::idempotency::keep(&state.cache, &slot, &bytes, response).await,
        None => response,
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
        Ok((mut answers, signed_in)) => {
            let answer = answers.remove(0);
            let rate = answer.rate.clone();
            let mut response = reply_to_get(&headers, answer, signed_in);
            rated(&mut response, rate, false);
            response
        }
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
    // A partner system may send its key as `X-Api-Key` instead.
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("ApiKey {}", k.trim()));
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .or(api_key.as_deref());
    let state = &api.app;
    let session = match state
        .authenticate_session(authorization)
        .await
        .map_err(ApiError::from)
    {
        Ok(session) => session,
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
        caller: session.caller,
        request_id: request_id.clone(),
        client_address: client_address(headers, peer, &state.settings.server),
        session: session.id,
        user_agent: super::user_agent(headers),
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
