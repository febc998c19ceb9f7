//! Free-text rules shared by every input: trimmed, bounded, printable.

/// Trims `value` and checks it has 1..=`max` characters and no control characters.
pub fn required(value: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    optional(trimmed, max)
}

/// Like `required`, but an empty string is allowed.
pub fn optional(value: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max {
        return Err(format!("must have at most {max} characters"));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_string())
}

/// Escapes `input` so it matches literally inside a regular expression.
pub fn regex_escape(input: &str) -> String {
    let mut out = String::with_capacity(input.len() * 2);
    for c in input.chars() {
        if "\\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `text` is written in JSON as it is, between quotes: no control
/// character, quote or backslash (one branch-free pass).
pub fn json_unescaped(text: &str) -> bool {
    text.as_bytes().iter().fold(true, |plain, &b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(regex_escape(".*$ne"), "\\.\\*\\$ne");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(required("  Chair ", 10), Ok("Chair".into()));
        assert!(required("   ", 10).is_err());
        assert!(required("abcdef", 3).is_err());
        assert!(optional("a\u{0}b", 10).is_err());
    }
}
