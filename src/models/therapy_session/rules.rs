//! A session's values: attendance, and the bounds on its score and length.

pub use super::Attendance;

/// A session's progress score: 0 to 100.
pub fn progress_score(value: i32) -> Result<i32, String> {
    if (0..=100).contains(&value) {
        Ok(value)
    } else {
        Err("a progress score is between 0 and 100".into())
    }
}

/// A session's length: 1 to 480 minutes.
pub fn session_minutes(value: i32) -> Result<i32, String> {
    if (1..=480).contains(&value) {
        Ok(value)
    } else {
        Err("a session lasts between 1 and 480 minutes".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_lengths_are_bounded() {
        assert!(progress_score(101).is_err());
        assert!(progress_score(0).is_ok());
        assert!(session_minutes(0).is_err());
    }
}
