//! Documents already checked: the parsed document and the limits walker's
//! verdict, kept by the SHA-256 of the text, so a document sent again (a
//! persisted query, a dashboard's polling query) is parsed and walked once,
//! not per request, and, once the schema has validated it, not validated
//! in full again either. Bounded: past `CAPACITY` entries the cache starts
//! over.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use sha2::{Digest, Sha256};

use crate::config::GraphqlSettings;
use crate::documents::limits::{self, Refusal};

const CAPACITY: usize = 2_000;

/// A checked document is shared: a cached answer needs only to read it;
/// execution takes its own copy.
pub type Checked = Arc<Known>;

/// A parsed document within the limits, and whether the schema's full
/// validation has passed it.
#[derive(Debug)]
pub struct Known {
    document: ExecutableDocument,
    /// No operation declares variables: the validation rules then see the
    /// same input on every send (with variables, the values are checked
    /// against the arguments' types, so each send is validated).
    constant: bool,
    validated: AtomicBool,
}

impl Known {
    fn new(document: ExecutableDocument) -> Self {
        let constant = document
            .operations
            .iter()
            .all(|(_, operation)| operation.node.variable_definitions.is_empty());
        Self {
            document,
            constant,
            validated: AtomicBool::new(false),
        }
    }

    /// Whether the schema's full validation passed this document before,
    /// so its other sends may skip it (`build_schema_for_validated`).
    pub fn validated(&self) -> bool {
        self.validated.load(Ordering::Relaxed)
    }

    /// The schema's full validation passed this send (it answered without
    /// errors); remembered when the document has no variables.
    pub fn passed_validation(&self) {
        if self.constant {
            self.validated.store(true, Ordering::Relaxed);
        }
    }

    /// A copy for execution, which consumes its document.
    pub fn to_document(&self) -> ExecutableDocument {
        self.document.clone()
    }
}

impl Deref for Known {
    type Target = ExecutableDocument;

    fn deref(&self) -> &ExecutableDocument {
        &self.document
    }
}

type Verdict = Result<Checked, Refusal>;

pub struct Documents {
    limits: GraphqlSettings,
    checked: Mutex<HashMap<[u8; 32], Verdict>>,
}

impl Documents {
    pub fn new(limits: GraphqlSettings) -> Self {
        Self {
            limits,
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// `limits::check` of `query`, from the cache when it was checked before.
    pub fn check(&self, query: &str) -> Verdict {
        // Texts over the length limit are refused without hashing them.
        if query.len() > self.limits.max_query_length {
            return limits::check(query, &self.limits).map(|d| Arc::new(Known::new(d)));
        }
        let key: [u8; 32] = Sha256::digest(query.as_bytes()).into();
        let cached = self.checked.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some(verdict) = cached {
            metrics::counter!("alawael_documents_total", "result" => "cached").increment(1);
            return verdict;
        }
        let verdict = limits::check(query, &self.limits).map(|d| Arc::new(Known::new(d)));
        metrics::counter!("alawael_documents_total", "result" => "checked").increment(1);
        if let Ok(mut checked) = self.checked.lock() {
            if checked.len() >= CAPACITY {
                checked.clear();
            }
            checked.insert(key, verdict.clone());
        }
        verdict
    }

    /// How many documents are held.
    pub fn len(&self) -> usize {
        self.checked.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_checked_once_and_refusals_are_kept_too() {
        let documents = Documents::new(GraphqlSettings::default());
        let first = documents.check("{ me { id } }");
        assert!(first.is_ok());
        assert_eq!(documents.len(), 1);
        assert!(documents.check("{ me { id } }").is_ok());
        assert_eq!(documents.len(), 1);
        let deep = format!("{{ {}{} }}", "a { ".repeat(40), "}".repeat(40));
        let refused = documents.check(&deep).err();
        assert!(refused.is_some());
        assert_eq!(documents.check(&deep).err(), refused);
        assert_eq!(documents.len(), 2);
    }

    #[test]
    fn only_documents_without_variables_keep_their_validation() {
        let documents = Documents::new(GraphqlSettings::default());
        let constant = documents.check("{ me { id } }").expect("checked");
        assert!(!constant.validated());
        constant.passed_validation();
        assert!(
            documents
                .check("{ me { id } }")
                .expect("cached")
                .validated()
        );
        let variable = documents
            .check("query($id: ID!) { asset(id: $id) { id } }")
            .expect("checked");
        variable.passed_validation();
        assert!(!variable.validated());
    }
}
