//! The GraphiQL page for developers, served on `GET /graphql` to browsers
//! (on in development, off in production unless configured). It needs no
//! internet: React, ReactDOM, graphql-ws and GraphiQL are pinned copies in
//! `assets/graphiql/` (fetched by `scripts/fetch-graphiql`, checked against
//! its `SHA256SUMS`), embedded in the binary and served on `/graphiql/<file>`
//! with year-long caching; the page's URLs carry each file's checksum so a
//! new version is a new URL. The Content-Security-Policy allows exactly what
//! the page uses: scripts and styles from this server, its one inline script
//! by hash, inline styles only with the response's nonce (GraphiQL's dialogs
//! add a scroll-lock `<style>`; the page's script gives it the nonce), fonts
//! and images inline, and requests back to this server over HTTP and
//! WebSocket.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Api;

const PAGE: &str = include_str!("graphiql.html");
const SCRIPT: &str = include_str!("graphiql.js");
const SHA256SUMS: &str = include_str!("../../assets/graphiql/SHA256SUMS");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file under `/graphiql/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "react.production.min.js",
        JS,
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        JS,
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "graphql-ws.min.js",
        JS,
        include_bytes!("../../assets/graphiql/graphql-ws.min.js"),
    ),
    (
        "graphiql.min.js",
        JS,
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        CSS,
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.LICENSE",
        TEXT,
        include_bytes!("../../assets/graphiql/react.LICENSE"),
    ),
    (
        "react-dom.LICENSE",
        TEXT,
        include_bytes!("../../assets/graphiql/react-dom.LICENSE"),
    ),
    (
        "graphql-ws.LICENSE",
        TEXT,
        include_bytes!("../../assets/graphiql/graphql-ws.LICENSE"),
    ),
    (
        "graphiql.LICENSE",
        TEXT,
        include_bytes!("../../assets/graphiql/graphiql.LICENSE"),
    ),
];

/// The committed checksum of an asset (`SHA256SUMS`, `sha256sum` format).
fn checksum(name: &str) -> Option<&'static str> {
    SHA256SUMS.lines().find_map(|line| {
        let (sum, file) = line.split_once("  ")?;
        (file == name).then_some(sum)
    })
}

struct Page {
    /// The HTML with `STYLE_NONCE` where each response puts its own.
    html: String,
    script_hash: String,
}

fn page() -> &'static Page {
    static PAGE_CELL: OnceLock<Page> = OnceLock::new();
    PAGE_CELL.get_or_init(|| {
        let mut html = PAGE.replace("INLINE_SCRIPT", SCRIPT);
        for (name, _, _) in ASSETS {
            let version = checksum(name).map_or("", |sum| sum.get(..16).unwrap_or(sum));
            html = html.replace(
                &format!("\"/graphiql/{name}\""),
                &format!("\"/graphiql/{name}?v={version}\""),
            );
        }
        Page {
            html,
            script_hash: STANDARD.encode(Sha256::digest(SCRIPT.as_bytes())),
        }
    })
}

/// The `Host` the browser used, when it is a plain `host[:port]` that can be
/// written into the policy.
fn plain_host(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| {
            (1..=255).contains(&host.len())
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
}

/// `connect-src 'self'` covers `ws:`/`wss:` to the same host only in browsers
/// that follow CSP 3 (older Safari releases do not), so the WebSocket origins
/// of the host the page was loaded from are listed as well.
fn policy(page: &Page, nonce: &str, headers: &HeaderMap) -> String {
    let sockets = plain_host(headers)
        .map(|host| format!(" ws://{host} wss://{host}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self' 'sha256-{}'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'{sockets}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        page.script_hash
    )
}

/// The page, for `GET /graphql` from a browser.
pub fn response(headers: &HeaderMap) -> Response {
    let page = page();
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let nonce = STANDARD.encode(bytes);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                policy(page, &nonce, headers),
            ),
        ],
        page.html.replace("STYLE_NONCE", &nonce),
    )
        .into_response()
}

/// `GET /graphiql/{file}`: an embedded asset, only while GraphiQL is on.
pub async fn asset(State(api): State<Api>, Path(file): Path<String>) -> Response {
    let found = ASSETS.iter().find(|(name, _, _)| *name == file);
    match found {
        Some((_, content_type, bytes)) if api.app.settings.server.graphiql => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            *bytes,
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_assets_match_the_committed_checksums() {
        for (name, _, bytes) in ASSETS {
            let sum = checksum(name).unwrap_or_else(|| panic!("{name} is not in SHA256SUMS"));
            assert_eq!(hex::encode(Sha256::digest(bytes)), sum, "{name}");
        }
        for line in SHA256SUMS.lines() {
            let (_, file) = line.split_once("  ").expect("a sha256sum line");
            assert!(
                ASSETS.iter().any(|(name, _, _)| *name == file),
                "{file} is in SHA256SUMS but not embedded"
            );
        }
    }

    #[test]
    fn every_asset_the_page_names_carries_its_checksum_and_is_embedded() {
        let html = &page().html;
        let mut named = 0;
        for reference in html.split("\"/graphiql/").skip(1) {
            let url = reference.split('"').next().unwrap_or_default();
            let (name, version) = url.split_once("?v=").expect("a versioned URL");
            assert!(ASSETS.iter().any(|(n, _, _)| *n == name), "{name}");
            assert_eq!(version.len(), 16, "{url}");
            assert!(checksum(name).is_some_and(|sum| sum.starts_with(version)));
            named += 1;
        }
        assert_eq!(named, 5, "four scripts and one stylesheet");
        assert!(!html.contains("unpkg") && !html.contains("https://"));
    }

    #[test]
    fn the_policy_names_the_websocket_origin_only_for_a_plain_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "clinic.local:8080".parse().expect("header"));
        let csp = policy(page(), "n", &headers);
        assert!(csp.contains("connect-src 'self' ws://clinic.local:8080 wss://clinic.local:8080;"));
        headers.insert(header::HOST, "a; script-src *".parse().expect("header"));
        let csp = policy(page(), "n", &headers);
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe") && !csp.contains("https:"), "{csp}");
    }
}
