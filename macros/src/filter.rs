//! `#[filter]`: a list's filter input whose fields say which stored field
//! they match, from which its `to_document` is written out.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Fields, Ident, ItemStruct, LitStr, Path, Result};

/// How one input field narrows the list.
enum Match {
    /// `field` is one of the listed values (`Option<Vec<_>>`).
    OneOf(LitStr),
    /// `field` equals the value, or holds it when the stored field is a
    /// list; with `node`, the value is that type's global id.
    Equals(LitStr, Option<Path>),
    /// Case-insensitive text in any of these fields.
    Search(Vec<LitStr>),
}

pub fn expand(mut item: ItemStruct) -> Result<TokenStream> {
    let Fields::Named(named) = &mut item.fields else {
        return Err(syn::Error::new_spanned(
            &item,
            "#[filter] needs named fields",
        ));
    };
    let mut steps = Vec::new();
    let mut searched = false;
    for field in &mut named.named {
        let Some(name) = field.ident.clone() else {
            continue;
        };
        let (mut node, mut how) = (None, None);
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("filter")) {
            attr.parse_nested_meta(|meta| {
                let key = meta.path.get_ident().map(Ident::to_string);
                if how.is_some() && key.as_deref() != Some("node") {
                    return Err(meta.error("a filter field matches one way"));
                }
                match key.as_deref() {
                    Some("one_of") => how = Some(Match::OneOf(meta.value()?.parse()?)),
                    Some("equals") => how = Some(Match::Equals(meta.value()?.parse()?, None)),
                    Some("node") => node = Some(meta.value()?.parse::<Path>()?),
                    Some("search") => {
                        let list: LitStr = meta.value()?.parse()?;
                        let fields = list
                            .value()
                            .split(',')
                            .map(|f| LitStr::new(f.trim(), list.span()))
                            .collect();
                        how = Some(Match::Search(fields));
                    }
                    _ => return Err(meta.error("unknown #[filter] argument")),
                }
                Ok(())
            })?;
        }
        let found = match how {
            Some(Match::Equals(path, None)) => Some(Match::Equals(path, node)),
            Some(_) if node.is_some() => {
                return Err(syn::Error::new(name.span(), "`node` goes with `equals`"));
            }
            Some(Match::Search(_)) if searched => {
                return Err(syn::Error::new(
                    name.span(),
                    "a filter has one `search` field",
                ));
            }
            other => other,
        };
        searched |= matches!(found, Some(Match::Search(_)));
        field.attrs.retain(|a| !a.path().is_ident("filter"));
        let Some(how) = found else {
            return Err(syn::Error::new(
                name.span(),
                "every field of a #[filter] says what it matches: #[filter(...)]",
            ));
        };
        let error_path = LitStr::new(
            &format!("filter.{}", crate::model::camel(&name.to_string())),
            name.span(),
        );
        steps.push(match how {
            Match::OneOf(path) => quote! {
                crate::db::filters::one_of(&mut filter, #path, &self.#name.unwrap_or_default())?;
            },
            Match::Equals(path, Some(node)) => quote! {
                if let Some(id) = &self.#name {
                    filter.insert(#path, crate::graphql::model::reference::<#node>(id, #error_path)?);
                }
            },
            Match::Equals(path, None) => quote! {
                if let Some(value) = self.#name {
                    filter.insert(#path, value);
                }
            },
            Match::Search(fields) => {
                let text = format_ident!("{name}_pattern");
                quote! {
                    let #text = crate::graphql::inputs::search_pattern(self.#name, #error_path)?;
                    crate::db::filters::search(&mut filter, &[#(#fields),*], #text.as_deref());
                }
            }
        });
    }
    let name = &item.ident;
    Ok(quote! {
        #item

        impl #name {
            /// The stored-document filter this input asks for.
            pub fn to_document(self) -> crate::error::ApiResult<bson::Document> {
                let mut filter = bson::Document::new();
                #(#steps)*
                Ok(filter)
            }
        }
    })
}
