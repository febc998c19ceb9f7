//! The GraphiQL page for developers, served on `GET /graphql` to browsers
//! (on in development, off in production unless configured), with a
//! Content-Security-Policy that allows exactly what the page loads: the
//! pinned scripts and styles from unpkg, its one inline script by hash, and
//! requests back to this server.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

const PAGE: &str = include_str!("graphiql.html");
const SCRIPT: &str = include_str!("graphiql.js");

struct Page {
    html: String,
    csp: String,
}

fn page() -> &'static Page {
    static PAGE_CELL: OnceLock<Page> = OnceLock::new();
    PAGE_CELL.get_or_init(|| {
        let hash = STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
        Page {
            html: PAGE.replace("INLINE_SCRIPT", SCRIPT),
            csp: format!(
                "default-src 'none'; script-src https://unpkg.com 'sha256-{hash}'; \
                 style-src https://unpkg.com 'unsafe-inline'; img-src 'self' data: https://unpkg.com; \
                 font-src https://unpkg.com data:; connect-src 'self'; base-uri 'none'; \
                 form-action 'none'; frame-ancestors 'none'"
            ),
        }
    })
}

pub fn response() -> Response {
    let page = page();
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, page.csp.as_str()),
        ],
        page.html.clone(),
    )
        .into_response()
}
