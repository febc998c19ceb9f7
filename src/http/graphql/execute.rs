//! One operation, as the list of its stages: the text (trusted documents,
//! persisted queries), the checks (parse, limits), the GET rule, the
//! response cache (plan, lookup, single flight), admission, execution,
//! storing the answer, and the request metrics.

use std::time::{Duration, Instant};

use async_graphql::Request;
use axum::response::Response;

use super::answer::Answer;
use super::cache::{self, Consulted};
use super::document::{self, operation_name};
use super::{engine, error_response};
use crate::graphql::context::RequestContext;
use crate::graphql::errors;
use crate::http::Api;
use crate::http::metrics::{operation_label, record_request};
use crate::http::responses;

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
    let registration = match document::text(api, &mut request).await {
        Ok(registration) => registration,
        Err((code, message)) => return Ok(turned_away(&request, code, message, started)),
    };
    let document = match api.documents.check(&request.query) {
        Ok(document) => document,
        Err(refused) => {
            return Ok(turned_away(
                &request,
                refused.code,
                refused.message,
                started,
            ));
        }
    };
    let signed_in = !matches!(context.caller, crate::auth::Caller::Anonymous);
    let key = match &context.caller {
        crate::auth::Caller::User(p) => p.key,
        crate::auth::Caller::Anonymous => None,
    };
    if let Some(scopes) = key
        && let Some(why) =
            document::refused_for_key(&document, request.operation_name.as_deref(), scopes)
    {
        return Ok(turned_away(
            &request,
            crate::error::code::FORBIDDEN,
            why,
            started,
        ));
    }
    document::registered(api, registration, &request.query, signed_in).await;
    // The quota: charged with the operation's cost, before the caches (the
    // bucket counts the work asked for).
    let cost = crate::documents::cost::estimate(
        &document,
        request.operation_name.as_deref(),
        &request.variables,
        &state.settings.graphql,
    );
    let rate = match crate::http::quota::charge(
        state,
        context,
        &document,
        request.operation_name.as_deref(),
        cost,
    )
    .await
    {
        Some(Err(refused)) => {
            let error: async_graphql::Error = crate::error::ApiError::RateLimited {
                retry_after_secs: refused.retry_after_secs,
            }
            .into();
            let operation = operation_label(request.operation_name.as_deref());
            record(operation, false, started);
            let mut answer = Answer::plain(async_graphql::Response::from_errors(vec![
                error.into_server_error(async_graphql::Pos::default()),
            ]));
            answer.rate = Some(refused);
            return Ok(answer);
        }
        Some(Ok(charged)) => Some(charged),
        None => None,
    };
    let wants_cost = matches!(
        request.extensions.0.get("cost"),
        Some(async_graphql::Value::Boolean(true))
    );
    let name = request.operation_name.as_deref();
    let operation = operation_label(operation_name(&document, name));
    if let Some(refused) = document::refused_over_get(queries_only, &document, name) {
        return Err(refused);
    }
    let show_status = responses::status_requested(&request);
    // An API key's answers are its own (its scopes shape them): never from
    // nor into the shared cache.
    let plan = if key.is_some() {
        None
    } else {
        cache::plan(&state.responses, &api.hints, &document, &request)
    };
    let wait = Duration::from_millis(state.settings.server.admission_wait_ms);
    let keep = match cache::consult(
        &state.responses,
        &request,
        &context.caller,
        plan.as_ref(),
        fresh,
        wait,
    )
    .await
    {
        Consulted::Hit(hit) => {
            record(operation, true, started);
            let mut answer = hit.answer(show_status);
            answer.rate = rate;
            return Ok(answer);
        }
        Consulted::Compute(keep) => keep,
    };
    let status = keep.status;
    status.count();
    let Some(_room) = engine::admission(&state.admission, wait).await else {
        let mut answer = engine::shed();
        answer.rate = rate;
        record(operation, false, started);
        return Ok(answer);
    };
    let response = engine::run(api, context, request, &document).await;
    let mut response = errors::finalize(response, &context.request_id);
    let data_json = keep.store(&state.responses, &mut response).await;
    if show_status {
        response
            .extensions
            .insert("cacheStatus".into(), status.as_str().into());
    }
    if wants_cost {
        response.extensions.insert("cost".into(), cost.into());
    }
    record(operation, response.errors.is_empty(), started);
    Ok(Answer {
        freshness: plan.as_ref().map(cache::freshness),
        response,
        data_json,
        hit: None,
        rate,
    })
}

/// The answer of an operation refused at the door (trusted documents,
/// persisted queries) or by the checks (parse, limits): the refusal's code
/// and message, counted as a failed request under the name it was sent with.
fn turned_away(
    request: &Request,
    code: &str,
    message: impl Into<String>,
    started: Instant,
) -> Answer {
    let operation = operation_label(request.operation_name.as_deref());
    record(operation, false, started);
    Answer::plain(error_response(code, message))
}

/// Counts the operation and its duration so far.
fn record(operation: String, ok: bool, started: Instant) {
    record_request(operation, ok, started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_document_is_answered_with_its_code_and_message_only() {
        let request = Request::new("{ me { id } }").operation_name("Me");
        let answer = turned_away(
            &request,
            crate::error::code::PERSISTED_QUERY_NOT_FOUND,
            "PersistedQueryNotFound",
            Instant::now(),
        );
        let [error] = answer.response.errors.as_slice() else {
            panic!("one error");
        };
        assert_eq!(error.message, "PersistedQueryNotFound");
        let code = error.extensions.as_ref().and_then(|e| e.get("code"));
        assert_eq!(
            code,
            Some(&async_graphql::Value::from(
                crate::error::code::PERSISTED_QUERY_NOT_FOUND
            ))
        );
        assert_eq!(answer.response.data, async_graphql::Value::Null);
        assert!(answer.freshness.is_none() && answer.data_json.is_none() && answer.hit.is_none());
    }
}
