//! Rows written as JSON text while they resolve. Under a request carrying
//! [`Splice`] (the HTTP endpoint, which writes the answer with [`write`]),
//! an object resolved in place comes back as its JSON text in a
//! `Value::Binary` instead of a map: no map, no hashed keys, no copied
//! strings and no second walk to serialise it. [`write`] copies such text
//! as it is and writes every other value exactly as `serde_json` would.
//! Requests without the marker (websockets, tests calling the schema) get
//! ordinary values; no scalar of this schema produces `Value::Binary`.
//! async-graphql merges the values of fields selected twice under one
//! response key (directly or through fragments) as maps and lists, which
//! text is not: such operations run without the marker ([`safe`]).

use async_graphql::Value;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use serde::Serialize;

/// Request data: the answer's `data` is written with [`write`].
#[derive(Clone, Copy, Debug)]
pub struct Splice;

/// Writes `value` as JSON: the same text as `serde_json::to_writer`,
/// except that `Value::Binary` holds JSON text and is copied as it is.
pub fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => serialize(number, out),
        Value::String(text) => string(text, out),
        Value::Enum(name) => string(name, out),
        Value::Binary(json) => out.extend_from_slice(json),
        Value::List(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (n, (key, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                string(key, out);
                out.push(b':');
                write(item, out);
            }
            out.push(b'}');
        }
    }
}

/// Whether the operation can run with [`Splice`]: no selection set, with
/// its fragments spread, gives a response key twice.
pub fn safe(document: &ExecutableDocument, operation: Option<&str>) -> bool {
    let operation = match (&document.operations, operation) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => match operations.get(name) {
            Some(operation) => operation,
            None => return false,
        },
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            match operations.values().next() {
                Some(operation) => operation,
                None => return false,
            }
        }
        _ => return false,
    };
    distinct(document, &operation.node.selection_set.node, 0)
}

/// Nesting beyond which an operation is not spliced (fragments that spread
/// each other never end; validation refuses them later).
const DEEPEST: usize = 64;

fn distinct(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    let mut fields = Vec::new();
    if depth > DEEPEST || !flatten(document, set, &mut fields, depth) {
        return false;
    }
    for (n, (key, _)) in fields.iter().enumerate() {
        if fields[..n].iter().any(|(other, _)| other == key) {
            return false;
        }
    }
    fields
        .iter()
        .all(|(_, inner)| distinct(document, inner, depth + 1))
}

/// The response keys of `set` and their selections, fragments spread.
fn flatten<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    fields: &mut Vec<(&'a str, &'a SelectionSet)>,
    depth: usize,
) -> bool {
    if depth > DEEPEST {
        return false;
    }
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => {
            fields.push((
                field.node.response_key().node.as_str(),
                &field.node.selection_set.node,
            ));
            true
        }
        Selection::InlineFragment(fragment) => flatten(
            document,
            &fragment.node.selection_set.node,
            fields,
            depth + 1,
        ),
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .is_some_and(|fragment| {
                flatten(
                    document,
                    &fragment.node.selection_set.node,
                    fields,
                    depth + 1,
                )
            }),
    })
}

/// About how many bytes [`write`] gives for `value`: exact for text
/// already written, a guess for the rest; buffers are sized by it so that
/// they rarely grow (and copy) while written.
pub fn size_hint(value: &Value) -> usize {
    match value {
        Value::Binary(json) => json.len(),
        Value::String(text) => text.len() + 2,
        Value::Enum(name) => name.len() + 2,
        Value::List(items) => items.iter().map(|item| size_hint(item) + 1).sum::<usize>() + 2,
        Value::Object(map) => {
            map.iter()
                .map(|(key, item)| key.len() + 4 + size_hint(item))
                .sum::<usize>()
                + 2
        }
        Value::Null | Value::Boolean(_) | Value::Number(_) => 8,
    }
}

/// `value` as JSON text (see [`write`]).
pub fn to_string(value: &Value) -> String {
    to_string_after("", value)
}

/// `prefix`, then `value` as JSON text (see [`write`]), in one buffer.
pub fn to_string_after(prefix: &str, value: &Value) -> String {
    let mut out = Vec::with_capacity(prefix.len() + size_hint(value) + 64);
    out.extend_from_slice(prefix.as_bytes());
    write(value, &mut out);
    // Every byte written is JSON text built from `str`s and spliced JSON
    // text, so it is UTF-8; the check costs a pass over the bytes.
    String::from_utf8(out).unwrap_or_else(|bad| String::from_utf8_lossy(bad.as_bytes()).into())
}

/// A JSON string, escaped as `serde_json` escapes it (see
/// `domain::text::write_json_string`).
pub fn string(text: &str, out: &mut Vec<u8>) {
    out.reserve(text.len() + 2);
    crate::domain::text::write_json_string(text, out);
}

fn serialize<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing to a `Vec` cannot fail, and strings and numbers always
    // serialise.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::indexmap::IndexMap;
    use async_graphql::{Name, Number};

    fn safe_for(query: &str) -> bool {
        let document = async_graphql::parser::parse_query(query).unwrap();
        safe(&document, None)
    }

    #[test]
    fn operations_selecting_a_key_twice_are_not_spliced() {
        assert!(safe_for("{ a { b c { d } } e: a { b } }"));
        assert!(safe_for(
            "{ a { ... on T { b } c } ...F } fragment F on Q { d }"
        ));
        assert!(!safe_for("{ a { b } a { c } }"));
        assert!(!safe_for("{ a { b c { d } ... on T { c { e } } } }"));
        assert!(!safe_for("{ x { a } ...F } fragment F on Q { x { b } }"));
        assert!(!safe_for("{ a { b b } }"));
        assert!(!safe_for("{ ...F } fragment F on Q { ...F }"));
        assert!(!safe_for("query A { a } query B { b }"));
    }

    #[test]
    fn writes_what_serde_json_writes_and_splices_binary_text() {
        let mut inner = IndexMap::new();
        inner.insert(Name::new("n"), Value::Number(Number::from(-3)));
        inner.insert(
            Name::new("f"),
            Value::Number(Number::from_f64(1.5).unwrap()),
        );
        inner.insert(
            Name::new("s"),
            Value::String("a \"q\" \\ \n ٣ \u{1}".into()),
        );
        inner.insert(Name::new("t"), Value::String("plain ٣ text \u{7f}".into()));
        inner.insert(Name::new("u"), Value::String(String::new()));
        inner.insert(Name::new("e"), Value::Enum(Name::new("ACTIVE")));
        inner.insert(Name::new("b"), Value::Boolean(false));
        inner.insert(Name::new("z"), Value::Null);
        let mut outer = IndexMap::new();
        outer.insert(Name::new("k\"ey"), Value::Object(inner));
        outer.insert(
            Name::new("l"),
            Value::List(vec![Value::Boolean(true), Value::List(vec![])]),
        );
        let value = Value::Object(outer);
        assert_eq!(to_string(&value), serde_json::to_string(&value).unwrap());

        let spliced = Value::List(vec![
            Value::Binary(br#"{"id":"x"}"#.to_vec().into()),
            Value::Null,
        ]);
        assert_eq!(to_string(&spliced), r#"[{"id":"x"},null]"#);
    }
}
