//! A beneficiary's values: gender, severity, status, and the rules for
//! national ids, birth dates and phone numbers. Parsed once, trusted afterwards.

pub use super::{BeneficiaryStatus, Gender, Severity};
use chrono::NaiveDate;

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

    #[test]
    fn identifying_values_are_bounded() {
        assert_eq!(national_id(" ab12345 "), Ok("AB12345".into()));
        assert!(national_id("{$ne:1}").is_err());
        assert!(phone("+966 50 123 4567").is_ok());
        assert!(phone("call me").is_err());
    }
}
