//! Checks every document against the configured limits before any resolver
//! runs: length, nesting (also through named, inline and recursive fragments),
//! aliases, root fields and directives. async-graphql sets none of these by
//! default, and its own directive and depth checks do not follow fragment
//! spreads safely, so we walk the expanded document ourselves, with a budget.

use std::collections::HashSet;

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::parser::{Positioned, parse_query};

use crate::config::{GraphqlSettings, INTROSPECTION_DEPTH};
use crate::error::code;

/// A refused document: the code and a message for the client developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Parses `query` and checks it; the parsed document is reused for execution.
pub fn check(query: &str, limits: &GraphqlSettings) -> Result<ExecutableDocument, Refusal> {
    if query.len() > limits.max_query_length {
        return Err(refuse(
            code::QUERY_TOO_LONG,
            format!(
                "the query has {} bytes; the limit is {}",
                query.len(),
                limits.max_query_length
            ),
        ));
    }
    // The parser recurses once per nesting level: refuse absurd nesting before it runs.
    if brace_depth(query) > limits.max_depth * 2 + 8 {
        return Err(refuse(
            code::QUERY_TOO_DEEP,
            format!("the query nests deeper than {} levels", limits.max_depth),
        ));
    }
    let document = parse_query(query)
        .map_err(|e| refuse(code::PARSE_FAILED, format!("the query does not parse: {e}")))?;
    let mut walk = Walk {
        document: &document,
        limits,
        aliases: 0,
        directives: 0,
        visited: 0,
        fields: 0,
        introspecting: false,
        stack: Vec::new(),
    };
    for (_, operation) in document.operations.iter() {
        walk.operation(&operation.node)?;
    }
    Ok(document)
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    limits: &'a GraphqlSettings,
    aliases: usize,
    directives: usize,
    /// Selections visited, bounding the work a document can cause here.
    visited: usize,
    /// Field selections seen, with fragments expanded.
    fields: usize,
    /// Inside `__schema` / `__type`: GraphiQL's introspection query nests
    /// `ofType` eight deep, so it gets extra depth and its fields are not counted.
    introspecting: bool,
    /// Fragment names being expanded, to stop cycles.
    stack: Vec<&'a str>,
}

const MAX_VISITS: usize = 100_000;

impl<'a> Walk<'a> {
    fn operation(&mut self, operation: &'a OperationDefinition) -> Result<(), Refusal> {
        self.count_directives(operation.directives.len())?;
        let mut root = HashSet::new();
        self.root_fields(&operation.selection_set, &mut root)?;
        if root.len() > self.limits.max_root_fields {
            return Err(refuse(
                code::TOO_MANY_ROOT_FIELDS,
                format!(
                    "the operation selects {} root fields; the limit is {}",
                    root.len(),
                    self.limits.max_root_fields
                ),
            ));
        }
        self.selection_set(&operation.selection_set, 1)
    }

    /// Distinct response keys at the root, through fragments.
    fn root_fields(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        keys: &mut HashSet<&'a str>,
    ) -> Result<(), Refusal> {
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    let key = field.node.alias.as_ref().unwrap_or(&field.node.name);
                    keys.insert(key.node.as_str());
                }
                Selection::InlineFragment(inline) => {
                    self.root_fields(&inline.node.selection_set, keys)?
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if self.stack.contains(&name) {
                        return Err(cycle(name));
                    }
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.stack.push(name);
                        self.root_fields(&fragment.node.selection_set, keys)?;
                        self.stack.pop();
                    }
                }
            }
        }
        Ok(())
    }

    fn selection_set(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        depth: usize,
    ) -> Result<(), Refusal> {
        for selection in &set.node.items {
            self.visited += 1;
            if self.visited > MAX_VISITS {
                return Err(refuse(
                    code::QUERY_TOO_COMPLEX,
                    "the query expands to too many selections",
                ));
            }
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let introspection = matches!(field.name.node.as_str(), "__schema" | "__type");
                    if !self.introspecting {
                        self.fields += 1;
                    }
                    if self.fields > self.limits.max_fields {
                        return Err(refuse(
                            code::QUERY_TOO_COMPLEX,
                            format!(
                                "the query selects more than {} fields",
                                self.limits.max_fields
                            ),
                        ));
                    }
                    let max_depth = if self.introspecting {
                        self.limits.max_depth + INTROSPECTION_DEPTH
                    } else {
                        self.limits.max_depth
                    };
                    if depth > max_depth {
                        return Err(refuse(
                            code::QUERY_TOO_DEEP,
                            format!(
                                "the query nests deeper than {} levels",
                                self.limits.max_depth
                            ),
                        ));
                    }
                    if !self.limits.introspection && introspection {
                        return Err(refuse(
                            code::VALIDATION_FAILED,
                            "introspection is disabled on this server",
                        ));
                    }
                    if field.alias.is_some() {
                        self.aliases += 1;
                        if self.aliases > self.limits.max_aliases {
                            return Err(refuse(
                                code::TOO_MANY_ALIASES,
                                format!(
                                    "the query uses more than {} aliases",
                                    self.limits.max_aliases
                                ),
                            ));
                        }
                    }
                    self.count_directives(field.directives.len())?;
                    if !field.selection_set.node.items.is_empty() {
                        let outer = self.introspecting;
                        self.introspecting = outer || introspection;
                        self.selection_set(&field.selection_set, depth + 1)?;
                        self.introspecting = outer;
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.count_directives(inline.node.directives.len())?;
                    self.selection_set(&inline.node.selection_set, depth)?;
                }
                Selection::FragmentSpread(spread) => {
                    self.count_directives(spread.node.directives.len())?;
                    let name = spread.node.fragment_name.node.as_str();
                    if self.stack.contains(&name) {
                        return Err(cycle(name));
                    }
                    let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    else {
                        // Unknown fragments are left to validation, which names them.
                        continue;
                    };
                    self.count_directives(fragment.node.directives.len())?;
                    self.stack.push(name);
                    self.selection_set(&fragment.node.selection_set, depth)?;
                    self.stack.pop();
                }
            }
        }
        Ok(())
    }

    fn count_directives(&mut self, n: usize) -> Result<(), Refusal> {
        self.directives += n;
        if self.directives > self.limits.max_directives {
            return Err(refuse(
                code::TOO_MANY_DIRECTIVES,
                format!(
                    "the query uses more than {} directives",
                    self.limits.max_directives
                ),
            ));
        }
        Ok(())
    }
}

fn cycle(name: &str) -> Refusal {
    refuse(
        code::VALIDATION_FAILED,
        format!("fragment {name:?} spreads itself, directly or through other fragments"),
    )
}

/// The deepest `{` nesting outside strings and comments.
fn brace_depth(query: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut in_comment, mut escaped) =
        (0usize, 0usize, false, false, false);
    for c in query.chars() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '#' => in_comment = true,
            '"' => in_string = true,
            '{' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GraphqlSettings {
        GraphqlSettings {
            max_depth: 4,
            max_aliases: 2,
            max_root_fields: 2,
            max_directives: 2,
            ..Default::default()
        }
    }

    #[test]
    fn depth_counts_through_named_and_inline_fragments() {
        let ok = "{ a { b { c { d } } } }";
        assert!(check(ok, &limits()).is_ok());
        let deep = "query { a { ...F } } fragment F on T { b { ... on T { c { d { e } } } } }";
        assert_eq!(
            check(deep, &limits()).map(|_| ()).unwrap_err().code,
            code::QUERY_TOO_DEEP
        );
    }

    #[test]
    fn fragments_that_spread_each_other_are_a_validation_error() {
        let q = "{ a { ...A } } fragment A on T { ...B } fragment B on T { ...A }";
        assert_eq!(
            check(q, &limits()).map(|_| ()).unwrap_err().code,
            code::VALIDATION_FAILED
        );
    }

    #[test]
    fn aliases_root_fields_and_directives_are_counted() {
        assert_eq!(
            check("{ x: a y: a z: a }", &limits())
                .map(|_| ())
                .unwrap_err()
                .code,
            code::TOO_MANY_ROOT_FIELDS
        );
        assert_eq!(
            check("{ a { x: b y: b z: b } }", &limits())
                .map(|_| ())
                .unwrap_err()
                .code,
            code::TOO_MANY_ALIASES
        );
        let d = "{ a @skip(if: false) @skip(if: false) @skip(if: false) }";
        assert_eq!(
            check(d, &limits()).map(|_| ()).unwrap_err().code,
            code::TOO_MANY_DIRECTIVES
        );
        assert_eq!(
            check("{ a ", &limits()).map(|_| ()).unwrap_err().code,
            code::PARSE_FAILED
        );
    }
}
