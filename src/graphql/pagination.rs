//! Relay cursor connections shared by every list: argument checks, the
//! signed cursors of `crate::cursor`, and the generic `XConnection` / `XEdge` types with a lazy `totalCount`.

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::resolver_utils::ContainerType;
use async_graphql::{Object, SimpleObject, TypeName};

use super::rows::{Plain, Row, Rows, Scalar, Token};

use crate::config::GraphqlSettings;
pub use crate::cursor::CursorCodec;
use crate::db::page::{Page, Position, Sort, Window};
use crate::db::store::CountQuery;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The four Relay arguments, as received.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    /// The arguments as a connection field receives them.
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Self {
        Self {
            first,
            after,
            last,
            before,
        }
    }

    /// Checks the arguments and turns them into a window over the ordering.
    pub fn window(
        &self,
        codec: &CursorCodec,
        ordering: &str,
        limits: &GraphqlSettings,
    ) -> ApiResult<Window> {
        let size = |value: i32, name: &str| -> ApiResult<usize> {
            let n = usize::try_from(value)
                .map_err(|_| ApiError::bad_input(name, format!("`{name}` must not be negative")))?;
            if n > limits.max_page_size {
                return Err(ApiError::bad_input(
                    name,
                    format!(
                        "`{name}` is at most {}; page through the rest with cursors",
                        limits.max_page_size
                    ),
                ));
            }
            Ok(n)
        };
        if self.first.is_some() && self.last.is_some() {
            return Err(ApiError::bad_input(
                "last",
                "pass `first` or `last`, not both",
            ));
        }
        if self.after.is_some() && self.before.is_some() {
            return Err(ApiError::bad_input(
                "before",
                "pass `after` or `before`, not both",
            ));
        }
        let decode = |cursor: &Option<String>, name: &str| {
            cursor
                .as_deref()
                .map(|c| codec.decode(ordering, c, name))
                .transpose()
        };
        match (self.last, &self.before) {
            (Some(last), _) => Ok(Window::Backward {
                last: size(last, "last")?,
                before: decode(&self.before, "before")?,
            }),
            (None, Some(_)) => Ok(Window::Backward {
                last: limits.default_page_size,
                before: decode(&self.before, "before")?,
            }),
            (None, None) => Ok(Window::Forward {
                first: self
                    .first
                    .map(|f| size(f, "first"))
                    .transpose()?
                    .unwrap_or(limits.default_page_size),
                after: decode(&self.after, "after")?,
            }),
        }
    }
}

/// A list request resolved against its ordering: the cursor tag, the sort
/// and the window of rows to read.
pub struct Listing {
    pub tag: String,
    pub sort: Sort,
    pub window: Window,
}

impl PageArgs {
    /// Resolves the arguments for an ordering `(document path, cursor tag)`.
    pub fn listing(
        &self,
        app: &AppState,
        (path, tag): (&'static str, &str),
        direction: OrderDirection,
    ) -> ApiResult<Listing> {
        Ok(Listing {
            tag: tag.to_string(),
            sort: Sort {
                path,
                descending: direction == OrderDirection::Desc,
            },
            window: self.window(&app.cursors, tag, &app.settings.graphql)?,
        })
    }
}

impl Listing {
    /// Wraps a page read for this listing into its connection.
    pub fn connection<R, T: Listed>(
        &self,
        app: &AppState,
        page: Page<R>,
        convert: impl Fn(R) -> T,
        count: CountQuery,
    ) -> Connection<T> {
        Connection::new(page, &app.cursors, &self.tag, convert, Total::Later(count))
    }
}

/// A node type that can be listed: gives the connection and edge their names.
pub trait Listed: ContainerType + Plain + Clone + Send + Sync + 'static {
    const NAME: &'static str;
}

pub struct Connection<T: Listed> {
    edges: Vec<Edge<T>>,
    has_next_page: bool,
    has_previous_page: bool,
    count: Total,
}

/// A connection's `totalCount`: counted when asked for, or already known
/// (a child list's loader counts while it reads).
pub enum Total {
    Later(CountQuery),
    Known(u64),
}

impl<T: Listed> Connection<T> {
    /// Wraps a page of records, turning each into a node with `convert`.
    /// Cursors are signed when asked for, not for every row.
    pub fn new<R>(
        page: Page<R>,
        codec: &CursorCodec,
        ordering: &str,
        convert: impl Fn(R) -> T,
        count: Total,
    ) -> Self {
        let signer = Arc::new(Signer {
            codec: codec.clone(),
            ordering: ordering.to_string(),
        });
        Self {
            edges: page
                .rows
                .into_iter()
                .map(|(position, record)| Edge {
                    position,
                    signer: signer.clone(),
                    node: convert(record),
                })
                .collect(),
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
            count,
        }
    }
}

/// Where a page sits in the whole list.
#[derive(SimpleObject)]
#[graphql(cache_control(max_age = 86400))]
pub struct PageInfo {
    /// Whether more rows follow the last one of this page.
    pub has_next_page: bool,
    /// Whether rows come before the first one of this page.
    pub has_previous_page: bool,
    /// The cursor of the first row of this page.
    pub start_cursor: Option<String>,
    /// The cursor of the last row of this page.
    pub end_cursor: Option<String>,
}

/// A page of a list, with cursors for the pages around it.
// Cache hints: a field returning a page declares its own; rows (and
// `PageInfo`) declare a day, so the nodes' own hints and that field's decide.
#[Object(name_type)]
impl<T: Listed> Connection<T> {
    /// The rows of this page, each with its cursor.
    async fn edges(&self) -> Rows<'_, Edge<T>> {
        Rows(self.edges.iter().collect())
    }

    /// The rows of this page, without cursors.
    async fn nodes(&self) -> Rows<'_, T> {
        Rows(self.edges.iter().map(|e| &e.node).collect())
    }

    /// Where this page sits in the whole list.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.edges.first().map(Edge::signed),
            end_cursor: self.edges.last().map(Edge::signed),
        }
    }

    /// How many rows the whole list has with these filters (one extra query; ask only when needed).
    async fn total_count(&self) -> async_graphql::Result<u64> {
        match &self.count {
            Total::Later(query) => Ok(query.run().await.map_err(ApiError::from)?),
            Total::Known(n) => Ok(*n),
        }
    }
}

impl<T: Listed> TypeName for Connection<T> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Connection", T::NAME).into()
    }
}

pub struct Edge<T: Listed> {
    position: Position,
    signer: Arc<Signer>,
    node: T,
}

/// Signs the cursors of one page's rows.
struct Signer {
    codec: CursorCodec,
    ordering: String,
}

impl<T: Listed> Edge<T> {
    fn signed(&self) -> String {
        self.signer
            .codec
            .encode(&self.signer.ordering, &self.position)
    }
}

/// One row of a list and its cursor.
#[Object(name_type, cache_control(max_age = 86400))]
impl<T: Listed> Edge<T> {
    /// Pass to `after` or `before` to page from this row.
    async fn cursor(&self) -> String {
        self.signed()
    }

    /// The row itself.
    async fn node(&self) -> Row<&T> {
        Row(&self.node)
    }
}

impl<T: Listed> Plain for Edge<T> {
    fn plain(&self, field: &str) -> Option<Scalar<'_>> {
        (field == "cursor").then_some(Scalar::Token(self))
    }
}

impl<T: Listed> Token for Edge<T> {
    /// The row's cursor.
    fn append(&self, out: &mut Vec<u8>) {
        self.signer
            .codec
            .encode_into(&self.signer.ordering, &self.position, out);
    }
}

impl<T: Listed> TypeName for Edge<T> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Edge", T::NAME).into()
    }
}

/// The sort direction of an ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, async_graphql::Enum)]
pub enum OrderDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Declares, in a model's declaration (`mod.rs`), its order fields
/// (`order_fields!`, `Variant = "API_NAME" => "document.path"`) as the
/// GraphQL enum of that name, and after it `input <Name>Order;` (with its
/// doc), the list's `orderBy` input: `field` and `direction`.
#[macro_export]
macro_rules! ordering {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $api:literal => $path:literal),+ $(,)? }
     $(#[$imeta:meta])* input $input:ident;) => {
        $crate::order_fields! {
            $(#[$meta])* #[derive(async_graphql::Enum)]
            $vis enum $name { $($(#[$vmeta])* $variant = $api => $path),+ }
        }

        $(#[$imeta])*
        #[derive(async_graphql::InputObject)]
        $vis struct $input {
            /// The field to order by.
            pub field: $name,
            /// Ascending or descending.
            #[graphql(default)]
            pub direction: $crate::graphql::pagination::OrderDirection,
        }
    };
}

/// Complexity of a connection field: its page size times the cost of a row.
pub fn connection_cost(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let n = first.or(last).unwrap_or(20).clamp(1, 100);
    usize::try_from(n).unwrap_or(100) * child.max(1) + 1
}
