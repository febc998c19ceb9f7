//! The API's own attribute macros. `#[connections]` writes out the four
//! Relay arguments of every connection field in an async-graphql impl, so
//! each list resolver names one `PageArgs` instead of repeating them;
//! `#[model]` writes out a plain model from one field list.

use proc_macro::TokenStream;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::{
    FnArg, ImplItem, ItemImpl, ItemStruct, Meta, Pat, Token, Type, parse_macro_input, parse_quote,
};

mod filter;
mod model;

/// Put it above `#[derive(InputObject)]` of a list's filter: every field
/// carries one `#[filter(...)]` saying what it matches:
/// `one_of = "path"` (an `Option<Vec<Enum>>`), `equals = "path"` (an
/// `Option<_>` of a value BSON takes; add `node = Type` for a global id of
/// that type; a stored list matches when it holds the value) or, on one
/// field at most, `search = "path, path"` (case-insensitive text, at most
/// 100 characters). It writes `to_document(self) -> ApiResult<Document>`;
/// a bad id or search text is `BAD_USER_INPUT` naming `filter.<field>`.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let message = "#[filter] takes no arguments";
        return syn::Error::new(proc_macro2::Span::call_site(), message)
            .to_compile_error()
            .into();
    }
    let item = parse_macro_input!(item as ItemStruct);
    filter::expand(item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Put it above `#[ComplexObject]` of a model's GraphQL type: it adds the
/// fields every node has, `id` first (documented with the argument) and
/// `createdAt` and `updatedAt` last, read from the record.
#[proc_macro_attribute]
pub fn node(attr: TokenStream, item: TokenStream) -> TokenStream {
    let doc = parse_macro_input!(attr as syn::LitStr);
    let mut block = parse_macro_input!(item as ItemImpl);
    let id: ImplItem = parse_quote! {
        #[doc = #doc]
        pub async fn id(&self) -> async_graphql::ID {
            crate::graphql::model::ApiModel::global_id(self)
        }
    };
    let created: ImplItem = parse_quote! {
        /// When the record was created.
        async fn created_at(&self) -> crate::graphql::scalars::DateTime {
            self.record.created_at.into()
        }
    };
    let updated: ImplItem = parse_quote! {
        /// When the record last changed.
        async fn updated_at(&self) -> crate::graphql::scalars::DateTime {
            self.record.updated_at.into()
        }
    };
    block.items.insert(0, id);
    block.items.push(created);
    block.items.push(updated);
    quote!(#block).into()
}

/// Put it on a struct named for the GraphQL type (`DisabilityProgram`)
/// whose fields are the model's stored fields, each with a doc comment and
/// `#[field(...)]`: `show` (a plain field of the GraphQL type), `create`,
/// `update` or `set` (both), each optionally `= "doc"` when the input's
/// text differs, `input = Type` (what a client sends when it is not the
/// stored type; it needs a check), `check = expr` (a `fn(Input) ->
/// Result<Stored, String>`, on the inner value of an optional field),
/// `check_async = path` (`async fn(&Context, field, Input) ->
/// ApiResult<Stored>`) and `default = expr` (the value when the create
/// input leaves a required field out; an optional one is then `None`).
/// Field names are plain snake case. It writes `<Name>Record` (with `_id`, `createdAt` and
/// `updatedAt`), `<Name>ForUpdate`, the GraphQL `<Name>` (its other fields
/// go in a `#[ComplexObject]`), `Create<Name>Input::into_record` and
/// `Update<Name>Input::into_change`. Arguments: `collection = expr`,
/// `cache = seconds`, `plain` (no field needs its own resolver to be read),
/// the inputs' docs `create` and `update`, and, for `<Name>Query` with the
/// list and by-id queries (over `api::<Name>Filter`, with `Default` and
/// `to_document`, and `<Name>Order` from `ordering!` beside it;
/// `plural = "..."` names the list when `<snake name>s` is wrong), `read` (a role set in `graphql::guards`), `list`,
/// `list_filter`, `list_order`, `one` and `one_id` (their docs). With
/// `events = "prefix"` (which needs `list` and `write`; `seeded` when
/// `alawael seed` writes rows) it also writes what the list of models reads from the module: `EVENTS`,
/// `SEEDED`, `Record`, `Query`, `Mutation` and `Subscription`. With `write`
/// (the role set that may change rows) it writes `<Name>Mutation`:
/// `create<Name>`, `update<Name>` and `delete<Name>`, documented by
/// `created`, `updated` and `deleted`, audited as `<events>.create` (and
/// so on), a unique-index clash being `CONFLICT` with `clash`; `before_update
/// = path` (`async fn(&Context, &Record, &ForUpdate) -> ApiResult<()>`) and
/// `before_delete = path` (`async fn(&Context, &Record) -> ApiResult<()>`)
/// may refuse a change that the database would take.
#[proc_macro_attribute]
pub fn model(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = model::Options::default();
    let parser = syn::meta::parser(|meta| options.parse(meta));
    parse_macro_input!(attr with parser);
    let item = parse_macro_input!(item as ItemStruct);
    model::expand(options, item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Put it above `#[Object]` or `#[ComplexObject]`. In every method with a
/// parameter `name: PageArgs` (the first such parameter), that parameter becomes the four Relay
/// arguments of the SDL (`after`, `before`, `first`, `last`, documented),
/// and the body starts with `let name = PageArgs::new(first, after, last,
/// before);`. Complexity expressions may still name `first` and `last`;
/// without one, the field costs `connection_cost(first, last,
/// child_complexity)`.
#[proc_macro_attribute]
pub fn connections(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[connections] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let mut block = parse_macro_input!(item as ItemImpl);
    for item in &mut block.items {
        if let ImplItem::Fn(method) = item {
            expand(method);
        }
    }
    quote!(#block).into()
}

/// Whether `ty` is (a path ending in) `PageArgs`.
fn is_page_args(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "PageArgs"))
}

fn expand(method: &mut syn::ImplItemFn) {
    let inputs = std::mem::take(&mut method.sig.inputs);
    let mut page = None;
    for input in inputs {
        let FnArg::Typed(typed) = &input else {
            method.sig.inputs.push(input);
            continue;
        };
        let Pat::Ident(name) = &*typed.pat else {
            method.sig.inputs.push(input);
            continue;
        };
        if page.is_some() || !is_page_args(&typed.ty) {
            method.sig.inputs.push(input);
            continue;
        }
        page = Some((name.ident.clone(), name.mutability));
        let relay: [FnArg; 4] = [
            parse_quote!(#[graphql(desc = "Rows after this cursor.")] after: Option<String>),
            parse_quote!(#[graphql(desc = "Rows before this cursor.")] before: Option<String>),
            parse_quote!(
                #[graphql(desc = "How many rows from the start (at most 100).")] first: Option<i32>
            ),
            parse_quote!(
                #[graphql(desc = "How many rows from the end (at most 100).")] last: Option<i32>
            ),
        ];
        method.sig.inputs.extend(relay);
    }
    let Some(page) = page else {
        return;
    };
    method
        .attrs
        .push(parse_quote!(#[allow(clippy::too_many_arguments)]));
    let cost = quote!(
        complexity = "crate::graphql::pagination::connection_cost(first, last, child_complexity)"
    );
    // async-graphql reads one `#[graphql(...)]` on a resolver: the cost
    // joins its arguments unless one of them already names a complexity.
    let graphql = method
        .attrs
        .iter_mut()
        .find(|a| a.path().is_ident("graphql"));
    match graphql {
        None => method.attrs.push(parse_quote!(#[graphql(#cost)])),
        Some(attr) => {
            let args = attr
                .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
                .unwrap_or_default();
            if !args.iter().any(|m| m.path().is_ident("complexity")) {
                let args = args.iter();
                *attr = parse_quote!(#[graphql(#(#args,)* #cost)]);
            }
        }
    }
    let (page, mutability) = page;
    let body = &method.block;
    method.block = parse_quote!({
        let #mutability #page = crate::graphql::pagination::PageArgs::new(first, after, last, before);
        #body
    });
}
