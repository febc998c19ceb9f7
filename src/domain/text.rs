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

/// Appends `text` as a JSON string, exactly as serde_json writes it. Text
/// with no control character, quote or backslash (ids, cursors, most names:
/// one branch-free pass tells) is copied between quotes as it is.
pub fn write_json_string<W: std::io::Write + ?Sized>(text: &str, out: &mut W) {
    let plain = text.as_bytes().iter().fold(true, |plain, &b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    });
    // Writing to memory cannot fail; a string always serialises.
    if plain {
        let _ = out.write_all(b"\"");
        let _ = out.write_all(text.as_bytes());
        let _ = out.write_all(b"\"");
    } else {
        let _ = serde_json::to_writer(out, text);
    }
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
