//! The execution stages of an operation: admission (room among
//! `server.max_concurrent_operations`), the request's data, the validation
//! mode (full, or the schema for documents it validated before) and the
//! schema's execution of the checked document.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Request, Response as GqlResponse};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::answer::Answer;
use super::error_response;
use crate::documents::parsed::Known;
use crate::error::code;
use crate::graphql::AlawaelSchema;
use crate::graphql::context::RequestContext;
use crate::graphql::loaders::Loaders;
use crate::graphql::splice::{self, Splice};
use crate::http::Api;
use crate::state::AppState;

/// Room to execute, waited for up to `wait`; `None` when the server stays
/// busy that long (the operation is then shed: see `shed`).
pub(super) async fn admission(
    admission: &Arc<Semaphore>,
    wait: Duration,
) -> Option<OwnedSemaphorePermit> {
    match tokio::time::timeout(wait, admission.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Some(permit),
        _ => None,
    }
}

/// The answer of an operation refused admission: `SERVICE_UNAVAILABLE`,
/// counted in `alawael_operations_shed_total`.
pub(super) fn shed() -> Answer {
    metrics::counter!("alawael_operations_shed_total").increment(1);
    Answer::plain(error_response(
        code::SERVICE_UNAVAILABLE,
        "the server is busy; retry in a moment",
    ))
}

/// How the schema validates a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validation {
    /// Every rule: a document not validated before, or one with variables.
    Full,
    /// Only the cheap checks (`build_schema_for_validated`): full
    /// validation passed this document without variables before.
    Skipped,
}

impl Validation {
    fn of(document: &Known) -> Self {
        if document.validated() {
            Self::Skipped
        } else {
            Self::Full
        }
    }

    fn schema(self, api: &Api) -> &AlawaelSchema {
        match self {
            Self::Full => &api.schema,
            Self::Skipped => &api.validated_schema,
        }
    }

    /// The `validation` label of `alawael_validations_total`.
    fn label(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Skipped => "skipped",
        }
    }

    /// A full validation the response passed (no errors) is remembered,
    /// so the document's next sends may skip it.
    fn remember(self, document: &Known, response: &GqlResponse) {
        if self == Self::Full && response.errors.is_empty() {
            document.passed_validation();
        }
    }
}

/// Executes the checked `document` with the request's data (and the
/// `Splice` marker when its answer can be written as text while it
/// resolves), on the schema its validation mode picks.
pub(super) async fn run(
    api: &Api,
    context: &RequestContext,
    mut request: Request,
    document: &Known,
) -> GqlResponse {
    let spliced = splice::safe(document, request.operation_name.as_deref());
    request.set_parsed_query(document.to_document());
    let mut request = with_request_data(request, &api.app, context);
    if spliced {
        request = request.data(Splice);
    }
    let validation = Validation::of(document);
    metrics::counter!("alawael_validations_total", "validation" => validation.label()).increment(1);
    let response = validation.schema(api).execute(request).await;
    validation.remember(document, &response);
    response
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
        .data(Loaders::new(access, state.vault.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GraphqlSettings;
    use crate::documents::parsed::Documents;
    use async_graphql::ServerError;

    fn failed() -> GqlResponse {
        GqlResponse::from_errors(vec![ServerError::new("unknown field", None)])
    }

    #[test]
    fn a_document_is_validated_in_full_until_it_passes_without_variables() {
        let documents = Documents::new(GraphqlSettings::default());
        let constant = documents.check("{ me { id } }").expect("checked");
        assert_eq!(Validation::of(&constant), Validation::Full);
        Validation::Full.remember(&constant, &failed());
        assert_eq!(Validation::of(&constant), Validation::Full);
        Validation::Full.remember(&constant, &GqlResponse::new(async_graphql::Value::Null));
        assert_eq!(Validation::of(&constant), Validation::Skipped);
        assert_eq!(Validation::Skipped.label(), "skipped");
        assert_eq!(Validation::Full.label(), "full");
    }

    #[test]
    fn a_document_with_variables_is_always_validated_in_full() {
        let documents = Documents::new(GraphqlSettings::default());
        let variable = documents
            .check("query($id: ID!) { asset(id: $id) { id } }")
            .expect("checked");
        Validation::Full.remember(&variable, &GqlResponse::new(async_graphql::Value::Null));
        assert_eq!(Validation::of(&variable), Validation::Full);
    }

    #[tokio::test]
    async fn an_operation_waits_for_room_and_is_refused_when_none_comes() {
        let room = Arc::new(Semaphore::new(1));
        let wait = Duration::from_millis(5);
        let first = admission(&room, wait).await.expect("room for one");
        assert!(admission(&room, wait).await.is_none());
        drop(first);
        assert!(admission(&room, wait).await.is_some());
        room.close();
        assert!(admission(&room, wait).await.is_none());
    }

    #[test]
    fn a_shed_operation_is_service_unavailable() {
        let answer = shed();
        let error = &answer.response.errors[0];
        assert_eq!(error.message, "the server is busy; retry in a moment");
        let code = error.extensions.as_ref().and_then(|e| e.get("code"));
        assert_eq!(
            code,
            Some(&async_graphql::Value::from(code::SERVICE_UNAVAILABLE))
        );
        assert!(answer.freshness.is_none() && answer.data_json.is_none());
    }
}
