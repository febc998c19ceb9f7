//! A programme's values: what it works on, whether it takes enrolments,
//! and the bounds on its places and length. Parsed once, trusted afterwards.

crate::stored_enum!(
    /// What a programme works on.
    ProgramCategory { Physical, Speech, Occupational, Behavioral, Educational, Vocational }
);
crate::stored_enum!(
    /// Whether a programme takes enrolments.
    ProgramStatus { Active, Paused, Archived }
);

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
    fn places_and_length_are_bounded() {
        assert!(capacity(0).is_err());
        assert!(capacity(10_000).is_ok());
        assert!(duration_weeks(521).is_err());
    }
}
