//! The ceiling for `scripts/bench`: a bare axum handler on the same axum and
//! tokio as the server, answering every POST /graphql with a fixed body of the
//! shape `{ __typename }` gets. No GraphQL, no middleware, no database.
//! Usage: `plain 127.0.0.1:PORT`; stopped by a signal.

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;

const ANSWER: &str = r#"{"data":{"__typename":"Query"}}"#;

async fn answer(_body: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], ANSWER)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let app = Router::new().route("/graphql", post(answer));
    axum::serve(listener, app).await
}
