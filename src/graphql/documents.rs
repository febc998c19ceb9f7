//! Documents already checked: the parsed document and the limits walker's
//! verdict, kept by the SHA-256 of the text, so a document sent again (a
//! persisted query, a dashboard's polling query) is parsed and walked once,
//! not per request. Bounded: past `CAPACITY` entries the cache starts over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use sha2::{Digest, Sha256};

use super::limits::{self, Refusal};
use crate::config::GraphqlSettings;

const CAPACITY: usize = 2_000;

/// A checked document is shared: a cached answer needs only to read it;
/// execution takes its own copy.
pub type Checked = Arc<ExecutableDocument>;

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
            return limits::check(query, &self.limits).map(Arc::new);
        }
        let key: [u8; 32] = Sha256::digest(query.as_bytes()).into();
        let cached = self.checked.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some(verdict) = cached {
            metrics::counter!("alawael_documents_total", "result" => "cached").increment(1);
            return verdict;
        }
        let verdict = limits::check(query, &self.limits).map(Arc::new);
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
}
