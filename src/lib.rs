//! Alawael: the GraphQL API of a rehabilitation centre's ERP.
//!
//! Requests flow one way: `http` (transport, auth header, documents,
//! caches, admission) → `graphql` (the engine: schema, pagination, loaders,
//! guards, the shared resolvers) → `models` (one folder per model: its
//! record, rules and API; `with_models!` lists them) → `db` (the handle,
//! stores, pages, scopes, migrations) → MongoDB or FerretDB. `events`
//! carries changes to subscriptions; `live` runs the workers (outbox,
//! webhooks, sweeper); `cache` is Redis or in-process; `reports` computes
//! requested reports in the background. See `docs/ARCHITECTURE.md`.

// The merged GraphQL roots nest deeply; the compiler's default query depth
// is not enough to lay out their resolvers.
#![recursion_limit = "256"]

pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod cursor;
pub mod db;
pub mod documents;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod live;
pub mod models;
pub mod reports;
pub mod response_cache;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod vault;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The `.rs` files at `path` (a file, or a folder read recursively).
    fn sources(path: &Path) -> Vec<PathBuf> {
        if path.is_file() {
            return vec![path.to_path_buf()];
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).expect("a source folder is readable") {
            let path = entry.expect("a source entry is readable").path();
            if path.is_dir() {
                files.extend(sources(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn the_lower_layers_never_name_the_api_error_or_async_graphql() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut lower: Vec<PathBuf> = ["auth", "cursor.rs", "state.rs", "db", "domain"]
            .iter()
            .flat_map(|part| sources(&src.join(part)))
            .collect();
        // A model's record, rules and seed sit below the engine too; its api.rs does not.
        for model in sources(&src.join("models")) {
            if model
                .file_name()
                .is_some_and(|n| n == "record.rs" || n == "rules.rs" || n == "seed.rs")
            {
                lower.push(model);
            }
        }
        assert!(lower.len() > 20, "the lower layers were not found");
        for file in lower {
            let text = std::fs::read_to_string(&file).expect("a source file is readable");
            for banned in ["crate::error", "async_graphql"] {
                assert!(
                    !text.contains(banned),
                    "{} mentions `{banned}`: lower layers return their own errors, \
                     converted to `ApiError` in src/error.rs",
                    file.display()
                );
            }
        }
    }
}
