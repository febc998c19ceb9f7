//! The HTTP router: `/graphql` (POST, GET, GraphiQL), `/graphql/ws`,
//! `/graphiql/<file>` (GraphiQL's embedded scripts and styles),
//! `/health/live`, `/health/ready`, `/metrics`, and the tower-http
//! middleware around them (request id, tracing, CORS, compression, timeout,
//! security headers, panic catching).

pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod quota;
pub mod responses;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::graphql::AlawaelSchema;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id set by the middleware (or sent by a trusted proxy).
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The client's address: the socket peer; behind trusted proxies
/// (`server.trust_forwarded_for`), the first `X-Forwarded-For` entry read
/// from the right that is not one of `server.trusted_proxies` (when none is
/// listed, the peer is the one proxy and the rightmost entry is the client).
/// Entries to the left of it are the client's own words and never chosen.
pub fn client_address(
    headers: &HeaderMap,
    peer: SocketAddr,
    server: &crate::config::ServerSettings,
) -> String {
    let trusted = |ip: &std::net::IpAddr| {
        server.trusted_proxies.is_empty() && *ip == peer.ip()
            || server.trusted_proxies.iter().any(|net| net.contains(ip))
    };
    if !server.trust_forwarded_for || !trusted(&peer.ip()) {
        return peer.ip().to_string();
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.parse::<std::net::IpAddr>() else {
            // A malformed hop: nothing to its left can be believed.
            break;
        };
        if server.trusted_proxies.is_empty() || !trusted(&ip) {
            return ip.to_string();
        }
    }
    peer.ip().to_string()
}

/// The client's `User-Agent`, printable and at most 200 characters.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let agent: String = agent
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    (!agent.is_empty()).then_some(agent)
}

/// Keeps a caller's `x-request-id` only when it is a short plain token, so
/// logs and error extensions never carry arbitrary client text; otherwise a
/// fresh id is made.
async fn drop_unusable_request_id<B>(mut request: Request<B>) -> Request<B> {
    let usable = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            (1..=64).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        });
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// A panic in a handler: logged, and answered as a generic `INTERNAL` error.
fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let detail = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(%detail, "a request handler panicked");
    let body = serde_json::json!({ "errors": [{ "message": "internal server error", "extensions": { "code": crate::error::code::INTERNAL } }] });
    axum::response::IntoResponse::into_response((
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    ))
}

/// What the handlers share: the application state and the schema (built
/// above the layers below, which know nothing of GraphQL).
#[derive(Clone)]
pub struct Api {
    pub app: Arc<AppState>,
    pub schema: AlawaelSchema,
    /// The same schema for documents it has validated before (see
    /// `graphql::build_schema_for_validated`).
    pub validated_schema: AlawaelSchema,
    /// Documents already parsed and limit-checked, by their hash.
    pub documents: Arc<crate::documents::parsed::Documents>,
    /// The cache hints of the query root's fields and types.
    pub hints: Arc<crate::response_cache::hints::Hints>,
    /// Compressed bodies of answers read from the response cache.
    pub compressed: Arc<responses::Compressed>,
}

impl axum::extract::FromRef<Api> for Arc<AppState> {
    fn from_ref(api: &Api) -> Self {
        api.app.clone()
    }
}

/// Responses of at least this many bytes are compressed for clients that
/// accept it; a smaller one would gain a few bytes for the cost of setting
/// up a compressor (a few hundred kilobytes of tables per response).
pub const COMPRESS_FROM_BYTES: u16 = 1024;

/// gzip at its fastest level: a page of 100 rows shrinks almost as much as
/// at the default level, for a fraction of the CPU.
fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(
            SizeAbove::new(COMPRESS_FROM_BYTES)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE),
        )
}

pub fn router(api: Api) -> Router {
    let state = api.app.clone();
    let server = &state.settings.server;
    let cors = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
        .expose_headers([REQUEST_ID])
        .allow_origin(AllowOrigin::list(
            server
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
        .max_age(Duration::from_secs(600));
    let mut security = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    if server.tls_cert_path.is_some() {
        security.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    let timeout = Duration::from_secs(server.request_timeout_secs);

    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::render))
        // /graphql reads its body with its own limit, to answer 413 in the GraphQL error shape.
        .layer(DefaultBodyLimit::max(server.body_limit_bytes))
        .with_state(api);
    for (name, value) in security {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::map_request(drop_unusable_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(cors)
            .layer(compression())
            .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout)),
    )
}
