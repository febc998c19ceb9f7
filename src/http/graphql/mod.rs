//! `POST /graphql` and `GET /graphql`: transport rules (content types, body
//! size, batches), authentication, then each operation through its stages
//! (`execute`: trusted documents, persisted queries, the document limits,
//! the GET rule, the response cache, admission, execution) and the reply.

mod answer;
mod document;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{
    BatchRequest, ErrorExtensionValues, Request, Response as GqlResponse, ServerError,
};
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use answer::{Answer, DataText};
use answer::{reply, reply_to_get};
pub use document::{is_query, operation_name, operation_type};

use super::Api;
use super::responses::{self, CacheStatus, Freshness};
use super::{client_address, request_id};
use crate::auth::caller::Caller;
use crate::error::code;
use crate::graphql::context::RequestContext;
use crate::graphql::errors;
use crate::graphql::loaders::Loaders;
use crate::graphql::splice::{self, Splice};
use crate::response_cache::{self, Flight, Lookup};
use crate::state::AppState;
use answer::DATA;

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

/// An operation refused: a GraphQL response with one error and its code.
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
                Answer::cached(
                    data,
                    Freshness {
                        max_age: plan.max_age,
                        private: plan.private,
                    },
                    &digest,
                    show_status,
                )
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
