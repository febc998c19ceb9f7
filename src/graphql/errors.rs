//! Gives every error in a response exactly one `extensions.code` from
//! `docs/errors.md`. async-graphql's own errors (validation, limits, input coercion)
//! carry none, so they are classified here; anything unexpected becomes a
//! generic `INTERNAL` with the request id, and its detail goes to the log.

use async_graphql::{ErrorExtensionValues, Response, ServerError, Value};

use crate::error::code;

/// Classifies errors without a code and adds the request id to INTERNAL ones.
pub fn finalize(mut response: Response, request_id: &str) -> Response {
    for error in &mut response.errors {
        let code = existing_code(error).unwrap_or_else(|| classify(error));
        if code == code::INTERNAL {
            tracing::error!(request_id, message = %error.message, path = ?error.path, "internal error");
            error.message = "internal server error".into();
        }
        let ext = error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        ext.set("code", code);
        if code == code::INTERNAL {
            ext.set("requestId", request_id);
        }
    }
    response
}

fn existing_code(error: &ServerError) -> Option<&'static str> {
    let ext = error.extensions.as_ref()?;
    match ext.get("code")? {
        Value::String(s) => KNOWN.iter().copied().find(|k| k == s),
        _ => None,
    }
}

const KNOWN: &[&str] = &[
    code::PARSE_FAILED,
    code::VALIDATION_FAILED,
    code::BAD_USER_INPUT,
    code::UNAUTHENTICATED,
    code::FORBIDDEN,
    code::NOT_FOUND,
    code::CONFLICT,
    code::RATE_LIMITED,
    code::QUERY_TOO_DEEP,
    code::QUERY_TOO_COMPLEX,
    code::TOO_MANY_ALIASES,
    code::TOO_MANY_ROOT_FIELDS,
    code::TOO_MANY_DIRECTIVES,
    code::QUERY_TOO_LONG,
    code::BATCH_TOO_LARGE,
    code::SERVICE_UNAVAILABLE,
    code::PERSISTED_QUERY_NOT_FOUND,
    code::PERSISTED_QUERY_REQUIRED,
    code::INTERNAL,
];

fn classify(error: &ServerError) -> &'static str {
    let message = error.message.as_str();
    if message.starts_with("Query is nested too deep") || message.contains("recursion limit") {
        code::QUERY_TOO_DEEP
    } else if message.starts_with("Query is too complex") {
        code::QUERY_TOO_COMPLEX
    } else if message.starts_with("The number of directives") {
        code::TOO_MANY_DIRECTIVES
    } else if message.starts_with("Failed to parse")
        || message.starts_with("Invalid value for argument")
        || message.starts_with("Expected input type")
    {
        // A variable or argument value that does not fit its type.
        code::VALIDATION_FAILED
    } else if error.path.is_empty() {
        // Errors raised before execution are validation errors.
        code::VALIDATION_FAILED
    } else {
        code::INTERNAL
    }
}
