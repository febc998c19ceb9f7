//! What an operation costs a caller's quota: one unit per field it would
//! resolve, each list multiplying what is under it by the rows it asks for
//! (`first`/`last`, from the text or the variables; the default page size
//! when a list names neither). The same shape as the schema's complexity
//! (`connection_cost`), worked out before execution from the document.

use async_graphql::Variables;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Name, Value};

use crate::config::GraphqlSettings;

/// The most any operation is charged (and the budget of the walk).
const CEILING: u64 = 1_000_000;

/// The cost of the operation `name` (or the only one) of `document`.
pub fn estimate(
    document: &ExecutableDocument,
    name: Option<&str>,
    variables: &Variables,
    settings: &GraphqlSettings,
) -> u64 {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) => ops.values().next(),
    };
    let Some(operation) = operation else {
        return 1;
    };
    let walk = Walk {
        document,
        variables,
        settings,
    };
    walk.set(&operation.node.selection_set.node, 0)
        .clamp(1, CEILING)
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    settings: &'a GraphqlSettings,
}

impl Walk<'_> {
    fn set(&self, set: &SelectionSet, depth: usize) -> u64 {
        if depth > 64 {
            return CEILING;
        }
        let mut total: u64 = 0;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let children = &field.selection_set.node;
                    if children.items.is_empty() {
                        1
                    } else {
                        let rows = self.rows(field, children);
                        1u64.saturating_add(rows.saturating_mul(self.set(children, depth + 1)))
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.set(&inline.node.selection_set.node, depth + 1)
                }
                Selection::FragmentSpread(spread) => self
                    .document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map_or(0, |f| self.set(&f.node.selection_set.node, depth + 1)),
            };
            total = total.saturating_add(cost).min(CEILING);
        }
        total
    }

    /// The rows a field asks for: `first` or `last` when given, the default
    /// page size for a list (a selection with `edges` or `nodes`), else one.
    fn rows(&self, field: &async_graphql::parser::types::Field, children: &SelectionSet) -> u64 {
        let max = self.settings.max_page_size as u64;
        for name in ["first", "last"] {
            let Some((_, value)) = field
                .arguments
                .iter()
                .find(|(n, _)| n.node.as_str() == name)
            else {
                continue;
            };
            let value = value.node.clone().into_const_with(|variable: Name| {
                Ok::<_, ()>(
                    self.variables
                        .get(&variable)
                        .cloned()
                        .unwrap_or(Value::Null),
                )
            });
            let value = match value {
                Ok(Value::Number(n)) => n.as_u64(),
                _ => None,
            };
            if let Some(n) = value {
                return n.clamp(1, max.max(1));
            }
        }
        let listed = children.items.iter().any(|item| {
            matches!(&item.node, Selection::Field(f)
                if matches!(f.node.name.node.as_str(), "edges" | "nodes"))
        });
        if listed {
            self.settings.default_page_size as u64
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn cost(text: &str, variables: serde_json::Value) -> u64 {
        let mut settings = crate::config::load_from(
            std::path::Path::new("config"),
            crate::config::Environment::Test,
            &Default::default(),
        )
        .expect("the test settings load")
        .graphql;
        settings.default_page_size = 20;
        settings.max_page_size = 100;
        estimate(
            &parse_query(text).unwrap(),
            None,
            &Variables::from_json(variables),
            &settings,
        )
    }

    #[test]
    fn lists_multiply_what_is_under_them_by_the_rows_they_ask() {
        assert_eq!(cost("{ me { id name } }", serde_json::json!({})), 3);
        // 1 (assets) + 10 × (1 (nodes) + 1 × (1 + 1)) = 31.
        assert_eq!(
            cost(
                "{ assets(first: 10) { nodes { id name } } }",
                serde_json::json!({})
            ),
            31
        );
        assert_eq!(
            cost(
                "query($n: Int) { assets(first: $n) { nodes { id name } } }",
                serde_json::json!({ "n": 100 })
            ),
            301
        );
        // No first: the default page size.
        assert_eq!(
            cost("{ assets { nodes { id } } }", serde_json::json!({})),
            41
        );
        // Over the cap: charged as the cap.
        assert_eq!(
            cost(
                "{ assets(first: 5000) { nodes { id } } }",
                serde_json::json!({})
            ),
            201
        );
        // Nested lists multiply.
        let deep = "{ disabilityPrograms(first: 10) { nodes { enrollments(first: 10) { nodes { id } } } } }";
        assert_eq!(
            cost(deep, serde_json::json!({})),
            1 + 10 * (1 + (1 + 10 * (1 + 1)))
        );
    }
}
