//! Trusted documents at the door of every operation, over POST, GET and
//! both websocket protocols. With `documents.trusted_only` on, an operation
//! runs only when its document is trusted: named by
//! `extensions.persistedQuery.sha256Hash` without text, or sent as text
//! whose SHA-256 is in the set. Anything else, registering a text by the
//! automatic persisted-query protocol included, is
//! `PERSISTED_QUERY_REQUIRED`, except documents that ask only for
//! `__typename` (health probes) and, when `allow_introspection` is on, only
//! for `__schema`/`__type`. Either way a trusted document named by its hash
//! is filled in from the in-process set, without Redis.

use async_graphql::Request;
use async_graphql::parser::types::{DocumentOperations, OperationDefinition, Selection};

use crate::config::DocumentSettings;
use crate::documents::parsed::Documents;
use crate::documents::persisted::{Refusal, requested_hash};
use crate::documents::trusted::{Digest32, Trusted, digest};
use crate::error::code;

/// What to do with an admitted operation.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// The text is in place: check it and run it.
    Run,
    /// Trusted documents are not required and this is not one named by its
    /// hash: the automatic persisted-query protocol has its say (HTTP).
    Persisted,
}

const UNTRUSTED: &str = "this server runs only trusted documents (persisted queries) and this document is not one of them: send the SHA-256 of a document from the server's manifest in extensions.persistedQuery.sha256Hash, or add the document to the manifest";
const REGISTRATION: &str = "this server runs only trusted documents: registering a new document (automatic persisted queries) is turned off; add the document to the server's manifest";
const INTROSPECTION: &str = "this server runs only trusted documents and introspection outside them is turned off; use the schema published with the server (alawael schema)";

/// Admits `request` under `settings` or refuses it; fills in the text of
/// a document of the `trusted` set named by its hash.
pub fn admit(
    settings: &DocumentSettings,
    trusted: &Trusted,
    documents: &Documents,
    request: &mut Request,
) -> Result<Gate, Refusal> {
    if !settings.trusted_only {
        // A malformed extension is the persisted-query protocol's to answer.
        if let Ok(Some(hash)) = requested_hash(request)
            && request.query.is_empty()
            && let Some(body) = lookup(trusted, &hash)
        {
            request.query = body.to_string();
            return Ok(Gate::Run);
        }
        return Ok(Gate::Persisted);
    }
    let hash = requested_hash(request)?;
    if request.query.is_empty() {
        let Some(hash) = hash else {
            return refuse("text", code::PERSISTED_QUERY_REQUIRED, UNTRUSTED);
        };
        return match lookup(trusted, &hash) {
            Some(body) => {
                request.query = body.to_string();
                Ok(Gate::Run)
            }
            None => refuse(
                "hash",
                code::PERSISTED_QUERY_NOT_FOUND,
                &format!(
                    "PersistedQueryNotFound: {hash} is not one of this server's trusted documents; deploy the manifest that holds it"
                ),
            ),
        };
    }
    let text_digest = digest(&request.query);
    if let Some(hash) = &hash
        && decode(hash) != Some(text_digest)
    {
        return Err((
            code::BAD_USER_INPUT,
            "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query".into(),
        ));
    }
    if trusted.contains(&text_digest) {
        return Ok(Gate::Run);
    }
    match probe(documents, &request.query) {
        Probe::Typename => return Ok(Gate::Run),
        Probe::Introspection if settings.allow_introspection => return Ok(Gate::Run),
        Probe::Introspection => {
            return refuse(
                "introspection",
                code::PERSISTED_QUERY_REQUIRED,
                INTROSPECTION,
            );
        }
        Probe::Other => {}
    }
    if hash.is_some() {
        refuse("registration", code::PERSISTED_QUERY_REQUIRED, REGISTRATION)
    } else {
        refuse("text", code::PERSISTED_QUERY_REQUIRED, UNTRUSTED)
    }
}

fn refuse(reason: &'static str, code: &'static str, message: &str) -> Result<Gate, Refusal> {
    metrics::counter!("alawael_trusted_documents_refused_total", "reason" => reason).increment(1);
    Err((code, message.to_string()))
}

fn decode(hash: &str) -> Option<Digest32> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hash, &mut digest).ok()?;
    Some(digest)
}

fn lookup(trusted: &Trusted, hash: &str) -> Option<std::sync::Arc<str>> {
    trusted.get(&decode(hash)?)
}

/// What an untrusted document asks for at its root.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// Only `__typename`, in every operation.
    Typename,
    /// Only meta fields, `__schema` or `__type` among them.
    Introspection,
    /// Anything else (fragments at the root included).
    Other,
}

fn probe(documents: &Documents, text: &str) -> Probe {
    if !text.contains("__") {
        return Probe::Other;
    }
    let Ok(document) = documents.check(text) else {
        return Probe::Other;
    };
    let operations: Vec<&OperationDefinition> = match &document.operations {
        DocumentOperations::Single(op) => vec![&op.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node).collect(),
    };
    let mut verdict = Probe::Typename;
    for op in operations {
        for item in &op.selection_set.node.items {
            let Selection::Field(field) = &item.node else {
                return Probe::Other;
            };
            match field.node.name.node.as_str() {
                "__typename" => {}
                "__schema" | "__type" => verdict = Probe::Introspection,
                _ => return Probe::Other,
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GraphqlSettings;

    #[test]
    fn only_meta_fields_at_the_root_are_probes() {
        let documents = Documents::new(GraphqlSettings::default());
        let cases = [
            ("{ __typename }", Probe::Typename),
            (
                "query A { __typename } query B { __typename }",
                Probe::Typename,
            ),
            ("{ __schema { queryType { name } } }", Probe::Introspection),
            (
                "{ __typename __type(name: \"User\") { name } }",
                Probe::Introspection,
            ),
            ("{ __typename me { id } }", Probe::Other),
            ("query A { __typename } query B { me { id } }", Probe::Other),
            ("{ ... on Query { me { id } } __typename }", Probe::Other),
            ("{ ...F } fragment F on Query { __typename }", Probe::Other),
            ("{ me { __typename } }", Probe::Other),
            ("{ __typename", Probe::Other),
        ];
        for (text, expected) in cases {
            assert_eq!(probe(&documents, text), expected, "{text}");
        }
    }
}
