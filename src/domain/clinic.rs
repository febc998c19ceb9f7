//! The clinic's vocabulary and rules that need no database: programme,
//! beneficiary, enrolment, session and booking values, each parsed once and
//! trusted afterwards. The API and the seed loader both go through these.

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};

stored_enum!(
    /// What a programme works on.
    ProgramCategory { Physical, Speech, Occupational, Behavioral, Educational, Vocational }
);
stored_enum!(
    /// Whether a programme takes enrolments.
    ProgramStatus { Active, Paused, Archived }
);
stored_enum!(
    /// A beneficiary's gender as recorded.
    Gender { Male, Female }
);
stored_enum!(
    /// How severe a disability is.
    Severity { Mild, Moderate, Severe, Profound }
);
stored_enum!(
    /// Whether a beneficiary is currently served.
    BeneficiaryStatus { Active, Inactive }
);
stored_enum!(
    /// Where an enrolment is in its life.
    EnrollmentStatus { Pending, Active, Completed, Withdrawn }
);
stored_enum!(
    /// Whether the beneficiary came to a session.
    Attendance { Attended, Absent, Cancelled }
);
stored_enum!(
    /// What a schedule books.
    ScheduleResourceType { Asset, Room, Therapist }
);
stored_enum!(
    /// Where a booking is in its life.
    ScheduleStatus { Scheduled, Cancelled, Completed }
);

impl EnrollmentStatus {
    /// PENDING and ACTIVE enrolments hold a place in their programme.
    pub fn holds_place(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }

    /// The only moves: PENDING → ACTIVE → COMPLETED, PENDING/ACTIVE → WITHDRAWN.
    pub fn may_move_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Active)
                | (Self::Active, Self::Completed)
                | (Self::Pending | Self::Active, Self::Withdrawn)
        )
    }
}

/// Bookings start and end on this grid, so that a booking is a set of
/// whole slots and two bookings overlap exactly when they share a slot.
pub const SLOT_MINUTES: i64 = 5;
/// The longest booking.
pub const MAX_BOOKING_HOURS: i64 = 12;

/// A validated booking interval: end after start, on the five-minute grid,
/// at most twelve hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingSpan {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl BookingSpan {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if end <= start {
            return Err("the end must be after the start".into());
        }
        if end - start > Duration::hours(MAX_BOOKING_HOURS) {
            return Err(format!("a booking lasts at most {MAX_BOOKING_HOURS} hours"));
        }
        for at in [start, end] {
            if at.second() != 0
                || at.nanosecond() != 0
                || i64::from(at.minute()) % SLOT_MINUTES != 0
            {
                return Err(format!(
                    "bookings start and end on whole {SLOT_MINUTES}-minute marks (e.g. 09:00, 09:05)"
                ));
            }
        }
        Ok(Self { start, end })
    }

    /// The start of every slot the booking covers (Unix minutes).
    pub fn slots(&self) -> Vec<i64> {
        let first = self.start.timestamp() / 60;
        let last = self.end.timestamp() / 60;
        (first..last).step_by(SLOT_MINUTES as usize).collect()
    }
}

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

/// A national id: 5 to 20 letters and digits, stored upper-cased so that
/// uniqueness ignores case.
pub fn national_id(value: &str) -> Result<String, String> {
    let id = value.trim().to_ascii_uppercase();
    if (5..=20).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err("a national id has 5 to 20 letters and digits".into())
    }
}

/// A birth date: not in the future, not more than 130 years ago.
pub fn date_of_birth(value: NaiveDate, today: NaiveDate) -> Result<NaiveDate, String> {
    if value > today {
        return Err("a date of birth cannot be in the future".into());
    }
    if today.years_since(value).is_none_or(|years| years > 130) {
        return Err("a date of birth is at most 130 years ago".into());
    }
    Ok(value)
}

/// A phone number: digits, spaces and `+-()`, 6 to 20 characters.
pub fn phone(value: &str) -> Result<String, String> {
    let phone = value.trim();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if (6..=20).contains(&phone.len())
        && digits >= 6
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
    {
        Ok(phone.to_string())
    } else {
        Err("a phone number has 6 to 20 digits, spaces and + - ( )".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, h, m, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn bookings_are_whole_slots_of_at_most_twelve_hours() {
        let span = BookingSpan::new(at(9, 0), at(9, 30)).expect("valid");
        assert_eq!(span.slots().len(), 6);
        assert!(BookingSpan::new(at(9, 0), at(9, 0)).is_err());
        assert!(BookingSpan::new(at(10, 0), at(9, 0)).is_err());
        assert!(BookingSpan::new(at(9, 1), at(9, 30)).is_err());
        assert!(BookingSpan::new(at(8, 0), at(20, 5)).is_err());
        assert_eq!(
            BookingSpan::new(at(8, 0), at(20, 0))
                .expect("12 h")
                .slots()
                .len(),
            144
        );
    }

    #[test]
    fn enrolment_statuses_move_forward_only() {
        use EnrollmentStatus::*;
        assert!(Pending.may_move_to(Active));
        assert!(Active.may_move_to(Completed));
        assert!(Pending.may_move_to(Withdrawn));
        assert!(Active.may_move_to(Withdrawn));
        assert!(!Pending.may_move_to(Completed));
        assert!(!Completed.may_move_to(Active));
        assert!(!Withdrawn.may_move_to(Pending));
        assert!(!Active.may_move_to(Active));
    }

    #[test]
    fn clinical_values_are_bounded() {
        assert!(progress_score(101).is_err());
        assert!(progress_score(0).is_ok());
        assert!(session_minutes(0).is_err());
        assert!(capacity(0).is_err());
        assert_eq!(national_id(" ab12345 "), Ok("AB12345".into()));
        assert!(national_id("{$ne:1}").is_err());
        assert!(phone("+966 50 123 4567").is_ok());
        assert!(phone("call me").is_err());
    }
}
