//! The API's own attribute macros. `#[connections]` writes out the four
//! Relay arguments of every connection field in an async-graphql impl, so
//! each list resolver names one `PageArgs` instead of repeating them.

use proc_macro::TokenStream;
use quote::quote;
use syn::{FnArg, ImplItem, ItemImpl, Pat, Type, parse_macro_input, parse_quote};

/// Put it above `#[Object]` or `#[ComplexObject]`. In every method with a
/// parameter `name: PageArgs`, that parameter becomes the four Relay
/// arguments of the SDL (`after`, `before`, `first`, `last`, documented),
/// and the body starts with `let name = PageArgs::new(first, after, last,
/// before);`. Complexity expressions may still name `first` and `last`.
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
        page = Some(name.ident.clone());
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
    let body = &method.block;
    method.block = parse_quote!({
        let #page = crate::graphql::pagination::PageArgs::new(first, after, last, before);
        #body
    });
}
