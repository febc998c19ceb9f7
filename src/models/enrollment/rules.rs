//! An enrolment's statuses and the only moves between them.

pub use super::EnrollmentStatus;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
