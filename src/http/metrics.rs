//! Prometheus metrics: the process-wide recorder and `GET /metrics`.
//! Series: `alawael_graphql_requests_total{operation,outcome}`,
//! `alawael_graphql_request_duration_seconds{operation}`,
//! `alawael_db_commands_total{command,collection}`, pool gauges, and the
//! login counters.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Distinct operation names kept as labels; later ones count as `other`.
const MAX_OPERATION_LABELS: usize = 200;

/// Installs the recorder once per process; later calls return the same handle.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
            .expect("the bucket list is not empty");
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder was installed first (only in odd embeddings):
            // keep a private one so /metrics still answers.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// `GET /metrics`: for the bearer of `server.metrics_token` when one is
/// configured (401 otherwise), else for anyone only where
/// `server.metrics_public` (404 otherwise: operation names, login failures
/// and database commands are not for the public).
pub async fn render(
    axum::extract::State(api): axum::extract::State<super::Api>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let server = &api.app.settings.server;
    match &server.metrics_token {
        Some(token) => {
            use secrecy::ExposeSecret;
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !same(sent.as_bytes(), token.expose_secret().as_bytes()) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "metrics need the metrics token",
                )
                    .into_response();
            }
        }
        None if !server.metrics_public => return StatusCode::NOT_FOUND.into_response(),
        None => {}
    }
    let handle = recorder();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    // Hashed first, so the comparison does not reveal the token's length.
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// A label for an operation name that cannot grow without bound.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) =
        name.filter(|n| n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    else {
        return "anonymous".into();
    };
    let Ok(mut seen) = SEEN.get_or_init(|| Mutex::new(HashSet::new())).lock() else {
        return "other".into();
    };
    if seen.contains(name) || seen.len() < MAX_OPERATION_LABELS {
        seen.insert(name.to_string());
        name.to_string()
    } else {
        "other".into()
    }
}

pub fn record_request(operation: String, ok: bool, seconds: f64) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!("alawael_graphql_requests_total", "operation" => operation.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!("alawael_graphql_request_duration_seconds", "operation" => operation)
        .record(seconds);
}
