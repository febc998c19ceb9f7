//! The schema's own scalars: `DateTime` (RFC 3339, UTC), `Date`
//! (`YYYY-MM-DD`) and `Long` (a 64-bit integer for money in minor units).

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};
use chrono::{NaiveDate, SecondsFormat, Utc};

/// An instant, written in RFC 3339 and always returned in UTC, e.g. `2026-11-28T09:30:00Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// An instant in RFC 3339, returned in UTC with milliseconds, e.g. `2026-11-28T09:30:00.000Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| {
                    InputValueError::custom(format!("{s:?} is not an RFC 3339 date-time"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl From<bson::DateTime> for DateTime {
    fn from(value: bson::DateTime) -> Self {
        Self(value.to_chrono())
    }
}

impl From<DateTime> for bson::DateTime {
    fn from(value: DateTime) -> Self {
        bson::DateTime::from_chrono(value.0)
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

/// A calendar date, `YYYY-MM-DD`.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not a YYYY-MM-DD date"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

impl Date {
    /// Reads a stored `YYYY-MM-DD` string.
    pub fn from_stored(value: &str) -> Option<Self> {
        NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().map(Date)
    }

    pub fn to_stored(self) -> String {
        self.0.format("%Y-%m-%d").to_string()
    }
}

/// A 64-bit signed integer. Accepts an integer literal (or a string of digits)
/// and is returned as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Long(pub i64);

/// A 64-bit signed integer (money in minor units); accepts an integer literal or a string of digits.
#[Scalar(name = "Long")]
impl ScalarType for Long {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n.as_i64().map(Long).ok_or_else(|| {
                InputValueError::custom("expected a whole number that fits in 64 bits")
            }),
            Value::String(s) => s
                .parse::<i64>()
                .map(Long)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not a whole number"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(n) if n.is_i64()) || matches!(value, Value::String(_))
    }

    fn to_value(&self) -> Value {
        Value::Number(Number::from(self.0))
    }
}
