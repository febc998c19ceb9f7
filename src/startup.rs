//! The application: builds the state and the router, binds the listener
//! (port 0 works, for tests), serves HTTP or HTTPS on `server.threads`
//! single-threaded runtimes sharing that listener, and shuts down
//! gracefully: readiness turns 503, websockets close with 1001, the listener
//! stops after the drain delay, in-flight requests get the grace period.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum_server::Handle;

/// Memory kept for compressed bodies of cached answers.
const COMPRESSED_BODIES_BYTES: usize = 32 << 20;
use axum_server::tls_rustls::RustlsConfig;

use crate::auth::tokens::TokenKeys;
use crate::cache::Cache;
use crate::config::Settings;
use crate::cursor::CursorCodec;
use crate::db::Db;
use crate::events::EventBus;
use crate::graphql::{build_schema, build_schema_for_validated};
use crate::state::{AppState, Lifecycle};

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: Arc<AppState>,
}

/// Stores the counted uses of API keys every few seconds, and once more
/// when shutdown begins.
async fn key_uses_loop(state: Arc<AppState>) {
    loop {
        let running = crate::live::wait(&*state, Duration::from_secs(5)).await;
        if let Err(error) = state.key_uses.store(&state.db).await {
            tracing::warn!(%error, "storing API key uses failed; those uses go uncounted");
        }
        if !running {
            return;
        }
    }
}

/// The vault of `settings` over `db`'s server: the master keys from
/// `ALAWAEL_MASTER_KEY` or the key file (the published development key,
/// with a warning, when neither is given outside production).
pub fn open_vault(settings: &Settings, db: &Db) -> anyhow::Result<crate::vault::Vault> {
    use secrecy::ExposeSecret;
    let vault = &settings.vault;
    let text = match (&vault.master_keys, &vault.master_key_file) {
        (Some(keys), _) => keys.expose_secret().to_string(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the master key file {}", path.display()))?,
        (None, None) => {
            tracing::warn!(
                "no master key is set: personal data is sealed with the published development key (refused in production)"
            );
            crate::vault::DEVELOPMENT_MASTER_KEY.to_string()
        }
    };
    let masters = crate::vault::MasterKeys::parse(&text)?;
    let database = vault
        .database
        .clone()
        .unwrap_or_else(|| format!("{}_vault", db.name()));
    Ok(crate::vault::Vault::new(
        masters,
        db,
        &database,
        vault.key_cache,
    ))
}

impl Application {
    /// Connects to the database and Redis and binds `bind` (or the configured address).
    pub async fn build(settings: Settings, bind: Option<&str>) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database).await?;
        let cache = Cache::connect(&settings.redis).await?;
        Self::from_parts(settings, db, cache, bind)
    }

    /// Builds the application around handles made elsewhere (tests share them).
    pub fn from_parts(
        settings: Settings,
        db: Db,
        cache: Cache,
        bind: Option<&str>,
    ) -> anyhow::Result<Self> {
        crate::http::metrics::recorder();
        if settings.uses_development_secret() {
            tracing::warn!(
                "JWT_SECRET is not set: using the development secret (refused in production)"
            );
        }
        let bind = bind.unwrap_or(&settings.server.bind).to_string();
        let listener =
            TcpListener::bind(&bind).with_context(|| format!("cannot listen on {bind}"))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let bus = event_bus(&settings, db.name());
        let accounts = crate::auth::accounts::AccountCache::new(Duration::from_secs(
            settings.auth.account_cache_secs,
        ));
        cache.limit_texts(settings.documents.persisted_memory_bytes);
        let cache = Arc::new(cache);
        let settings_admission = settings.server.max_concurrent_operations;
        let responses = crate::response_cache::ResponseCache::new(
            cache.clone(),
            settings.response_cache.clone(),
            db.name(),
        );
        let vault = open_vault(&settings, &db)?;
        let state = Arc::new(AppState {
            vault,
            key_uses: Arc::default(),
            quotas: Arc::default(),
            tokens: TokenKeys::new(&settings.auth),
            cursors: CursorCodec::new(settings.auth.secret()),
            settings: Arc::new(settings),
            db,
            cache,
            bus,
            lifecycle: Arc::new(Lifecycle::default()),
            live: Arc::new(crate::live::Live::default()),
            accounts: Arc::new(accounts),
            responses,
            admission: Arc::new(tokio::sync::Semaphore::new(settings_admission)),
            trusted: Arc::new(crate::documents::trusted::Trusted::default()),
        });
        Ok(Self {
            listener,
            address,
            state,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Loads the trusted documents (an error when a configured source fails),
    /// then serves until SIGTERM or SIGINT, or until
    /// `state().lifecycle.begin_shutdown()`. SIGHUP reloads the trusted documents.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            address,
            state,
        } = self;
        let server_settings = state.settings.server.clone();
        let documents = &state.settings.documents;
        if documents.manifest.is_some() || documents.from_redis {
            let count =
                crate::documents::trusted::reload(&state.settings, state.db.name(), &state.trusted)
                    .await
                    .context("the trusted documents did not load")?;
            tracing::info!(
                count,
                trusted_only = documents.trusted_only,
                "trusted documents loaded"
            );
        }
        // Reloads the trusted documents on SIGHUP (and on changes of the Redis set).
        let _trusted = crate::live::Workers(vec![tokio::spawn(crate::documents::trusted::watch(
            state.settings.clone(),
            state.db.name().to_string(),
            state.bus.subscribe(),
            state.trusted.clone(),
        ))]);
        let tls = match (
            &server_settings.tls_cert_path,
            &server_settings.tls_key_path,
        ) {
            (Some(cert), Some(key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let tls = RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot read the TLS certificate {} or key {}",
                            cert.display(),
                            key.display()
                        )
                    })?;
                Some(tls)
            }
            _ => None,
        };
        let serving = Serving {
            documents: Arc::new(crate::documents::parsed::Documents::new(
                state.settings.graphql.clone(),
            )),
            schema: build_schema(&state.settings.graphql),
            validated_schema: build_schema_for_validated(&state.settings.graphql),
            hints: Arc::new(crate::response_cache::hints::Hints::of::<
                crate::graphql::Query,
            >()),
            compressed: Arc::new(crate::http::responses::Compressed::new(
                COMPRESSED_BODIES_BYTES,
            )),
            tls,
        };
        let threads = serving_threads(server_settings.threads);
        let mut handles = vec![Handle::new()];
        let mut others = Vec::new();
        for index in 1..threads {
            let handle = Handle::new();
            handles.push(handle.clone());
            let thread = replica_thread(
                index,
                listener.try_clone()?,
                state.clone(),
                serving.clone(),
                handle,
            )
            .context("cannot start a serving thread")?;
            others.push(thread);
        }
        let background = state.settings.server.background_workers;
        // Aborted when this future ends or is dropped.
        let _workers = crate::live::Workers(if background {
            crate::live::start(state.clone())
        } else {
            Vec::new()
        });
        // Drops cached accounts changed on any instance (not a database worker: always on).
        let _accounts = crate::live::Workers(vec![
            tokio::spawn(crate::live::accounts_loop(state.clone())),
            tokio::spawn(key_uses_loop(state.clone())),
        ]);
        let reports = (background && state.settings.reports.worker)
            .then(|| crate::reports::spawn(state.clone()));

        let watcher = {
            let (state, handles) = (state.clone(), handles.clone());
            tokio::spawn(async move {
                let mut closing = state.lifecycle.closing();
                tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = closing.wait_for(|c| *c) => {}
                }
                tracing::info!("shutting down: readiness is now 503");
                state.lifecycle.begin_shutdown();
                tokio::time::sleep(Duration::from_secs(server_settings.shutdown_drain_secs)).await;
                for handle in handles {
                    handle.graceful_shutdown(Some(Duration::from_secs(
                        server_settings.shutdown_grace_secs,
                    )));
                }
            })
        };

        let scheme = if serving.tls.is_some() {
            "HTTPS"
        } else {
            "HTTP"
        };
        tracing::info!(%address, threads, "serving {scheme}");
        let own = handles.swap_remove(0);
        let served = serve(listener, state.clone(), serving, own).await;
        // The other threads stop with this one (a server that stopped by
        // itself takes the others with it).
        for handle in &handles {
            handle.graceful_shutdown(Some(Duration::from_secs(
                server_settings.shutdown_grace_secs,
            )));
        }
        let others = tokio::task::spawn_blocking(move || {
            others
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a serving thread panicked")))
                })
                .collect::<Vec<_>>()
        })
        .await
        .context("the serving threads could not be joined")?;
        watcher.abort();
        if let Some(worker) = reports {
            // Stops the worker (it hands an unfinished report back) if the server stopped by itself.
            state.lifecycle.begin_shutdown();
            if tokio::time::timeout(Duration::from_secs(5), worker)
                .await
                .is_err()
            {
                tracing::warn!("the report worker did not stop in time");
            }
        }
        served.context("the server stopped with an error")?;
        for stopped in others {
            stopped.context("a serving thread stopped with an error")?;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// What every serving thread builds its router from.
#[derive(Clone)]
struct Serving {
    documents: Arc<crate::documents::parsed::Documents>,
    schema: crate::graphql::AlawaelSchema,
    validated_schema: crate::graphql::AlawaelSchema,
    hints: Arc<crate::response_cache::hints::Hints>,
    compressed: Arc<crate::http::responses::Compressed>,
    tls: Option<RustlsConfig>,
}

/// Serves `listener` with `app` until `handle` shuts it down.
async fn serve(
    listener: TcpListener,
    app: Arc<AppState>,
    serving: Serving,
    handle: Handle,
) -> std::io::Result<()> {
    let router = crate::http::router(crate::http::Api {
        documents: serving.documents,
        schema: serving.schema,
        validated_schema: serving.validated_schema,
        hints: serving.hints,
        compressed: serving.compressed,
        app,
    })
    .into_make_service_with_connect_info::<SocketAddr>();
    match serving.tls {
        Some(tls) => {
            axum_server::from_tcp_rustls(listener, tls)
                .handle(handle)
                .serve(router)
                .await
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(router)
                .await
        }
    }
}

/// `server.threads`, with 0 meaning one per CPU.
fn serving_threads(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

/// Another serving thread: a single-threaded runtime with the state's
/// replica (its own database client and Redis connection), accepting from
/// the same listening socket. One runtime per thread means a request's
/// tasks, database replies and timers wake only the thread it runs on.
fn replica_thread(
    index: usize,
    listener: TcpListener,
    state: Arc<AppState>,
    serving: Serving,
    handle: Handle,
) -> std::io::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    std::thread::Builder::new()
        .name(format!("alawael-serve-{index}"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot build a serving thread's runtime")?;
            runtime.block_on(async move {
                let replica = match state.replica() {
                    Ok(replica) => Arc::new(replica),
                    Err(error) => {
                        // One thread short would serve on quietly; stop instead.
                        state.lifecycle.begin_shutdown();
                        return Err(error.context("a serving thread could not connect"));
                    }
                };
                serve(listener, replica, serving, handle)
                    .await
                    .context("a serving thread stopped with an error")
            })
        })
}

/// The event bus: across instances through Redis when it is configured
/// (on a channel named after the database, so deployments sharing a Redis
/// stay apart), in process otherwise.
fn event_bus(settings: &Settings, database: &str) -> EventBus {
    const CAPACITY: usize = 1024;
    let Some(url) = &settings.redis.url else {
        return EventBus::new(CAPACITY);
    };
    match crate::cache::redis_client(&settings.redis, secrecy::ExposeSecret::expose_secret(url)) {
        Ok(client) => EventBus::with_redis(
            CAPACITY,
            client,
            crate::events::channel(database),
            crate::events::EventKey::of(settings),
        ),
        Err(error) => {
            tracing::warn!(%error, "the Redis URL is not usable for events; events stay on this instance");
            EventBus::new(CAPACITY)
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
