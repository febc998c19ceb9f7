//! Structured logs with `tracing`: JSON in production, human-readable
//! elsewhere; the level comes from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

use crate::config::Environment;

/// Installs the global subscriber; a second call is a no-op.
pub fn init(environment: Environment) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match environment {
        Environment::Production => builder.json().flatten_event(true).try_init(),
        _ => builder.try_init(),
    };
}
