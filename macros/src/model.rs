//! `#[model]`: one field list from which a plain model's stored record, its
//! typed update, its GraphQL type, its create and update inputs (with the
//! checks that turn them into a record or a change) and its list and by-id
//! queries are written out.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::meta::ParseNestedMeta;
use syn::{
    Attribute, Expr, Fields, GenericArgument, Ident, ItemStruct, LitInt, LitStr, Path,
    PathArguments, Result, Type,
};

/// What the attribute's arguments say about the whole model.
#[derive(Default)]
pub struct Options {
    collection: Option<Expr>,
    cache: Option<LitInt>,
    plain: bool,
    create: Option<LitStr>,
    update: Option<LitStr>,
    read: Option<LitStr>,
    list: Option<LitStr>,
    list_filter: Option<LitStr>,
    list_order: Option<LitStr>,
    one: Option<LitStr>,
    one_id: Option<LitStr>,
    events: Option<LitStr>,
    seeded: bool,
    plural: Option<LitStr>,
    write: Option<LitStr>,
    created: Option<LitStr>,
    updated: Option<LitStr>,
    deleted: Option<LitStr>,
    clash: Option<LitStr>,
    before_update: Option<Path>,
    before_delete: Option<Path>,
}

impl Options {
    pub fn parse(&mut self, meta: ParseNestedMeta) -> Result<()> {
        let text =
            |meta: &ParseNestedMeta| -> Result<Option<LitStr>> { Ok(Some(meta.value()?.parse()?)) };
        let key = meta.path.get_ident().map(Ident::to_string);
        match key.as_deref() {
            Some("collection") => self.collection = Some(meta.value()?.parse()?),
            Some("cache") => self.cache = Some(meta.value()?.parse()?),
            Some("plain") => self.plain = true,
            Some("create") => self.create = text(&meta)?,
            Some("update") => self.update = text(&meta)?,
            Some("read") => self.read = text(&meta)?,
            Some("list") => self.list = text(&meta)?,
            Some("list_filter") => self.list_filter = text(&meta)?,
            Some("list_order") => self.list_order = text(&meta)?,
            Some("one") => self.one = text(&meta)?,
            Some("one_id") => self.one_id = text(&meta)?,
            Some("events") => self.events = text(&meta)?,
            Some("seeded") => self.seeded = true,
            Some("plural") => self.plural = text(&meta)?,
            Some("write") => self.write = text(&meta)?,
            Some("created") => self.created = text(&meta)?,
            Some("updated") => self.updated = text(&meta)?,
            Some("deleted") => self.deleted = text(&meta)?,
            Some("clash") => self.clash = text(&meta)?,
            Some("before_update") => self.before_update = Some(meta.value()?.parse()?),
            Some("before_delete") => self.before_delete = Some(meta.value()?.parse()?),
            _ => return Err(meta.error("unknown #[model] argument")),
        }
        Ok(())
    }
}

/// Where a field goes and how its input value is checked.
struct Field {
    name: Ident,
    ty: Type,
    docs: Vec<Attribute>,
    show: bool,
    create: Option<Vec<Attribute>>,
    update: Option<Vec<Attribute>>,
    input: Option<Type>,
    check: Option<Expr>,
    check_async: Option<Path>,
    default: Option<Expr>,
}

impl Field {
    fn read(field: &syn::Field) -> Result<Self> {
        let name = field
            .ident
            .clone()
            .ok_or_else(|| syn::Error::new(Span::call_site(), "#[model] needs named fields"))?;
        let docs: Vec<Attribute> = field
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect();
        let mut out = Field {
            name,
            ty: field.ty.clone(),
            docs: docs.clone(),
            show: false,
            create: None,
            update: None,
            input: None,
            check: None,
            check_async: None,
            default: None,
        };
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("field")) {
            attr.parse_nested_meta(|meta| {
                let doc = |meta: &ParseNestedMeta| -> Result<Vec<Attribute>> {
                    if meta.input.peek(syn::Token![=]) {
                        let text: LitStr = meta.value()?.parse()?;
                        Ok(vec![syn::parse_quote!(#[doc = #text])])
                    } else if docs.is_empty() {
                        Err(meta.error("an input field needs a doc comment or a text"))
                    } else {
                        Ok(docs.clone())
                    }
                };
                let key = meta.path.get_ident().map(Ident::to_string);
                match key.as_deref() {
                    Some("show") => out.show = true,
                    Some("create") => out.create = Some(doc(&meta)?),
                    Some("update") => out.update = Some(doc(&meta)?),
                    Some("set") => {
                        let docs = doc(&meta)?;
                        out.create = Some(docs.clone());
                        out.update = Some(docs);
                    }
                    Some("input") => out.input = Some(meta.value()?.parse()?),
                    Some("check") => out.check = Some(meta.value()?.parse()?),
                    Some("check_async") => out.check_async = Some(meta.value()?.parse()?),
                    Some("default") => out.default = Some(meta.value()?.parse()?),
                    _ => return Err(meta.error("unknown #[field] argument")),
                }
                Ok(())
            })?;
        }
        let refuse = |message: &str| Err(syn::Error::new(out.name.span(), message));
        if out.create.is_none() && out.default.is_none() {
            return refuse("a field is either in the create input or has a `default`");
        }
        if out.optional().is_some() && out.default.is_some() {
            return refuse("an optional field is absent (`None`) by default; drop `default`");
        }
        if out.check.is_some() && out.check_async.is_some() {
            return refuse("a field takes `check` or `check_async`, not both");
        }
        if out.input.is_some() && out.check.is_none() && out.check_async.is_none() {
            return refuse(
                "a field with its own `input` type needs a check that turns it into the stored value",
            );
        }
        // async-graphql camel-cases a letter after a digit too; the field
        // paths in errors would then name it differently.
        let name = out.name.to_string();
        let digit_then_letter = name
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_alphabetic());
        if name.starts_with('_') || name.starts_with("r#") || digit_then_letter {
            return refuse(
                "name the field in plain snake case (`line_1`, not `line1a`, `_x` or `r#type`)",
            );
        }
        Ok(out)
    }

    /// `T` when the stored type is `Option<T>`.
    fn optional(&self) -> Option<&Type> {
        generic_of(&self.ty, "Option")
    }

    fn is_list(&self) -> bool {
        generic_of(&self.ty, "Vec").is_some()
    }

    /// The type a client sends for one value.
    fn input_type(&self) -> Type {
        match (&self.input, self.optional()) {
            (Some(ty), _) => ty.clone(),
            (None, Some(inner)) => inner.clone(),
            (None, None) => self.ty.clone(),
        }
    }

    /// The path named in this field's errors (`input.durationWeeks`).
    fn path(&self) -> LitStr {
        LitStr::new(
            &format!("input.{}", camel(&self.name.to_string())),
            self.name.span(),
        )
    }

    /// The checked stored value of `value` (an expression of the input type).
    fn checked(&self, value: TokenStream) -> TokenStream {
        let path = self.path();
        if let Some(check) = &self.check {
            quote!((#check)(#value).map_err(|m| crate::error::ApiError::bad_input(#path, m))?)
        } else if let Some(check) = &self.check_async {
            quote!(#check(ctx, #path, #value).await?)
        } else {
            value
        }
    }
}

/// The argument of `Name<...>` when `ty` is one.
fn generic_of<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) => Some(inner),
        _ => None,
    }
}

pub fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

pub fn expand(options: Options, item: ItemStruct) -> Result<TokenStream> {
    let Fields::Named(named) = &item.fields else {
        return Err(syn::Error::new_spanned(
            &item,
            "#[model] needs named fields",
        ));
    };
    let fields = named
        .named
        .iter()
        .map(Field::read)
        .collect::<Result<Vec<_>>>()?;
    let collection = options
        .collection
        .as_ref()
        .ok_or_else(|| syn::Error::new(Span::call_site(), "#[model] needs `collection = ...`"))?;
    let vis = &item.vis;
    let name = &item.ident;
    let docs: Vec<&Attribute> = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    let record = format_ident!("{name}Record");
    let change = format_ident!("{name}ForUpdate");
    let create = format_ident!("Create{name}Input");
    let update = format_ident!("Update{name}Input");
    let record_doc = LitStr::new(&format!("A stored `{name}`."), Span::call_site());
    let change_doc = LitStr::new(
        &format!("A checked change to a `{name}`, from which its `$set` is derived."),
        Span::call_site(),
    );

    // The stored record.
    let stored = fields.iter().map(|f| {
        let (n, t) = (&f.name, &f.ty);
        let default = (f.optional().is_some() || f.is_list()).then(|| quote!(#[serde(default)]));
        quote!(#default pub #n: #t,)
    });
    // The typed update.
    let changed = fields.iter().filter(|f| f.update.is_some()).map(|f| {
        let (n, t) = (&f.name, &f.ty);
        quote!(#[serde(skip_serializing_if = "Option::is_none")] pub #n: Option<#t>,)
    });
    // The GraphQL type's plain fields, copied from the record.
    let shown: Vec<&Field> = fields.iter().filter(|f| f.show).collect();
    let shown_fields = shown.iter().map(|f| {
        let (n, t, d) = (&f.name, &f.ty, &f.docs);
        quote!(#(#d)* pub #n: #t,)
    });
    let shown_names: Vec<&Ident> = shown.iter().map(|f| &f.name).collect();
    let cache = options
        .cache
        .as_ref()
        .map(|seconds| quote!(, cache_control(max_age = #seconds)));
    let plain = options
        .plain
        .then(|| quote!(impl crate::graphql::rows::Plain for #name {}));

    // The create input and the record it becomes.
    let create_fields = fields.iter().filter_map(|f| {
        let docs = f.create.as_ref()?;
        let (n, i) = (&f.name, f.input_type());
        let ty = if f.optional().is_some() || f.is_list() || f.default.is_some() {
            quote!(Option<#i>)
        } else {
            quote!(#i)
        };
        Some(quote!(#(#docs)* pub #n: #ty,))
    });
    let create_values = fields.iter().map(|f| {
        let n = &f.name;
        let value = if f.create.is_none() {
            let default = &f.default;
            quote!(#default)
        } else if f.optional().is_some() {
            let checked = f.checked(quote!(v));
            quote!(match self.#n { Some(v) => Some(#checked), None => None })
        } else if let Some(default) = &f.default {
            let checked = f.checked(quote!(v));
            quote!(match self.#n { Some(v) => #checked, None => #default })
        } else if f.is_list() {
            f.checked(quote!(self.#n.unwrap_or_default()))
        } else {
            f.checked(quote!(self.#n))
        };
        quote!(#n: #value,)
    });
    let create_doc = options.create.as_ref().map(|d| quote!(#[doc = #d]));

    // The update input and the change it becomes.
    let update_fields = fields.iter().filter_map(|f| {
        let docs = f.update.as_ref()?;
        let (n, i) = (&f.name, f.input_type());
        Some(quote!(#(#docs)* pub #n: async_graphql::MaybeUndefined<#i>,))
    });
    let update_values = fields.iter().filter(|f| f.update.is_some()).map(|f| {
        let n = &f.name;
        let path = f.path();
        let checked = f.checked(quote!(v));
        let null = if f.optional().is_some() {
            quote!(Some(None))
        } else {
            quote!(return Err(crate::error::ApiError::bad_input(
                #path,
                concat!("`", #path, "` cannot be cleared"),
            )))
        };
        let value = if f.optional().is_some() {
            quote!(Some(Some(#checked)))
        } else {
            quote!(Some(#checked))
        };
        quote!(#n: match self.#n {
            async_graphql::MaybeUndefined::Undefined => None,
            async_graphql::MaybeUndefined::Null => #null,
            async_graphql::MaybeUndefined::Value(v) => #value,
        },)
    });
    let update_doc = options.update.as_ref().map(|d| quote!(#[doc = #d]));

    if options.events.is_some() && (options.list.is_none() || options.write.is_none()) {
        return Err(syn::Error::new(
            Span::call_site(),
            "`events` writes the module's `Query` and `Mutation`: it needs `list` and `write`",
        ));
    }
    if fields.iter().all(|f| f.update.is_none()) {
        return Err(syn::Error::new(
            Span::call_site(),
            "a declared model has at least one `update` field (an input object cannot be empty)",
        ));
    }
    let queries = queries(&options, name)?;
    let roots = roots(&options, name);
    let mutations = mutations(&options, name)?;

    Ok(quote! {
        #[doc = #record_doc]
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        #vis struct #record {
            #[serde(rename = "_id")]
            pub id: bson::oid::ObjectId,
            #(#stored)*
            #[serde(deserialize_with = "crate::db::dates::read")]
            pub created_at: bson::DateTime,
            #[serde(deserialize_with = "crate::db::dates::read")]
            pub updated_at: bson::DateTime,
        }

        impl crate::db::store::Record for #record {
            const COLLECTION: &'static str = #collection;
            fn id(&self) -> bson::oid::ObjectId {
                self.id
            }
        }

        #[doc = #change_doc]
        #[derive(Debug, Default, serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        #vis struct #change {
            #(#changed)*
        }

        impl crate::db::store::ForUpdate for #change {}

        #(#docs)*
        #[derive(async_graphql::SimpleObject, Clone)]
        #[graphql(complex #cache)]
        #vis struct #name {
            #[graphql(skip)]
            pub record: std::sync::Arc<#record>,
            #(#shown_fields)*
        }

        #plain

        impl crate::graphql::pagination::Listed for #name {
            const NAME: &'static str =
                <Self as crate::graphql::model::ApiModel>::KIND.name();
        }

        impl crate::graphql::model::ApiModel for #name {
            type Record = #record;
            fn wrap(record: std::sync::Arc<#record>) -> Self {
                Self {
                    #(#shown_names: record.#shown_names.clone(),)*
                    record,
                }
            }
            fn record(&self) -> &#record {
                &self.record
            }
        }

        #create_doc
        #[derive(async_graphql::InputObject)]
        #vis struct #create {
            #(#create_fields)*
        }

        impl #create {
            /// The new record: every field checked, in the input's order.
            pub async fn into_record(
                self,
                ctx: &async_graphql::Context<'_>,
            ) -> crate::error::ApiResult<#record> {
                let _ = ctx;
                let now = bson::DateTime::now();
                Ok(#record {
                    id: bson::oid::ObjectId::new(),
                    #(#create_values)*
                    created_at: now,
                    updated_at: now,
                })
            }
        }

        #update_doc
        #[derive(async_graphql::InputObject)]
        #vis struct #update {
            #(#update_fields)*
        }

        impl #update {
            /// The change: absent fields stay, `null` clears an optional
            /// one and is refused for the others, every value is checked,
            /// in the input's order.
            pub async fn into_change(
                self,
                ctx: &async_graphql::Context<'_>,
            ) -> crate::error::ApiResult<#change> {
                let _ = ctx;
                Ok(#change {
                    #(#update_values)*
                })
            }
        }

        #queries

        #roots

        #mutations
    })
}

/// The create, update and delete mutations, when the attribute documents them.
fn mutations(options: &Options, name: &Ident) -> Result<TokenStream> {
    let Some(write) = &options.write else {
        return Ok(TokenStream::new());
    };
    let need = |value: &Option<LitStr>, key: &str| {
        value.clone().ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                format!("a model with `write` needs `{key}`"),
            )
        })
    };
    let (created, updated) = (
        need(&options.created, "created")?,
        need(&options.updated, "updated")?,
    );
    let (deleted, clash) = (
        need(&options.deleted, "deleted")?,
        need(&options.clash, "clash")?,
    );
    let (events, one_id) = (
        need(&options.events, "events")?,
        need(&options.one_id, "one_id")?,
    );
    let guard = guard(write);
    let [create_action, update_action, delete_action] = ["create", "update", "delete"]
        .map(|kind| LitStr::new(&format!("{}.{kind}", events.value()), events.span()));
    let mutation = format_ident!("{name}Mutation");
    let snake = snake(&name.to_string());
    let (create_fn, update_fn, delete_fn) = (
        format_ident!("create_{snake}"),
        format_ident!("update_{snake}"),
        format_ident!("delete_{snake}"),
    );
    let (create, update) = (
        format_ident!("Create{name}Input"),
        format_ident!("Update{name}Input"),
    );
    let before_update = options
        .before_update
        .as_ref()
        .map(|check| quote!(#check(ctx, &before.record, &change).await?;));
    let before_delete = options
        .before_delete
        .as_ref()
        .map(|check| quote!(#check(ctx, &before.record).await?;));
    Ok(quote! {
        /// The model's create, update and delete mutations.
        #[derive(Default)]
        pub struct #mutation;

        #[async_graphql::Object]
        impl #mutation {
            #[doc = #created]
            #[graphql(guard = #guard)]
            async fn #create_fn(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = "What to create.")] input: #create,
            ) -> async_graphql::Result<#name> {
                let record = input.into_record(ctx).await?;
                Ok(crate::graphql::model::insert(ctx, record, #create_action, #clash).await?)
            }

            #[doc = #updated]
            #[graphql(guard = #guard)]
            async fn #update_fn(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = #one_id)] id: async_graphql::ID,
                #[graphql(desc = "What to change.")] input: #update,
            ) -> async_graphql::Result<#name> {
                let before: #name = crate::graphql::model::one(ctx, &id).await?;
                let change = input.into_change(ctx).await?;
                #before_update
                let record = &*before.record;
                Ok(crate::graphql::model::update(ctx, record, change, #update_action, #clash).await?)
            }

            #[doc = #deleted]
            #[graphql(guard = #guard)]
            async fn #delete_fn(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = #one_id)] id: async_graphql::ID,
            ) -> async_graphql::Result<async_graphql::ID> {
                let before: #name = crate::graphql::model::one(ctx, &id).await?;
                #before_delete
                Ok(crate::graphql::model::delete::<#name>(ctx, &before.record, #delete_action).await?)
            }
        }
    })
}

/// A guard admitting the roles of `set` (a role set in `graphql::guards`).
fn guard(set: &LitStr) -> LitStr {
    let text = format!(
        "crate::graphql::guards::RoleGuard::new(crate::graphql::guards::{})",
        set.value()
    );
    LitStr::new(&text, set.span())
}

/// What the model's module names for the list of models (`models::registry`):
/// its events, whether it is seeded, its record and its roots.
fn roots(options: &Options, name: &Ident) -> TokenStream {
    let Some(events) = &options.events else {
        return TokenStream::new();
    };
    let record = format_ident!("{name}Record");
    let query = format_ident!("{name}Query");
    let mutation = format_ident!("{name}Mutation");
    let seeded = options.seeded;
    let [created, updated, deleted] = ["created", "updated", "deleted"]
        .map(|kind| LitStr::new(&format!("{}.{kind}", events.value()), events.span()));
    quote! {
        /// The domain events its changes raise, which webhooks subscribe to.
        pub const EVENTS: &[&str] = &[#created, #updated, #deleted];

        /// Whether `alawael seed` writes rows of it.
        pub const SEEDED: bool = #seeded;

        /// The stored record; its `Model` declaration says the collection,
        /// order fields, indexes and the fields payloads may carry.
        pub type Record = #record;
        /// The model's fields on the schema's roots.
        pub type Query = #query;
        pub type Mutation = #mutation;
        pub type Subscription = crate::graphql::NoStreams;
    }
}

/// The list and by-id queries, when the attribute documents them.
fn queries(options: &Options, name: &Ident) -> Result<TokenStream> {
    let Some(list) = &options.list else {
        return Ok(TokenStream::new());
    };
    let need = |value: &Option<LitStr>, key: &str| {
        value.clone().ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                format!("a model with `list` needs `{key}`"),
            )
        })
    };
    let (list_filter, list_order) = (
        need(&options.list_filter, "list_filter")?,
        need(&options.list_order, "list_order")?,
    );
    let (one, one_id) = (need(&options.one, "one")?, need(&options.one_id, "one_id")?);
    let read = need(&options.read, "read")?;
    let guard = guard(&read);
    let query = format_ident!("{name}Query");
    let filter = format_ident!("{name}Filter");
    let filter = quote!(api::#filter);
    let order = format_ident!("{name}Order");
    let single = format_ident!("{}", snake(&name.to_string()));
    let plural = match &options.plural {
        Some(plural) => format_ident!("{}", plural.value()),
        None => format_ident!("{}s", snake(&name.to_string())),
    };
    let cache = options
        .cache
        .as_ref()
        .map(|seconds| quote!(, cache_control(max_age = #seconds)));
    Ok(quote! {
        /// The model's list and by-id queries.
        #[derive(Default)]
        pub struct #query;

        #[alawael_macros::connections]
        #[async_graphql::Object]
        impl #query {
            #[doc = #list]
            #[graphql(guard = #guard #cache)]
            async fn #plural(
                &self,
                ctx: &async_graphql::Context<'_>,
                page: crate::graphql::pagination::PageArgs,
                #[graphql(desc = #list_filter)] filter: Option<#filter>,
                #[graphql(desc = #list_order)] order_by: Option<#order>,
            ) -> async_graphql::Result<crate::graphql::pagination::Connection<#name>> {
                let filter = filter.unwrap_or_default().to_document()?;
                let order = order_by.map(|o| (o.field, o.direction));
                Ok(crate::graphql::model::list(ctx, page, filter, order).await?)
            }

            #[doc = #one]
            #[graphql(guard = #guard #cache)]
            async fn #single(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(desc = #one_id)] id: async_graphql::ID,
            ) -> async_graphql::Result<#name> {
                Ok(crate::graphql::model::one(ctx, &id).await?)
            }
        }
    })
}
