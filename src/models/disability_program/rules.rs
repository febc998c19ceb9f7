//! The bounds on a programme's name, text, places and length. Values are
//! checked once, at the edge, and trusted afterwards.

use crate::domain::text;

/// A programme's name: 1 to 200 characters.
pub fn name(value: String) -> Result<String, String> {
    text::required(&value, 200).map_err(|m| format!("the name {m}"))
}

/// What a programme offers: at most 2,000 characters.
pub fn description(value: String) -> Result<String, String> {
    text::optional(&value, 2000).map_err(|m| format!("the description {m}"))
}

/// A programme's places: 1 to 10,000.
pub fn capacity(value: i32) -> Result<i32, String> {
    if (1..=10_000).contains(&value) {
        Ok(value)
    } else {
        Err("a capacity is between 1 and 10000 places".into())
    }
}

/// A programme's length: 1 to 520 weeks.
pub fn duration_weeks(value: i32) -> Result<i32, String> {
    if (1..=520).contains(&value) {
        Ok(value)
    } else {
        Err("a programme lasts between 1 and 520 weeks".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_places_and_length_are_bounded() {
        assert!(name(" ".into()).is_err());
        assert!(description("x".repeat(2001)).is_err());
        assert!(capacity(0).is_err());
        assert!(capacity(10_000).is_ok());
        assert!(duration_weeks(521).is_err());
    }
}
