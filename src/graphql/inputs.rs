//! Reading the fields of update inputs the same way in every model: absent
//! leaves a field as it is, `null` clears it where clearing makes sense and
//! is refused where it does not, a value is checked before it is used.

use async_graphql::MaybeUndefined;

use super::scalars::DateTime;
use crate::domain::text;
use crate::error::{ApiError, ApiResult};

/// A span of time; either end may be open.
#[derive(async_graphql::InputObject, Default)]
pub struct DateTimeRange {
    /// From this instant, inclusive.
    pub from: Option<DateTime>,
    /// Up to this instant, exclusive.
    pub to: Option<DateTime>,
}

/// A field that may be cleared: `None` absent, `Some(None)` cleared, `Some(Some(v))` set.
pub fn clearable<T, U>(
    value: MaybeUndefined<T>,
    parse: impl FnOnce(T) -> ApiResult<U>,
) -> ApiResult<Option<Option<U>>> {
    Ok(match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(parse(v)?)),
    })
}

/// A field that must keep a value: `null` is `BAD_USER_INPUT` naming `field`.
pub fn required<T, U>(
    value: MaybeUndefined<T>,
    field: &str,
    parse: impl FnOnce(T) -> ApiResult<U>,
) -> ApiResult<Option<U>> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(ApiError::bad_input(
            field,
            format!("`{field}` cannot be cleared"),
        )),
        MaybeUndefined::Value(v) => parse(v).map(Some),
    }
}

/// Search text as a case-insensitive pattern: trimmed, at most 100
/// characters, regex-escaped; empty is no search.
pub fn search_pattern(search: Option<String>, field: &str) -> ApiResult<Option<String>> {
    match search {
        None => Ok(None),
        Some(s) => {
            let s = text::optional(&s, 100)
                .map_err(|m| ApiError::bad_input(field, format!("the search text {m}")))?;
            Ok((!s.is_empty()).then(|| text::regex_escape(&s)))
        }
    }
}
