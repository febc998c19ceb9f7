//! A booking's values: what it books, its statuses, and the slot grid
//! that makes two bookings overlap exactly when they share a slot.

pub use super::{ScheduleResourceType, ScheduleStatus};
use chrono::{DateTime, Duration, Timelike, Utc};

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
}
