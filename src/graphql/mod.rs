//! The GraphQL engine: the schema's roots merged from every model of
//! `crate::with_models!`, the shared machinery models build on
//! (pagination, loaders, rows written in place, guards, scalars, the
//! audited write), the document checks, and the step that gives every
//! error its `extensions.code`.

pub mod batch;
pub mod context;
pub mod enums;
pub mod errors;
pub mod guards;
pub mod inputs;
pub mod loaders;
pub mod model;
pub mod money;
pub mod node;
pub mod pagination;
pub mod rows;
pub mod scalars;
pub mod sealed;
pub mod splice;

use async_graphql::{MergedObject, MergedSubscription, Schema, ValidationMode};

use crate::config::GraphqlSettings;

/// A root share with no fields, for a model that has no queries or no
/// mutations of its own (it contributes nothing to the merged root).
pub type NoFields = async_graphql::EmptyMutation;

/// A subscription share with no streams, for a model that streams nothing.
/// Unlike `EmptySubscription`, which answers every field with an error, it
/// leaves the field to the other shares of the merged root.
#[derive(Default, Clone, Copy)]
pub struct NoStreams;

impl async_graphql::SubscriptionType for NoStreams {
    fn type_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("NoStreams")
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        registry.create_subscription_type::<Self, _>(|_| {
            async_graphql::registry::MetaType::Object {
                name: "NoStreams".to_string(),
                description: None,
                fields: Default::default(),
                cache_control: Default::default(),
                extends: false,
                shareable: false,
                resolvable: true,
                keys: None,
                visible: None,
                inaccessible: false,
                interface_object: false,
                tags: Default::default(),
                is_subscription: true,
                rust_typename: Some(std::any::type_name::<Self>()),
                directive_invocations: Default::default(),
                requires_scopes: Default::default(),
            }
        })
    }

    fn create_field_stream<'a>(
        &'a self,
        _ctx: &'a async_graphql::Context<'_>,
    ) -> Option<std::pin::Pin<Box<dyn futures::Stream<Item = async_graphql::Response> + Send + 'a>>>
    {
        None
    }
}

macro_rules! roots {
    ($($name:ident => $folder:ident),+ $(,)?) => {
        /// Everything a client can read.
        #[derive(MergedObject, Default)]
        pub struct Query($(crate::models::$folder::Query,)+ node::NodeQuery);

        /// Everything a client can change.
        #[derive(MergedObject, Default)]
        pub struct Mutation($(crate::models::$folder::Mutation),+);

        /// Live streams over `/graphql/ws` (graphql-transport-ws).
        #[derive(MergedSubscription, Default)]
        pub struct Subscription($(crate::models::$folder::Subscription),+);
    };
}

crate::with_models!(roots);

/// Extra nesting GraphiQL's introspection query needs (its `ofType` chain).
pub use crate::config::INTROSPECTION_DEPTH;

pub type AlawaelSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema with the configured limits. Needs no database.
pub fn build_schema(limits: &GraphqlSettings) -> AlawaelSchema {
    build(limits, ValidationMode::Strict)
}

/// The same schema for documents that passed its full validation before
/// and declare no variables (`documents::Known::validated`): only the
/// checks that are cheap and independent of the document's history run
/// again (fragment cycles, depth and complexity limits), the rest of the
/// GraphQL validation rules are not repeated per request.
pub fn build_schema_for_validated(limits: &GraphqlSettings) -> AlawaelSchema {
    build(limits, ValidationMode::Fast)
}

fn build(limits: &GraphqlSettings, mode: ValidationMode) -> AlawaelSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .validation_mode(mode)
    // `limits::check` enforces `max_depth` through fragments, with room for
    // GraphiQL's introspection query; this is the library's backstop.
    .limit_depth(limits.max_depth + INTROSPECTION_DEPTH)
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(limits.max_depth * 2 + 8 + INTROSPECTION_DEPTH);
    if !limits.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The schema's SDL, as `alawael schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    build_schema(&GraphqlSettings::default()).sdl()
}
