//! Cache hints: which read operations may be answered from the response
//! cache, for how long, and what their answers show. Hints are declared
//! beside the fields and types with async-graphql's `cache_control`
//! attribute (`max_age`, `private`, `no_cache`) and read here from the
//! schema's type registry once, at start.
//!
//! The rule, like Apollo's cache-control hints: a root field must declare
//! a max age itself, and every field returning an object, itself or
//! through the type it returns; a field returning a scalar or enum takes its parent's
//! unless it declares its own. `no_cache` anywhere, an interface or union,
//! or introspection makes the whole operation uncacheable. The answer's
//! max age is the smallest declared; it is private when any field or type
//! it touches is. Each model type in the selection is a dependency (a write
//! to any row of it makes the answer stale); a root field selecting one
//! row by `id` depends on that row only.

use std::collections::{BTreeSet, HashMap};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{CacheControl, OutputType, Positioned, Value, Variables};

use crate::domain::{GlobalId, NodeKind};
use crate::response_cache;

/// What the cache may do with one operation's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Seconds the answer may be kept.
    pub max_age: u32,
    /// The answer depends on who asks: kept per caller.
    pub private: bool,
    /// Generation names (see `response_cache`) of what the answer shows.
    pub dependencies: Vec<String>,
}

struct FieldHint {
    hint: CacheControl,
    returns: String,
}

enum TypeHint {
    /// A scalar or enum: takes its parent's hint.
    Leaf,
    Object {
        hint: CacheControl,
        fields: HashMap<String, FieldHint>,
    },
    /// Interfaces and unions: never cached.
    Abstract,
}

/// The hints of every type the query root reaches.
pub struct Hints {
    types: HashMap<String, TypeHint>,
    query: String,
}

#[derive(Default)]
struct Walk {
    max_age: Option<i32>,
    private: bool,
    dependencies: BTreeSet<String>,
}

impl Walk {
    fn take(&mut self, hint: &CacheControl) -> Option<()> {
        if hint.max_age < 0 {
            return None;
        }
        if hint.max_age > 0 {
            self.max_age = Some(self.max_age.map_or(hint.max_age, |m| m.min(hint.max_age)));
        }
        self.private |= !hint.public;
        Some(())
    }
}

impl Hints {
    /// Reads the hints of the types reachable from the query root `Q`.
    pub fn of<Q: OutputType>() -> Self {
        let mut registry = Registry::default();
        let query = Q::create_type_info(&mut registry);
        let query = MetaTypeName::concrete_typename(&query).to_string();
        Self::from_registry(&registry, query)
    }

    fn from_registry(registry: &Registry, query: String) -> Self {
        let types = registry
            .types
            .iter()
            .map(|(name, ty)| {
                let hint = match ty {
                    MetaType::Scalar { .. } | MetaType::Enum { .. } => TypeHint::Leaf,
                    MetaType::Object {
                        fields,
                        cache_control,
                        ..
                    } => TypeHint::Object {
                        hint: *cache_control,
                        fields: fields
                            .iter()
                            .map(|(name, field)| {
                                let returns = MetaTypeName::concrete_typename(&field.ty);
                                let hint = FieldHint {
                                    hint: field.cache_control,
                                    returns: returns.to_string(),
                                };
                                (name.clone(), hint)
                            })
                            .collect(),
                    },
                    _ => TypeHint::Abstract,
                };
                (name.clone(), hint)
            })
            .collect();
        Self { types, query }
    }

    /// The plan of the operation that would run, or `None` when its answer
    /// may not be cached.
    pub fn plan(
        &self,
        document: &ExecutableDocument,
        operation: Option<&str>,
        variables: &Variables,
    ) -> Option<Plan> {
        let definition = match (&document.operations, operation) {
            (DocumentOperations::Single(op), _) => op,
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
            _ => return None,
        };
        if definition.node.ty != OperationType::Query {
            return None;
        }
        let mut walk = Walk::default();
        let context = Context {
            hints: self,
            document,
            variables,
        };
        context.selections(
            &mut walk,
            &self.query,
            &definition.node.selection_set,
            true,
            &mut Vec::new(),
        )?;
        let max_age = u32::try_from(walk.max_age?).ok()?;
        Some(Plan {
            max_age,
            private: walk.private,
            dependencies: walk.dependencies.into_iter().collect(),
        })
    }
}

/// The model a type shows: the model type itself, or its pages and rows
/// (`AssetConnection`, `AssetEdge`).
fn model_of(type_name: &str) -> Option<&'static str> {
    let base = type_name
        .strip_suffix("Connection")
        .or_else(|| type_name.strip_suffix("Edge"))
        .unwrap_or(type_name);
    NodeKind::ALL
        .iter()
        .map(|k| k.name())
        .find(|name| *name == base)
}

struct Context<'a> {
    hints: &'a Hints,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
}

impl<'a> Context<'a> {
    fn selections(
        &self,
        walk: &mut Walk,
        type_name: &str,
        set: &'a Positioned<SelectionSet>,
        root: bool,
        fragments: &mut Vec<&'a str>,
    ) -> Option<()> {
        let TypeHint::Object { fields, .. } = self.hints.types.get(type_name)? else {
            return None;
        };
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__typename" {
                        continue;
                    }
                    let meta = fields.get(name)?;
                    let returned = self.hints.types.get(&meta.returns)?;
                    match returned {
                        TypeHint::Leaf => walk.take(&meta.hint)?,
                        TypeHint::Abstract => return None,
                        TypeHint::Object { hint, .. } => {
                            // Root fields opt in themselves; below them a
                            // type's hint is enough.
                            if meta.hint.max_age == 0 && (root || hint.max_age == 0) {
                                return None;
                            }
                            walk.take(&meta.hint)?;
                            walk.take(hint)?;
                            if let Some(model) = model_of(&meta.returns) {
                                let one = (root && model == meta.returns)
                                    .then(|| self.row(&field.node, model))
                                    .flatten();
                                let entity = response_cache::entity(model);
                                walk.dependencies.insert(one.unwrap_or(entity));
                            }
                            self.selections(
                                walk,
                                &meta.returns,
                                &field.node.selection_set,
                                false,
                                fragments,
                            )?;
                        }
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if fragments.contains(&name) {
                        return None;
                    }
                    let fragment = self.document.fragments.get(name)?;
                    fragments.push(name);
                    let on = fragment.node.type_condition.node.on.node.as_str();
                    self.selections(walk, on, &fragment.node.selection_set, root, fragments)?;
                    fragments.pop();
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(type_name, |c| c.node.on.node.as_str());
                    self.selections(walk, on, &inline.node.selection_set, root, fragments)?;
                }
            }
        }
        Some(())
    }

    /// The row a root field selects by its `id` argument, as a generation name.
    fn row(&self, field: &Field, entity: &str) -> Option<String> {
        let (_, value) = field.arguments.iter().find(|(name, _)| name.node == "id")?;
        let value = value
            .node
            .clone()
            .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
            .ok()?;
        let Value::String(text) = value else {
            return None;
        };
        let id = GlobalId::decode(&text).filter(|g| g.kind.name() == entity)?;
        Some(response_cache::row(entity, id.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::Query;
    use async_graphql::parser::parse_query;
    use bson::oid::ObjectId;

    fn plan(query: &str, variables: serde_json::Value) -> Option<Plan> {
        let hints = Hints::of::<Query>();
        let document = parse_query(query).expect("parses");
        hints.plan(&document, None, &Variables::from_json(variables))
    }

    #[test]
    fn asset_lists_are_public_and_depend_on_the_asset_type() {
        let found = plan(
            "{ assets(first: 10) { totalCount edges { cursor node { id name value { currency } } } pageInfo { hasNextPage } } }",
            serde_json::json!({}),
        )
        .expect("cacheable");
        assert!(!found.private);
        assert!(found.max_age > 0);
        assert_eq!(found.dependencies, vec!["Asset".to_string()]);
    }

    #[test]
    fn people_make_an_answer_private_and_add_their_type() {
        let found = plan(
            "{ assets { nodes { name assignedTo { name } } } }",
            serde_json::json!({}),
        )
        .expect("cacheable");
        assert!(found.private);
        assert_eq!(
            found.dependencies,
            vec!["Asset".to_string(), "User".to_string()]
        );
    }

    #[test]
    fn one_asset_by_id_depends_on_that_row() {
        let id = ObjectId::new();
        let global = GlobalId::new(NodeKind::Asset, id).encode();
        let found = plan(
            "query($id: ID!) { asset(id: $id) { id ...f } } fragment f on Asset { name }",
            serde_json::json!({ "id": global }),
        )
        .expect("cacheable");
        assert_eq!(found.dependencies, vec![response_cache::row("Asset", id)]);
    }

    #[test]
    fn uncached_fields_make_the_operation_uncacheable() {
        for query in [
            "{ me { id } }",
            "{ assets { nodes { id } } me { id } }",
            "{ disabilityPrograms { nodes { enrollments { totalCount } } } }",
            "{ assets { nodes { assignedTo { lastLoginAt } } } }",
            "{ __schema { queryType { name } } }",
            "{ node(id: \"x\") { id } }",
            "mutation { logout }",
        ] {
            assert_eq!(plan(query, serde_json::json!({})), None, "{query}");
        }
    }

    #[test]
    fn a_count_alone_still_depends_on_its_model() {
        let found = plan("{ assets { totalCount } }", serde_json::json!({})).expect("cacheable");
        assert_eq!(found.dependencies, vec!["Asset".to_string()]);
    }

    #[test]
    fn typename_alone_is_not_worth_caching() {
        assert_eq!(plan("{ __typename }", serde_json::json!({})), None);
    }
}
