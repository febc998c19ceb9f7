//! Shared counters and small values: Redis when it is configured and up, an
//! in-process map otherwise (or while Redis is down), so requests keep
//! working, more slowly and per instance, without it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use tokio::sync::RwLock;

use crate::config::RedisSettings;

/// How Redis is doing, for readiness.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisHealth {
    NotConfigured,
    Up { latency_ms: u64 },
    Down,
}

pub struct Cache {
    client: Option<redis::Client>,
    manager: RwLock<Option<ConnectionManager>>,
    config: ConnectionManagerConfig,
    timeout: Duration,
    /// After a failed connection, Redis is not tried again before this instant,
    /// so a Redis outage adds at most one connection attempt per few seconds.
    retry_at: Mutex<Option<Instant>>,
    /// The in-process parts, shared by every serving thread's handle.
    local: Shared<(i64, Instant)>,
    /// Texts (persisted queries) kept in process, in front of Redis.
    texts: Arc<Mutex<Texts>>,
    /// Values kept in process while Redis is away (`put_new`, `put`).
    values: Shared<(String, Instant)>,
}

/// The texts kept in process, and their bytes (keys and texts), which stay
/// under `limit` however large or many the texts stored.
#[derive(Default)]
struct Texts {
    map: HashMap<String, (Arc<str>, Instant)>,
    bytes: usize,
    limit: usize,
}

/// The bytes of the in-process texts when nobody set a limit (8 MiB).
const TEXT_BYTES: usize = 8 << 20;

fn texts() -> Arc<Mutex<Texts>> {
    Arc::new(Mutex::new(Texts {
        limit: TEXT_BYTES,
        ..Texts::default()
    }))
}

/// A map kept in process, shared by the handles of every serving thread.
type Shared<V> = Arc<Mutex<HashMap<String, V>>>;

/// Texts kept in process at most; past it, expired ones go, then half.
const TEXTS: usize = 10_000;

/// How long Redis is left alone after a failed connection.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The Redis client of `settings`: `redis://` or, with TLS, `rediss://`
/// (a password goes in the URL, `rediss://:password@host:6380/`). A TLS
/// server is checked against the system's roots, or against `redis.ca_file`
/// (a private CA, PEM) when it is set.
pub fn redis_client(settings: &RedisSettings, url: &str) -> redis::RedisResult<redis::Client> {
    // TLS needs a process-wide crypto provider; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(ca) = &settings.ca_file else {
        return redis::Client::open(url);
    };
    let root_cert = std::fs::read(ca).map_err(|error| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "cannot read redis.ca_file",
            error.to_string(),
        ))
    })?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )
}

impl Cache {
    /// Connects when a URL is configured; a Redis that is down now is retried later.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(settings.response_timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .set_response_timeout(timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let client = match &settings.url {
            Some(url) => Some(redis_client(settings, url.expose_secret())?),
            None => None,
        };
        let cache = Self {
            client,
            manager: RwLock::new(None),
            config,
            timeout,
            retry_at: Mutex::new(None),
            local: Arc::default(),
            texts: texts(),
            values: Arc::default(),
        };
        if cache.client.is_some() && cache.manager().await.is_none() {
            tracing::warn!(
                "Redis is configured but not reachable; using the in-process cache until it is"
            );
        }
        Ok(cache)
    }

    pub fn local_only() -> Self {
        Self {
            client: None,
            manager: RwLock::new(None),
            config: ConnectionManagerConfig::new(),
            timeout: Duration::from_millis(500),
            retry_at: Mutex::new(None),
            local: Arc::default(),
            texts: texts(),
            values: Arc::default(),
        }
    }

    /// The same cache for another serving thread: its Redis connection is
    /// opened on the runtime that first uses it; the in-process counters and
    /// texts are this handle's.
    pub fn replica(&self) -> Self {
        Self {
            client: self.client.clone(),
            manager: RwLock::new(None),
            config: self.config.clone(),
            timeout: self.timeout,
            retry_at: Mutex::new(None),
            local: self.local.clone(),
            texts: self.texts.clone(),
            values: self.values.clone(),
        }
    }

    async fn manager(&self) -> Option<ConnectionManager> {
        let client = self.client.as_ref()?;
        if let Some(manager) = self.manager.read().await.clone() {
            return Some(manager);
        }
        let resting = |until: &Option<Instant>| until.is_some_and(|t| Instant::now() < t);
        if self.retry_at.lock().map(|r| resting(&r)).unwrap_or(false) {
            return None;
        }
        let mut slot = self.manager.try_write().ok()?;
        if slot.is_none() {
            let attempt = client.get_connection_manager_with_config(self.config.clone());
            match tokio::time::timeout(self.timeout * 2, attempt).await {
                Ok(Ok(manager)) => *slot = Some(manager),
                _ => {
                    if let Ok(mut retry) = self.retry_at.lock() {
                        *retry = Some(Instant::now() + RETRY_AFTER);
                    }
                }
            }
        }
        slot.clone()
    }

    /// Adds one to `key`, which expires `window` after its first increment;
    /// returns the new count and the seconds until it expires.
    pub async fn increment(&self, key: &str, window: Duration) -> (i64, u64) {
        if let Some(mut redis) = self.manager().await {
            let secs = window.as_secs().max(1);
            let script = redis::Script::new(
                "local n = redis.call('INCR', KEYS[1]) \
                 if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end \
                 return {n, redis.call('TTL', KEYS[1])}",
            );
            let mut invocation = script.key(key);
            invocation.arg(secs);
            let call = invocation.invoke_async::<(i64, i64)>(&mut redis);
            match tokio::time::timeout(self.timeout, call).await {
                Ok(Ok((count, ttl))) => return (count, u64::try_from(ttl).unwrap_or(secs)),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Redis increment failed; counting in process")
                }
                Err(_) => tracing::warn!("Redis increment timed out; counting in process"),
            }
        }
        self.local_increment(key, window)
    }

    fn local_increment(&self, key: &str, window: Duration) -> (i64, u64) {
        let now = Instant::now();
        let Ok(mut map) = self.local.lock() else {
            return (1, window.as_secs());
        };
        if map.len() > 100_000 {
            map.retain(|_, (_, until)| *until > now);
        }
        let entry = map.entry(key.to_string()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        (
            entry.0,
            entry.1.saturating_duration_since(now).as_secs().max(1),
        )
    }

    /// Stores `value` under `key` for `ttl` unless the key exists; whether
    /// it was stored (in Redis, or in this process without it).
    pub async fn put_new(&self, key: &str, value: &str, ttl: Duration) -> bool {
        if let Some(mut redis) = self.manager().await {
            let mut command = redis::cmd("SET");
            command
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64);
            let call = command.query_async::<Option<String>>(&mut redis);
            if let Ok(Ok(stored)) = tokio::time::timeout(self.timeout, call).await {
                return stored.is_some();
            }
        }
        let now = Instant::now();
        let Ok(mut values) = self.values.lock() else {
            return false;
        };
        if values.len() > 100_000 {
            values.retain(|_, (_, until)| *until > now);
        }
        match values.get(key) {
            Some((_, until)) if *until > now => false,
            _ => {
                values.insert(key.to_string(), (value.to_string(), now + ttl));
                true
            }
        }
    }

    /// Replaces `key`'s value for `ttl` (in Redis, or in this process).
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) {
        if let Some(mut redis) = self.manager().await {
            let mut command = redis::cmd("SET");
            command
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl.as_millis() as u64);
            let call = command.query_async::<()>(&mut redis);
            if let Ok(Ok(())) = tokio::time::timeout(self.timeout, call).await {
                return;
            }
        }
        if let Ok(mut values) = self.values.lock() {
            values.insert(key.to_string(), (value.to_string(), Instant::now() + ttl));
        }
    }

    /// The value of `key`, if any (from Redis, or this process without it).
    pub async fn fetch(&self, key: &str) -> Option<String> {
        if let Some(mut redis) = self.manager().await {
            let call = redis.get::<_, Option<String>>(key);
            if let Ok(Ok(found)) = tokio::time::timeout(self.timeout, call).await {
                return found;
            }
        }
        let values = self.values.lock().ok()?;
        let (value, until) = values.get(key)?;
        (*until > Instant::now()).then(|| value.clone())
    }

    /// Runs a script over `key` in Redis that answers `{flag, text}`;
    /// `None` when Redis is not configured, down or slow (the caller then
    /// keeps the state in process).
    pub async fn run_script(
        &self,
        script: &str,
        key: &str,
        args: &[String],
    ) -> Option<(bool, String)> {
        let mut redis = self.manager().await?;
        let script = redis::Script::new(script);
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        let call = invocation.invoke_async::<(i64, String)>(&mut redis);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((flag, text))) => Some((flag == 1, text)),
            Ok(Err(error)) => {
                tracing::warn!(%error, "a Redis script failed; kept in process");
                None
            }
            Err(_) => None,
        }
    }

    /// The current count of `key` and seconds until it resets (0, 0 when unset).
    pub async fn count(&self, key: &str) -> (i64, u64) {
        if let Some(mut redis) = self.manager().await {
            let call = async {
                let count: Option<i64> = redis.get(key).await?;
                let ttl: i64 = redis.ttl(key).await?;
                Ok::<_, redis::RedisError>((count.unwrap_or(0), u64::try_from(ttl).unwrap_or(0)))
            };
            if let Ok(Ok(found)) = tokio::time::timeout(self.timeout, call).await {
                return found;
            }
        }
        let now = Instant::now();
        self.local
            .lock()
            .ok()
            .and_then(|map| map.get(key).copied())
            .filter(|(_, until)| *until > now)
            .map(|(n, until)| (n, until.saturating_duration_since(now).as_secs().max(1)))
            .unwrap_or((0, 0))
    }

    /// Takes one back from `key` (an attempt that turned out fine).
    pub async fn decrement(&self, key: &str) {
        if let Some(mut redis) = self.manager().await {
            let script = redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end return 0",
            );
            let invocation = script.key(key);
            if let Ok(Ok(_)) =
                tokio::time::timeout(self.timeout, invocation.invoke_async::<i64>(&mut redis)).await
            {
                return;
            }
        }
        if let Ok(mut map) = self.local.lock()
            && let Some(entry) = map.get_mut(key)
        {
            entry.0 = (entry.0 - 1).max(0);
        }
    }

    pub async fn delete(&self, key: &str) {
        if let Some(mut redis) = self.manager().await {
            let _ = tokio::time::timeout(self.timeout, redis.del::<_, ()>(key)).await;
        }
        if let Ok(mut map) = self.local.lock() {
            map.remove(key);
        }
    }

    /// A text stored with `set_text`: from this process when it has it,
    /// else from Redis (then kept here too).
    pub async fn get_text(&self, key: &str, ttl: Duration) -> Option<Arc<str>> {
        let now = Instant::now();
        if let Ok(texts) = self.texts.lock()
            && let Some((text, until)) = texts.map.get(key)
            && *until > now
        {
            return Some(text.clone());
        }
        let mut redis = self.manager().await?;
        let found = tokio::time::timeout(self.timeout, redis.get::<_, Option<String>>(key)).await;
        let text: Arc<str> = Arc::from(found.ok()?.ok()??);
        self.keep_text(key, text.clone(), ttl);
        Some(text)
    }

    /// Stores a text for `ttl`, here and in Redis (shared by every instance).
    pub async fn set_text(&self, key: &str, text: &str, ttl: Duration) {
        self.keep_text(key, Arc::from(text), ttl);
        if let Some(mut redis) = self.manager().await {
            let secs = ttl.as_secs().max(1);
            let stored = redis.set_ex::<_, _, ()>(key, text, secs);
            if !matches!(tokio::time::timeout(self.timeout, stored).await, Ok(Ok(()))) {
                tracing::warn!("storing a text in Redis failed; it is kept in this process only");
            }
        }
    }

    fn keep_text(&self, key: &str, text: Arc<str>, ttl: Duration) {
        let now = Instant::now();
        let size = key.len() + text.len();
        let Ok(mut texts) = self.texts.lock() else {
            return;
        };
        let texts = &mut *texts;
        if let Some((old, _)) = texts.map.remove(key) {
            texts.bytes -= key.len() + old.len();
        }
        // A text larger than the whole tier lives in Redis only.
        if size > texts.limit {
            return;
        }
        if texts.map.len() >= TEXTS || texts.bytes + size > texts.limit {
            texts.map.retain(|_, (_, until)| *until > now);
            texts.bytes = texts.map.iter().map(|(k, (t, _))| k.len() + t.len()).sum();
        }
        while texts.map.len() >= TEXTS || texts.bytes + size > texts.limit {
            let Some(victim) = texts.map.keys().next().cloned() else {
                break;
            };
            if let Some((gone, _)) = texts.map.remove(&victim) {
                texts.bytes -= victim.len() + gone.len();
            }
        }
        texts.bytes += size;
        texts.map.insert(key.to_string(), (text, now + ttl));
    }

    /// Keeps at most `bytes` of texts in this process (`documents.persisted_memory_bytes`).
    pub fn limit_texts(&self, bytes: usize) {
        if let Ok(mut texts) = self.texts.lock() {
            texts.limit = bytes;
            texts.map.clear();
            texts.bytes = 0;
        }
    }

    /// The bytes of texts kept in this process now.
    pub fn text_bytes(&self) -> usize {
        self.texts.lock().map(|t| t.bytes).unwrap_or(0)
    }

    /// Whether Redis is configured (whether or not it is up now).
    pub fn is_shared(&self) -> bool {
        self.client.is_some()
    }

    /// Several values from Redis in one round trip; `None` when Redis is
    /// not configured, down or slow.
    pub async fn shared_get_many(&self, keys: &[String]) -> Option<Vec<Option<String>>> {
        let mut redis = self.manager().await?;
        let mut command = redis::cmd("MGET");
        for key in keys {
            command.arg(key);
        }
        let call = command.query_async::<Vec<Option<String>>>(&mut redis);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(values)) if values.len() == keys.len() => Some(values),
            _ => None,
        }
    }

    /// Stores the concatenation of `parts` under `key` for `ttl`, written
    /// straight into the command (no joined copy of a large value first);
    /// false when Redis did not take it.
    pub async fn shared_set(&self, key: &str, parts: &[&str], ttl: Duration) -> bool {
        let Some(mut redis) = self.manager().await else {
            return false;
        };
        let mut command = redis::cmd("SET");
        command
            .arg(key)
            .arg(Joined(parts))
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let stored = command.query_async::<()>(&mut redis);
        matches!(tokio::time::timeout(self.timeout, stored).await, Ok(Ok(())))
    }

    /// Adds one to each key in one round trip (`expire`: each key then
    /// lives that long, else forever); false when Redis did not take it.
    pub async fn shared_bump(&self, keys: &[(String, Option<Duration>)]) -> bool {
        let Some(mut redis) = self.manager().await else {
            return false;
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, expire) in keys {
            pipe.incr(key, 1).ignore();
            if let Some(expire) = expire {
                pipe.expire(key, i64::try_from(expire.as_secs()).unwrap_or(i64::MAX))
                    .ignore();
            }
        }
        let call = pipe.query_async::<()>(&mut redis);
        matches!(tokio::time::timeout(self.timeout, call).await, Ok(Ok(())))
    }

    pub async fn health(&self) -> RedisHealth {
        if self.client.is_none() {
            return RedisHealth::NotConfigured;
        }
        let Some(mut redis) = self.manager().await else {
            return RedisHealth::Down;
        };
        let started = Instant::now();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut redis);
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(_)) => RedisHealth::Up {
                latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
            _ => RedisHealth::Down,
        }
    }
}

/// Texts sent to Redis as one argument.
struct Joined<'a>(&'a [&'a str]);

impl redis::ToRedisArgs for Joined<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        for part in self.0 {
            // Writing to the command's own buffer cannot fail.
            let _ = std::io::Write::write_all(&mut arg, part.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texts_kept_in_process_stay_under_their_byte_limit() {
        let cache = Cache::local_only();
        cache.limit_texts(1_000);
        let ttl = Duration::from_secs(60);
        for i in 0..100 {
            cache.keep_text(&format!("k{i}"), Arc::from("x".repeat(90)), ttl);
            assert!(cache.text_bytes() <= 1_000, "{}", cache.text_bytes());
        }
        assert!(cache.text_bytes() > 800, "the tier is used");
        // A text larger than the whole tier is not kept here at all.
        cache.keep_text("huge", Arc::from("x".repeat(5_000)), ttl);
        assert!(cache.text_bytes() <= 1_000);
        // Replacing a text counts its bytes once.
        cache.limit_texts(1_000);
        cache.keep_text("same", Arc::from("x".repeat(100)), ttl);
        cache.keep_text("same", Arc::from("x".repeat(100)), ttl);
        assert_eq!(cache.text_bytes(), 104);
    }
}
