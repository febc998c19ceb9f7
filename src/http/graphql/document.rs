//! The document stages of an operation, before the response cache: its text
//! (trusted documents, then persisted queries), the operation that would
//! run, and the GET rule (only queries over GET). Parsing and the limits are
//! `documents::parsed::Documents::check`.

use async_graphql::Request;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::refusal;
use crate::documents::persisted::{self, Refusal};
use crate::documents::trusted::admit::{Gate, admit};
use crate::error::code;
use crate::http::Api;

/// The text to check: a trusted document lets it through (filling in the
/// text of one named by its hash) or refuses it; otherwise the automatic
/// persisted-query protocol fills it in, or refuses it, or asks for it to
/// be registered once it has passed the checks (`registered`).
pub(super) async fn text(
    api: &Api,
    request: &mut Request,
) -> Result<Option<persisted::Registration>, Refusal> {
    let state = &api.app;
    match admit(
        &state.settings.documents,
        &state.trusted,
        &api.documents,
        request,
    )? {
        Gate::Run => Ok(None),
        Gate::Persisted => persisted::resolve(&state.cache, state.db.name(), request).await,
    }
}

/// Stores a text sent for registration, now that it passed the checks:
/// for anyone, or only for a signed-in caller
/// (`documents.register_signed_in_only`).
pub(super) async fn registered(
    api: &Api,
    registration: Option<persisted::Registration>,
    text: &str,
    signed_in: bool,
) {
    let Some(registration) = registration else {
        return;
    };
    let state = &api.app;
    let allowed = signed_in || !state.settings.documents.register_signed_in_only;
    persisted::register(&state.cache, state.db.name(), &registration, text, allowed).await;
}

/// The GET rule: over GET (`queries_only`) only a query runs; anything
/// else is refused with `405 Method Not Allowed` and `Allow: GET, POST`.
pub(super) fn refused_over_get(
    queries_only: bool,
    document: &ExecutableDocument,
    name: Option<&str>,
) -> Option<Response> {
    if !queries_only || is_query(document, name) {
        return None;
    }
    let mut response = refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        code::BAD_USER_INPUT,
        "mutations and subscriptions must be sent with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    Some(response)
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

/// For an API key: the root fields of the operation that would run that its
/// scopes do not cover (`domain::scopes::for_root_field`), as a refusal
/// message; `None` when every one is covered. Fragments at the root are
/// followed. Any operation of a document without a name is checked.
pub fn refused_for_key(
    document: &ExecutableDocument,
    name: Option<&str>,
    scopes: crate::domain::scopes::Scopes,
) -> Option<String> {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        root: &str,
        scopes: crate::domain::scopes::Scopes,
        depth: usize,
    ) -> Option<String> {
        if depth > 16 {
            return Some("the operation's root fragments nest too deeply".into());
        }
        for item in &set.items {
            let refused = match &item.node {
                Selection::Field(field) => {
                    let field = field.node.name.node.as_str();
                    match crate::domain::scopes::for_root_field(root, field) {
                        Some(scope) if scope.is_empty() || scopes.contains(scope) => None,
                        Some(scope) => {
                            Some(format!("this API key has no `{scope}` scope for `{field}`"))
                        }
                        None => Some(format!("`{field}` is not for API keys")),
                    }
                }
                Selection::InlineFragment(inline) => walk(
                    document,
                    &inline.node.selection_set.node,
                    root,
                    scopes,
                    depth + 1,
                ),
                Selection::FragmentSpread(spread) => document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .and_then(|f| {
                        walk(
                            document,
                            &f.node.selection_set.node,
                            root,
                            scopes,
                            depth + 1,
                        )
                    }),
            };
            if refused.is_some() {
                return refused;
            }
        }
        None
    }
    let operations: Vec<_> = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => vec![op],
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).into_iter().collect(),
        (DocumentOperations::Multiple(ops), None) => ops.values().collect(),
    };
    operations.into_iter().find_map(|op| {
        let root = match op.node.ty {
            OperationType::Query => "Query",
            OperationType::Mutation => "Mutation",
            OperationType::Subscription => "Subscription",
        };
        walk(document, &op.node.selection_set.node, root, scopes, 0)
    })
}

/// Whether the operation that would run only reads.
pub fn is_query(document: &ExecutableDocument, name: Option<&str>) -> bool {
    operation_type(document, name).is_none_or(|ty| ty == OperationType::Query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn parsed(text: &str) -> ExecutableDocument {
        parse_query(text).expect("parses")
    }

    #[test]
    fn an_api_key_runs_only_the_root_fields_its_scopes_cover() {
        use crate::domain::scopes::Scopes;
        let assets = Scopes::parse(&["assets:read"]).unwrap();
        let ok = parsed("{ assets(first: 1) { totalCount } node(id: \"x\") { id } }");
        assert_eq!(refused_for_key(&ok, None, assets), None);
        let people =
            parsed("query { ...F } fragment F on Query { beneficiaries(first: 1) { totalCount } }");
        assert!(
            refused_for_key(&people, None, assets)
                .unwrap()
                .contains("beneficiaries:read")
        );
        let mine = parsed("{ me { id } }");
        assert!(
            refused_for_key(
                &mine,
                None,
                Scopes::parse(crate::domain::scopes::ALL).unwrap()
            )
            .is_some()
        );
        let write = parsed("mutation { deleteAsset(id: \"x\") }");
        assert!(refused_for_key(&write, None, assets).is_some());
    }

    #[test]
    fn a_query_runs_over_get_and_post() {
        let document = parsed("query Assets { assets(first: 1) { totalCount } }");
        assert!(refused_over_get(true, &document, None).is_none());
        assert!(refused_over_get(false, &document, None).is_none());
    }

    #[tokio::test]
    async fn a_mutation_over_get_is_refused_with_405_and_allow() {
        let document = parsed("mutation { logout }");
        let refused = refused_over_get(true, &document, None).expect("refused over GET");
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            refused.headers().get(header::ALLOW),
            Some(&HeaderValue::from_static("GET, POST"))
        );
        assert_eq!(
            refused.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
        let body = axum::body::to_bytes(refused.into_body(), 1024)
            .await
            .expect("a short body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let error = &body["errors"][0];
        assert_eq!(
            error["message"],
            "mutations and subscriptions must be sent with POST"
        );
        assert_eq!(error["extensions"]["code"], code::BAD_USER_INPUT);
        assert!(refused_over_get(false, &document, None).is_none());
    }

    #[test]
    fn the_get_rule_looks_at_the_operation_that_would_run() {
        let document = parsed("query Read { __typename } mutation Write { logout }");
        assert!(refused_over_get(true, &document, Some("Read")).is_none());
        assert!(refused_over_get(true, &document, Some("Write")).is_some());
        // No name: a document that could change data is refused.
        assert!(refused_over_get(true, &document, None).is_some());
        // A name that matches nothing is execution's to refuse.
        assert!(refused_over_get(true, &document, Some("Missing")).is_none());
    }

    #[test]
    fn a_lone_named_operation_names_the_operation() {
        let document = parsed("query Assets { __typename }");
        assert_eq!(operation_name(&document, None), Some("Assets"));
        assert_eq!(operation_name(&document, Some("Other")), Some("Other"));
        assert_eq!(operation_name(&parsed("{ __typename }"), None), None);
    }
}
