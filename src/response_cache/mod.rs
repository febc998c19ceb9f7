//! The response cache's store. An answer is kept under a key made of its
//! document, variables, role and scope, together with the generations of
//! what it shows: entity types (`Asset`) and single rows (`Asset#<id>`).
//! Every audited write bumps the generation of its entity type and of its
//! row, so an answer whose recorded generations are no longer the current
//! ones is stale and is computed again.
//!
//! With Redis configured, answers and generations are shared by every
//! instance and a lookup is one `MGET` (the answer and the current
//! generations together), so a write made on one instance is seen by the
//! next read on any other. Without Redis they live in this process. With
//! Redis configured but unreachable nothing is cached: other instances
//! could not learn of this one's writes. Bumps that could not reach Redis
//! are sent before the next lookup.

pub mod hints;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use tokio::sync::watch;

use crate::cache::Cache;
use crate::config::ResponseCacheSettings;

/// What a lookup found.
pub enum Lookup {
    /// The cache cannot be used now (Redis configured but unreachable).
    Unavailable,
    /// `found` is the stored answer when it is current; the ticket stores
    /// a fresh one under the generations read now.
    Ready {
        found: Option<Arc<str>>,
        ticket: Ticket,
    },
}

impl Lookup {
    fn ready(found: Option<Arc<str>>, key: String, generations: String, ttl: Duration) -> Self {
        Self::Ready {
            found,
            ticket: Ticket {
                key,
                generations,
                ttl,
            },
        }
    }
}

/// Where and how to store an answer computed after a lookup.
pub struct Ticket {
    key: String,
    generations: String,
    ttl: Duration,
}

struct Entry {
    generations: String,
    data: Arc<str>,
    until: Instant,
}

#[derive(Default)]
struct Local {
    entries: HashMap<String, Entry>,
    generations: HashMap<String, u64>,
}

/// Answers being computed now, by key.
type Flights = Arc<Mutex<HashMap<String, watch::Receiver<Option<Arc<str>>>>>>;

/// A request that missed: it computes the answer (`Lead`), or another
/// request of this process is already computing the same one and this one
/// waits for it (`Follow`), so an answer that expires under load is
/// computed once, not once per waiting request.
pub enum Flight {
    Lead(Leader),
    Follow(watch::Receiver<Option<Arc<str>>>),
}

/// The request computing an answer; its followers get what it lands, or
/// compute it themselves if it ends without landing one.
pub struct Leader {
    key: String,
    flights: Flights,
    answer: watch::Sender<Option<Arc<str>>>,
}

impl Leader {
    pub fn land(&self, data: Arc<str>) {
        let _ = self.answer.send(Some(data));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Ok(mut flights) = self.flights.lock() {
            flights.remove(&self.key);
        }
    }
}

/// What a follower waits for: the leader's answer, or `None` when the
/// leader ended without one (an error) or did not land it within `wait`.
pub async fn follow(
    mut answer: watch::Receiver<Option<Arc<str>>>,
    wait: Duration,
) -> Option<Arc<str>> {
    let landed = tokio::time::timeout(wait, answer.wait_for(Option::is_some)).await;
    match landed {
        Ok(Ok(data)) => data.clone(),
        _ => None,
    }
}

pub struct ResponseCache {
    cache: Arc<Cache>,
    flights: Flights,
    settings: ResponseCacheSettings,
    prefix: String,
    /// The in-process parts, shared by every serving thread's handle.
    local: Arc<Mutex<Local>>,
    /// Generation bumps Redis did not take yet.
    unsent: Arc<Mutex<HashSet<String>>>,
}

/// Bumps kept for Redis at most while it is away; row bumps past it are
/// dropped (their answers still expire with their max age).
const UNSENT: usize = 10_000;

/// The generation name of an entity type.
pub fn entity(name: &str) -> String {
    name.to_string()
}

/// The generation name of one row.
pub fn row(entity: &str, id: ObjectId) -> String {
    format!("{entity}#{}", id.to_hex())
}

impl ResponseCache {
    pub fn new(cache: Arc<Cache>, settings: ResponseCacheSettings, database: &str) -> Self {
        Self {
            cache,
            flights: Flights::default(),
            settings,
            prefix: format!("{database}:rc:"),
            local: Arc::default(),
            unsent: Arc::default(),
        }
    }

    /// The same cache for another serving thread, through its own `cache`
    /// handle; answers and generations kept in process are shared.
    pub fn replica(&self, cache: Arc<Cache>) -> Self {
        Self {
            cache,
            flights: self.flights.clone(),
            settings: self.settings.clone(),
            prefix: self.prefix.clone(),
            local: self.local.clone(),
            unsent: self.unsent.clone(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Leads the computation of the answer under `digest`, or follows the
    /// request of this process that already does.
    pub fn flight(&self, digest: &str) -> Flight {
        let Ok(mut flights) = self.flights.lock() else {
            let (answer, _) = watch::channel(None);
            return Flight::Lead(Leader {
                key: digest.to_string(),
                flights: Flights::default(),
                answer,
            });
        };
        if let Some(answer) = flights.get(digest) {
            return Flight::Follow(answer.clone());
        }
        let (answer, receiver) = watch::channel(None);
        flights.insert(digest.to_string(), receiver);
        Flight::Lead(Leader {
            key: digest.to_string(),
            flights: self.flights.clone(),
            answer,
        })
    }

    /// The longest an answer may be kept.
    pub fn max_age_cap(&self) -> u32 {
        self.settings.max_age_cap_secs
    }

    /// Row generations outlive every answer that recorded them.
    fn row_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.max_age_cap_secs) * 2 + 86_400)
    }

    fn generation_key(&self, name: &str) -> String {
        format!("{}gen:{name}", self.prefix)
    }

    /// The answer stored under `digest` when it is current. `dependencies`
    /// are the generation names the answer shows; `ttl`, its max age.
    pub async fn lookup(&self, digest: &str, dependencies: &[String], ttl: Duration) -> Lookup {
        self.read(digest, dependencies, ttl, true).await
    }

    /// A ticket to store a fresh answer under the generations read now,
    /// without reading the stored one: the request asked for a fresh answer
    /// (`Cache-Control: no-cache`).
    pub async fn renewal(&self, digest: &str, dependencies: &[String], ttl: Duration) -> Lookup {
        self.read(digest, dependencies, ttl, false).await
    }

    async fn read(
        &self,
        digest: &str,
        dependencies: &[String],
        ttl: Duration,
        with_answer: bool,
    ) -> Lookup {
        let key = format!("{}a:{digest}", self.prefix);
        if !self.cache.is_shared() {
            let found = self.local_lookup(key, dependencies, ttl);
            return match found {
                Lookup::Ready { ticket, .. } if !with_answer => Lookup::Ready {
                    found: None,
                    ticket,
                },
                other => other,
            };
        }
        if !self.send_unsent().await {
            return Lookup::Unavailable;
        }
        let mut keys = Vec::with_capacity(dependencies.len() + 1);
        if with_answer {
            keys.push(key.clone());
        }
        keys.extend(dependencies.iter().map(|d| self.generation_key(d)));
        let values = if keys.is_empty() {
            Vec::new()
        } else {
            match self.cache.shared_get_many(&keys).await {
                Some(values) => values,
                None => return Lookup::Unavailable,
            }
        };
        let (stored, generations) = match with_answer {
            true => values
                .split_first()
                .map_or((None, &[][..]), |(s, g)| (s.as_deref(), g)),
            false => (None, &values[..]),
        };
        let generations = generations
            .iter()
            .map(|v| v.as_deref().unwrap_or("0"))
            .collect::<Vec<_>>()
            .join(",");
        let found = stored.and_then(|stored| {
            let (recorded, data) = stored.split_once('\n')?;
            (recorded == generations).then(|| Arc::from(data))
        });
        Lookup::ready(found, key, generations, ttl)
    }

    fn local_lookup(&self, key: String, dependencies: &[String], ttl: Duration) -> Lookup {
        let Ok(local) = self.local.lock() else {
            return Lookup::Unavailable;
        };
        let generations = dependencies
            .iter()
            .map(|d| local.generations.get(d).copied().unwrap_or(0).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let now = Instant::now();
        let found = local
            .entries
            .get(&key)
            .filter(|e| e.until > now && e.generations == generations)
            .map(|e| e.data.clone());
        Lookup::ready(found, key, generations, ttl)
    }

    /// Keeps an answer (`data`, the JSON of its `data`) under a ticket.
    pub async fn store(&self, ticket: Ticket, data: &str) {
        if data.len() > self.settings.max_entry_bytes {
            return;
        }
        if self.cache.is_shared() {
            let value = [ticket.generations.as_str(), "\n", data];
            if !self.cache.shared_set(&ticket.key, &value, ticket.ttl).await {
                tracing::warn!("storing an answer in Redis failed; it is computed again next time");
            }
            return;
        }
        let now = Instant::now();
        let Ok(mut local) = self.local.lock() else {
            return;
        };
        if local.entries.len() >= self.settings.local_entries {
            local.entries.retain(|_, e| e.until > now);
            if local.entries.len() >= self.settings.local_entries {
                let drop: Vec<String> = local
                    .entries
                    .keys()
                    .take(local.entries.len() / 2 + 1)
                    .cloned()
                    .collect();
                for key in drop {
                    local.entries.remove(&key);
                }
            }
        }
        local.entries.insert(
            ticket.key,
            Entry {
                generations: ticket.generations,
                data: Arc::from(data),
                until: now + ticket.ttl,
            },
        );
    }

    /// A write changed row `id` of `entity`: answers showing that type or
    /// that row are stale from now on, on every instance.
    pub async fn invalidate(&self, entity_name: &str, id: ObjectId) {
        metrics::counter!("alawael_response_cache_invalidations_total", "entity" => entity_name.to_string())
            .increment(1);
        let names = [entity(entity_name), row(entity_name, id)];
        if !self.cache.is_shared() {
            if let Ok(mut local) = self.local.lock() {
                for name in names {
                    *local.generations.entry(name).or_insert(0) += 1;
                }
            }
            return;
        }
        let bumps = vec![
            (self.generation_key(&names[0]), None),
            (self.generation_key(&names[1]), Some(self.row_lifetime())),
        ];
        if !self.cache.shared_bump(&bumps).await {
            tracing::warn!(
                entity = entity_name,
                "Redis did not take a cache invalidation; it is sent before the next lookup"
            );
            if let Ok(mut unsent) = self.unsent.lock() {
                for name in names {
                    if unsent.len() < UNSENT || !name.contains('#') {
                        unsent.insert(name);
                    }
                }
            }
        }
    }

    /// Writes made outside the API (`alawael seed`) changed rows of these
    /// entity types: every answer showing them is stale. False when the
    /// shared cache could not take it (no Redis configured: only a server's
    /// own process holds its answers, and they expire by their max age).
    pub async fn invalidate_types(&self, names: &[&str]) -> bool {
        if !self.cache.is_shared() {
            return false;
        }
        let bumps: Vec<(String, Option<Duration>)> = names
            .iter()
            .map(|name| (self.generation_key(&entity(name)), None))
            .collect();
        self.cache.shared_bump(&bumps).await
    }

    /// Sends the bumps Redis missed; false while it still cannot take them.
    async fn send_unsent(&self) -> bool {
        let names: Vec<String> = match self.unsent.lock() {
            Ok(unsent) if unsent.is_empty() => return true,
            Ok(unsent) => unsent.iter().cloned().collect(),
            Err(_) => return false,
        };
        let bumps: Vec<(String, Option<Duration>)> = names
            .iter()
            .map(|name| {
                let expire = name.contains('#').then(|| self.row_lifetime());
                (self.generation_key(name), expire)
            })
            .collect();
        if !self.cache.shared_bump(&bumps).await {
            return false;
        }
        if let Ok(mut unsent) = self.unsent.lock() {
            for name in &names {
                unsent.remove(name);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ResponseCacheSettings {
        ResponseCacheSettings {
            enabled: true,
            max_age_cap_secs: 60,
            max_entry_bytes: 1024,
            local_entries: 4,
        }
    }

    async fn found(cache: &ResponseCache, digest: &str, deps: &[String]) -> Option<Arc<str>> {
        match cache.lookup(digest, deps, Duration::from_secs(60)).await {
            Lookup::Ready { found, .. } => found,
            Lookup::Unavailable => panic!("the in-process cache is always available"),
        }
    }

    async fn keep(cache: &ResponseCache, digest: &str, deps: &[String], data: &str) {
        match cache.lookup(digest, deps, Duration::from_secs(60)).await {
            Lookup::Ready { ticket, .. } => cache.store(ticket, data).await,
            Lookup::Unavailable => panic!("the in-process cache is always available"),
        }
    }

    #[tokio::test]
    async fn a_write_makes_the_answers_that_show_its_type_or_row_stale() {
        let cache = ResponseCache::new(Arc::new(Cache::local_only()), settings(), "t");
        let (a, b) = (ObjectId::new(), ObjectId::new());
        let list = vec![entity("Asset")];
        let one = vec![row("Asset", a)];
        let other = vec![row("Asset", b), entity("User")];
        keep(&cache, "list", &list, "{\"n\":1}").await;
        keep(&cache, "one", &one, "{\"n\":2}").await;
        keep(&cache, "other", &other, "{\"n\":3}").await;
        assert_eq!(
            found(&cache, "list", &list).await.as_deref(),
            Some("{\"n\":1}")
        );
        cache.invalidate("Asset", a).await;
        assert!(found(&cache, "list", &list).await.is_none());
        assert!(found(&cache, "one", &one).await.is_none());
        assert_eq!(
            found(&cache, "other", &other).await.as_deref(),
            Some("{\"n\":3}")
        );
        cache.invalidate("User", ObjectId::new()).await;
        assert!(found(&cache, "other", &other).await.is_none());
    }

    #[tokio::test]
    async fn an_answer_computed_before_a_write_is_not_kept_as_current() {
        let cache = ResponseCache::new(Arc::new(Cache::local_only()), settings(), "t");
        let deps = vec![entity("Asset")];
        let Lookup::Ready { ticket, .. } = cache.lookup("q", &deps, Duration::from_secs(60)).await
        else {
            panic!("available");
        };
        cache.invalidate("Asset", ObjectId::new()).await;
        cache.store(ticket, "{}").await;
        assert!(found(&cache, "q", &deps).await.is_none());
    }

    #[tokio::test]
    async fn a_miss_is_computed_once_and_followers_get_its_answer() {
        let cache = ResponseCache::new(Arc::new(Cache::local_only()), settings(), "t");
        let Flight::Lead(leader) = cache.flight("q") else {
            panic!("the first request leads");
        };
        let Flight::Follow(first) = cache.flight("q") else {
            panic!("a second request follows");
        };
        let Flight::Follow(second) = cache.flight("q") else {
            panic!("a third request follows");
        };
        assert!(matches!(cache.flight("other"), Flight::Lead(_)));
        let waiting = tokio::spawn(follow(first, Duration::from_secs(5)));
        leader.land(Arc::from("{\"n\":1}"));
        drop(leader);
        assert_eq!(waiting.await.ok().flatten().as_deref(), Some("{\"n\":1}"));
        assert_eq!(
            follow(second, Duration::from_secs(5)).await.as_deref(),
            Some("{\"n\":1}")
        );
        let Flight::Lead(failed) = cache.flight("q") else {
            panic!("a landed flight is over");
        };
        let Flight::Follow(orphan) = cache.flight("q") else {
            panic!("follows");
        };
        drop(failed);
        assert_eq!(follow(orphan, Duration::from_secs(5)).await, None);
    }

    #[tokio::test]
    async fn large_answers_are_not_kept_and_the_process_tier_is_bounded() {
        let cache = ResponseCache::new(Arc::new(Cache::local_only()), settings(), "t");
        let deps = vec![entity("Asset")];
        keep(&cache, "big", &deps, &"x".repeat(2048)).await;
        assert!(found(&cache, "big", &deps).await.is_none());
        for n in 0..10 {
            keep(&cache, &format!("q{n}"), &deps, "{}").await;
        }
        let held = cache.local.lock().map(|l| l.entries.len()).unwrap_or(99);
        assert!(held <= 4, "{held} entries held");
        assert!(found(&cache, "q9", &deps).await.is_some());
    }
}
