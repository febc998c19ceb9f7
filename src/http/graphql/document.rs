//! The operation a checked document would run: its name and its type.

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

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
    fn a_lone_named_operation_names_the_operation() {
        let document = parsed("query Assets { __typename }");
        assert_eq!(operation_name(&document, None), Some("Assets"));
        assert_eq!(operation_name(&document, Some("Other")), Some("Other"));
        assert_eq!(operation_name(&parsed("{ __typename }"), None), None);
    }
}
