//! The centre's equipment: asset categories, statuses and the rules on
//! serial numbers and warranty dates, shared by the API and the seed loader.

pub use super::{AssetCategory, AssetStatus};

impl AssetStatus {
    /// A new asset's status when none is given.
    pub const NEW: Self = Self::Available;
}

/// A serial number: 1 to 100 letters, digits, spaces and `- _ . /`.
pub fn serial_number(value: &str) -> Result<String, String> {
    let serial =
        crate::domain::text::required(value, 100).map_err(|m| format!("the serial number {m}"))?;
    if serial
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./ ".contains(c))
    {
        Ok(serial)
    } else {
        Err("a serial number has letters, digits, spaces and - _ . / only".into())
    }
}

/// A warranty cannot end before the purchase (`YYYY-MM-DD` strings compare as dates).
pub fn check_warranty(purchase: Option<&str>, warranty: Option<&str>) -> Result<(), String> {
    match (purchase, warranty) {
        (Some(p), Some(w)) if w < p => {
            Err("the warranty cannot end before the purchase date".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_and_warranties_are_checked() {
        assert_eq!(serial_number(" SN-1/2 "), Ok("SN-1/2".into()));
        assert!(serial_number("$where").is_err());
        assert!(check_warranty(Some("2026-01-02"), Some("2026-01-01")).is_err());
        assert!(check_warranty(Some("2026-01-02"), None).is_ok());
    }
}
