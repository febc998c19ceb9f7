//! A per-request batching cache, the engine of the loaders. Like a
//! dataloader, it gathers the keys that resolvers ask for and loads them in
//! one call; unlike a fixed delay, it waits until keys stop arriving (a
//! short quiet spell), so a level of a query is one batch however long its
//! resolvers take to register their keys (a debug build spends several
//! milliseconds on a page of 100 rows). Values are cached for the request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::db::DbError;

/// The batcher's maps: keyed by ids, hashed with a fast seeded hasher
/// (a page looks up and inserts a few hundred keys).
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A batch stops gathering after this long without a new key...
const QUIET: Duration = Duration::from_micros(750);
/// ...or after this long in all.
const LONGEST: Duration = Duration::from_millis(25);

type Reply<V> = oneshot::Sender<Result<Option<V>, Arc<DbError>>>;
type LoadFn<K, V> =
    dyn Fn(Vec<K>) -> BoxFuture<'static, Result<Map<K, V>, Arc<DbError>>> + Send + Sync;

struct State<K, V> {
    cache: Map<K, Option<V>>,
    waiting: Map<K, Vec<Reply<V>>>,
    /// Keys of the batch being loaded, with who waits for them.
    inflight: Map<K, Vec<Reply<V>>>,
    gathering: bool,
    arrivals: u64,
}

/// Loads values by key in batches, caching them for the request.
pub struct Batcher<K, V> {
    state: Arc<Mutex<State<K, V>>>,
    load: Arc<LoadFn<K, V>>,
}

impl<K, V> Batcher<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(
        load: impl Fn(Vec<K>) -> BoxFuture<'static, Result<Map<K, V>, Arc<DbError>>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                cache: Map::default(),
                waiting: Map::default(),
                inflight: Map::default(),
                gathering: false,
                arrivals: 0,
            })),
            load: Arc::new(load),
        }
    }

    /// One value; `None` when there is none.
    pub async fn load_one(&self, key: K) -> Result<Option<V>, Arc<DbError>> {
        // Already known (a row of the page just read): no batch, no map.
        if let Some(known) = lock(&self.state).cache.get(&key) {
            return Ok(known.clone());
        }
        Ok(self.load_many(vec![key.clone()]).await?.remove(&key))
    }

    /// The values of `keys` that exist.
    pub async fn load_many(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Map<K, V>, Arc<DbError>> {
        let mut found = Map::default();
        let mut replies = Vec::new();
        {
            let mut state = lock(&self.state);
            for key in keys {
                if found.contains_key(&key) {
                    continue;
                }
                match state.cache.get(&key) {
                    Some(Some(value)) => {
                        found.insert(key, value.clone());
                    }
                    Some(None) => {}
                    None => {
                        let (tx, rx) = oneshot::channel();
                        match state.inflight.get_mut(&key) {
                            Some(waiting) => waiting.push(tx),
                            None => state.waiting.entry(key.clone()).or_default().push(tx),
                        }
                        replies.push((key, rx));
                    }
                }
            }
            if !replies.is_empty() {
                state.arrivals += 1;
                if !state.gathering {
                    state.gathering = true;
                    tokio::spawn(run(self.state.clone(), self.load.clone()));
                }
            }
        }
        for (key, rx) in replies {
            match rx.await {
                Ok(Ok(Some(value))) => {
                    found.insert(key, value);
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => {
                    return Err(Arc::new(DbError::Other(anyhow::anyhow!(
                        "a batch load was dropped"
                    ))));
                }
            }
        }
        Ok(found)
    }

    /// Loads now, in the caller's task and without gathering, the keys not
    /// yet known or asked for: a page that knows which rows its fields will
    /// follow. Fields asking for them meanwhile wait for this load; after a
    /// failure nothing is cached, so they ask again.
    pub async fn preload(&self, keys: impl IntoIterator<Item = K>) -> Result<(), Arc<DbError>> {
        let keys: Vec<K> = {
            let mut state = lock(&self.state);
            let mut fresh = Vec::new();
            for key in keys {
                if state.cache.contains_key(&key)
                    || state.inflight.contains_key(&key)
                    || state.waiting.contains_key(&key)
                {
                    continue;
                }
                state.inflight.insert(key.clone(), Vec::new());
                fresh.push(key);
            }
            fresh
        };
        if keys.is_empty() {
            return Ok(());
        }
        let result = (self.load)(keys.clone()).await;
        answer(&self.state, keys, &result);
        result.map(|_| ())
    }

    /// Puts values already read (a page's rows) in the cache.
    pub fn feed(&self, values: impl IntoIterator<Item = (K, V)>) {
        let mut state = lock(&self.state);
        for (key, value) in values {
            state.cache.insert(key, Some(value));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits for the keys to stop arriving, then loads them and answers.
async fn run<K, V>(state: Arc<Mutex<State<K, V>>>, load: Arc<LoadFn<K, V>>)
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let started = Instant::now();
    loop {
        let seen = lock(&state).arrivals;
        tokio::time::sleep(QUIET).await;
        if lock(&state).arrivals == seen || started.elapsed() >= LONGEST {
            break;
        }
    }
    let keys: Vec<K> = {
        let mut state = lock(&state);
        state.gathering = false;
        let waiting = std::mem::take(&mut state.waiting);
        let keys = waiting.keys().cloned().collect();
        state.inflight.extend(waiting);
        keys
    };
    let result = load(keys.clone()).await;
    answer(&state, keys, &result);
}

/// Caches a load's values and answers whoever waits for its keys.
fn answer<K, V>(state: &Mutex<State<K, V>>, keys: Vec<K>, result: &Result<Map<K, V>, Arc<DbError>>)
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    let mut state = lock(state);
    for key in keys {
        let replies = state.inflight.remove(&key).unwrap_or_default();
        let answer = match &result {
            Ok(values) => {
                let value = values.get(&key).cloned();
                state.cache.insert(key, value.clone());
                Ok(value)
            }
            Err(error) => Err(error.clone()),
        };
        for reply in replies {
            let _ = reply.send(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A batcher whose loads are counted; the first `failures` loads fail.
    fn counted(failures: usize) -> (Batcher<u32, u32>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let batcher = Batcher::new(move |keys: Vec<u32>| {
            let call = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if call < failures {
                    return Err(Arc::new(DbError::Other(anyhow::anyhow!("down"))));
                }
                Ok(keys
                    .into_iter()
                    .filter(|k| k % 2 == 0)
                    .map(|k| (k, k * 10))
                    .collect())
            })
        });
        (batcher, calls)
    }

    #[tokio::test]
    async fn a_preload_answers_later_loads_from_its_cache_in_one_call() {
        let (batcher, calls) = counted(0);
        batcher.preload([2, 3, 2, 4]).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(batcher.load_one(2).await.unwrap(), Some(20));
        assert_eq!(
            batcher.load_one(3).await.unwrap(),
            None,
            "absent rows are known too"
        );
        batcher.preload([2, 4]).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "nothing left to load");
    }

    #[tokio::test]
    async fn after_a_failed_preload_the_fields_load_again() {
        let (batcher, calls) = counted(1);
        assert!(batcher.preload([2]).await.is_err());
        assert_eq!(batcher.load_one(2).await.unwrap(), Some(20));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
