//! Reads trusted-document manifests in the two formats client tooling
//! emits: Apollo's persisted-query manifest
//! (`{"format": "apollo-persisted-query-manifest", "version": 1,
//! "operations": [{"id", "name", "type", "body"}]}`) and GraphQL Code
//! Generator's `persisted-documents.json` (`{"<hash>": "<body>"}`, the hash
//! bare or as `sha256:<hex>`). Every id must be the SHA-256 of its body and
//! every body must parse; the operation's name and type come from the body
//! when the format does not give them.

use std::collections::HashSet;

use async_graphql::parser::parse_query;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::documents::trusted::Operation;

const APOLLO_FORMAT: &str = "apollo-persisted-query-manifest";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("{0}")]
    Format(String),
    /// One operation does not hold; the whole manifest is refused.
    #[error("operation {operation}: {problem}")]
    Operation { operation: String, problem: String },
}

#[derive(Deserialize)]
struct ApolloManifest {
    format: String,
    version: u32,
    operations: Vec<ApolloOperation>,
}

#[derive(Deserialize)]
struct ApolloOperation {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    body: String,
}

/// The operations of a manifest in either format, each verified, without
/// repeats.
pub fn parse(text: &str) -> Result<Vec<Operation>, ManifestError> {
    let value: Value = serde_json::from_str(text)?;
    let Value::Object(fields) = &value else {
        return Err(ManifestError::Format(
            "a manifest is a JSON object: Apollo's persisted-query manifest or a map of hash to document".into(),
        ));
    };
    let operations = if fields.contains_key("format") || fields.contains_key("operations") {
        let manifest: ApolloManifest = serde_json::from_value(value)?;
        if manifest.format != APOLLO_FORMAT {
            return Err(ManifestError::Format(format!(
                "unknown manifest format {:?}; expected {APOLLO_FORMAT:?}",
                manifest.format
            )));
        }
        if manifest.version != 1 {
            return Err(ManifestError::Format(format!(
                "Apollo manifest version {} is not supported (only 1)",
                manifest.version
            )));
        }
        manifest
            .operations
            .into_iter()
            .map(|op| verify(&op.id, op.name, op.kind, op.body))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let mut operations = Vec::with_capacity(fields.len());
        for (id, body) in fields {
            let Value::String(body) = body else {
                return Err(ManifestError::Format(format!(
                    "the document under {id:?} is not a string; a persisted-documents map holds \"<hash>\": \"<document>\""
                )));
            };
            operations.push(verify(id, None, None, body.clone())?);
        }
        operations
    };
    let mut seen = HashSet::new();
    Ok(operations
        .into_iter()
        .filter(|op| seen.insert(op.id.clone()))
        .collect())
}

/// A hash as the tools write it (`<hex>` or `sha256:<hex>`), as lowercase
/// hex; `None` when it is not a SHA-256 digest.
pub fn normalise_id(id: &str) -> Option<String> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn verify(
    id: &str,
    name: Option<String>,
    kind: Option<String>,
    body: String,
) -> Result<Operation, ManifestError> {
    let parsed = parse_query(&body);
    let (derived_name, derived_kind) = match &parsed {
        Ok(document) => describe(&document.operations),
        Err(_) => (None, None),
    };
    let name = name.filter(|n| !n.is_empty()).or(derived_name);
    let label = match &name {
        Some(name) => format!("{name} (id {id})"),
        None => format!("with id {id}"),
    };
    let fail = |problem: String| ManifestError::Operation {
        operation: label.clone(),
        problem,
    };
    let Some(hex) = normalise_id(id) else {
        return Err(fail("the id is not a SHA-256 hex digest".into()));
    };
    let actual = hex::encode(Sha256::digest(body.as_bytes()));
    if actual != hex {
        return Err(fail(format!(
            "the id is not the SHA-256 of the body (that is {actual}); regenerate the manifest"
        )));
    }
    if let Err(error) = parsed {
        return Err(fail(format!("the body does not parse: {error}")));
    }
    let kind = match kind {
        Some(kind) if ["query", "mutation", "subscription"].contains(&kind.as_str()) => kind,
        Some(kind) => {
            return Err(fail(format!(
                "type {kind:?} is not query, mutation or subscription"
            )));
        }
        None => derived_kind.unwrap_or_else(|| "query".into()),
    };
    Ok(Operation {
        id: hex,
        name,
        kind,
        body,
    })
}

fn type_name(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

/// The name and type of a document's operations: those of its operation,
/// or, for several, their names joined and their common type ("mixed" when
/// they differ).
fn describe(operations: &DocumentOperations) -> (Option<String>, Option<String>) {
    match operations {
        DocumentOperations::Single(op) => (None, Some(type_name(op.node.ty).to_string())),
        DocumentOperations::Multiple(ops) => {
            let mut names: Vec<&str> = ops.keys().map(|n| n.as_str()).collect();
            names.sort_unstable();
            let types: HashSet<&str> = ops.values().map(|op| type_name(op.node.ty)).collect();
            let kind = match types.len() {
                1 => types.into_iter().next().map(str::to_string),
                _ => Some("mixed".to_string()),
            };
            (Some(names.join(",")), kind)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sha(body: &str) -> String {
        hex::encode(Sha256::digest(body.as_bytes()))
    }

    const ME: &str = "query Me { me { id } }";
    const RENAME: &str = "mutation Rename($n: String!) { updateMe(name: $n) { id } }";

    #[test]
    fn apollo_manifests_give_id_name_and_type() {
        let text = json!({
            "format": APOLLO_FORMAT,
            "version": 1,
            "operations": [
                { "id": sha(ME), "name": "Me", "type": "query", "body": ME },
                { "id": sha(RENAME), "name": "Rename", "type": "mutation", "body": RENAME },
            ]
        })
        .to_string();
        let operations = parse(&text).expect("parses");
        assert_eq!(operations.len(), 2);
        assert_eq!(operations[0].id, sha(ME));
        assert_eq!(operations[0].name.as_deref(), Some("Me"));
        assert_eq!(operations[1].kind, "mutation");
        assert_eq!(operations[1].body, RENAME);
    }

    #[test]
    fn codegen_maps_take_bare_or_prefixed_hashes_and_derive_name_and_type() {
        let anonymous = "subscription { assetUpdated { kind } }";
        let text = json!({
            sha(RENAME): RENAME,
            format!("sha256:{}", sha(anonymous).to_uppercase()): anonymous,
        })
        .to_string();
        let mut operations = parse(&text).expect("parses");
        operations.sort_by(|a, b| a.kind.cmp(&b.kind));
        assert_eq!(operations[0].kind, "mutation");
        assert_eq!(operations[0].name.as_deref(), Some("Rename"));
        assert_eq!(operations[1].kind, "subscription");
        assert_eq!(operations[1].name, None);
        assert_eq!(operations[1].id, sha(anonymous), "lowercase, unprefixed");
    }

    #[test]
    fn a_wrong_hash_names_the_operation() {
        let text = json!({
            "format": APOLLO_FORMAT,
            "version": 1,
            "operations": [{ "id": sha("{ x }"), "name": "Me", "type": "query", "body": ME }]
        })
        .to_string();
        let error = parse(&text).expect_err("refused").to_string();
        assert!(error.contains("operation Me"), "{error}");
        assert!(error.contains("not the SHA-256 of the body"), "{error}");
        let codegen = json!({ sha("{ x }"): RENAME }).to_string();
        let error = parse(&codegen).expect_err("refused").to_string();
        assert!(error.contains("operation Rename"), "{error}");
    }

    #[test]
    fn other_shapes_and_bodies_are_refused() {
        let cases = [
            ("[]".to_string(), "JSON object"),
            ("{".to_string(), "not JSON"),
            (
                json!({ "format": "relay", "version": 1, "operations": [] }).to_string(),
                "unknown manifest format",
            ),
            (
                json!({ "format": APOLLO_FORMAT, "version": 2, "operations": [] }).to_string(),
                "version 2",
            ),
            (json!({ sha(ME): 3 }).to_string(), "is not a string"),
            (json!({ "abc": ME }).to_string(), "not a SHA-256 hex digest"),
            (json!({ sha("{ x"): "{ x" }).to_string(), "does not parse"),
            (
                json!({ "format": APOLLO_FORMAT, "version": 1, "operations": [
                    { "id": sha(ME), "name": "Me", "type": "read", "body": ME }
                ] })
                .to_string(),
                "type \"read\"",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(&text).expect_err(&text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn repeated_operations_count_once() {
        let text = json!({
            "format": APOLLO_FORMAT,
            "version": 1,
            "operations": [
                { "id": sha(ME), "name": "Me", "type": "query", "body": ME },
                { "id": sha(ME), "name": "Me", "type": "query", "body": ME },
            ]
        })
        .to_string();
        assert_eq!(parse(&text).expect("parses").len(), 1);
    }
}
