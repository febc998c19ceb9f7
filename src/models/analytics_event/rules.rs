//! What a client may record as an analytics event: a name like
//! `session.completed` (`^[a-z][a-z0-9_.]{0,63}$`), a finite value, and at
//! most 16 string dimensions with short keys and values.

/// Dimensions per event.
pub const MAX_DIMENSIONS: usize = 16;
pub const MAX_KEY: usize = 64;
pub const MAX_VALUE: usize = 256;

/// Why an event is refused: the input field and a message.
pub type Refusal = (&'static str, String);

pub fn check_name(name: &str) -> Result<(), Refusal> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err((
            "input.name",
            "an event name is 1 to 64 characters: a lower-case letter, then lower-case letters, digits, `_` or `.`".into(),
        ))
    }
}

pub fn check_value(value: Option<f64>) -> Result<(), Refusal> {
    match value {
        Some(v) if !v.is_finite() => {
            Err(("input.value", "the value must be a finite number".into()))
        }
        _ => Ok(()),
    }
}

/// The dimensions as (key, value) pairs, from a JSON object of strings.
pub fn check_dimensions(
    value: Option<&serde_json::Value>,
) -> Result<Vec<(String, String)>, Refusal> {
    let field = "input.dimensions";
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(object) = value.as_object() else {
        return Err((field, "dimensions are a JSON object of strings".into()));
    };
    if object.len() > MAX_DIMENSIONS {
        return Err((field, format!("at most {MAX_DIMENSIONS} dimensions")));
    }
    let mut pairs = Vec::with_capacity(object.len());
    for (key, value) in object {
        let Some(text) = value.as_str() else {
            return Err((field, format!("the dimension `{key}` must be a string")));
        };
        if key.is_empty()
            || key.len() > MAX_KEY
            || key.starts_with('$')
            || key.contains('.')
            || key.contains('\0')
        {
            return Err((
                field,
                format!(
                    "dimension keys are 1 to {MAX_KEY} characters, without `$` at the start, `.` or NUL"
                ),
            ));
        }
        if text.len() > MAX_VALUE {
            return Err((
                field,
                format!("the dimension `{key}` is longer than {MAX_VALUE} bytes"),
            ));
        }
        pairs.push((key.clone(), text.to_string()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dimensions_are_bounded() {
        assert!(check_name("session.completed").is_ok());
        for bad in ["", "Session", "1abc", "a-b", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let many: serde_json::Map<String, serde_json::Value> =
            (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(check_dimensions(Some(&serde_json::Value::Object(many))).is_err());
        assert!(check_dimensions(Some(&serde_json::json!({ "a": 1 }))).is_err());
        assert!(check_dimensions(Some(&serde_json::json!({ "$where": "x" }))).is_err());
        assert_eq!(
            check_dimensions(Some(&serde_json::json!({ "room": "3" }))),
            Ok(vec![("room".into(), "3".into())])
        );
        assert!(check_value(Some(f64::NAN)).is_err());
    }
}
