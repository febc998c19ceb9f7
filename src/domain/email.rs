//! E-mail addresses, stored in their canonical lower-cased form so that
//! uniqueness is case-insensitive on every server.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and lower-cases an address; `Err` says what is wrong.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let value = input.trim().to_lowercase();
        if value.len() > 254 {
            return Err("an e-mail address has at most 254 characters");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err("an e-mail address needs an @");
        };
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        if !local_ok || !domain_ok {
            return Err("this is not a valid e-mail address");
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            Email::parse(" Admin@Alawael.Local ").map(|e| e.0),
            Ok("admin@alawael.local".into())
        );
        assert!(Email::parse("no-at-sign").is_err());
        assert!(Email::parse("a@b..c").is_err());
        assert!(Email::parse("{\"$ne\":1}@x.y").is_err());
    }
}
