//! A per-request batching cache, the engine of the loaders, on the
//! `dataloader` crate: the first field of a level to ask registers its key
//! and yields to the executor a few times; the fields polled beside it
//! register theirs meanwhile, and the first to resume loads them all in one
//! call. Gathering costs a few polls, not a wait on the clock. Values are
//! cached for the request; after a failed load nothing is cached, so later
//! fields ask again.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use dataloader::BatchFn;
use dataloader::cached::{Cache, Loader};
use futures::future::BoxFuture;

use crate::db::DbError;

/// The batcher's maps: keyed by ids, hashed with a fast seeded hasher
/// (a page looks up and inserts a few hundred keys).
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How often the first field of a level yields before it loads. Every
/// field of a level is polled once between two yields of the task, so one
/// would do; a few more let fields that first await another loader's
/// cached answer join the same batch.
const YIELDS: usize = 4;

/// The most keys one load carries; a level with more is loaded in parts.
const LARGEST_BATCH: usize = 10_000;

/// What the cache holds for a key: the value, none, or the load's failure.
type Answer<V> = Result<Option<V>, Arc<DbError>>;

type LoadFn<K, V> =
    dyn Fn(Vec<K>) -> BoxFuture<'static, Result<Map<K, V>, Arc<DbError>>> + Send + Sync;

/// The `dataloader` batch function: one call of the load for all keys,
/// and an answer for every key (absent rows are `None`; a failure is
/// every key's).
struct Batch<K, V> {
    load: Arc<LoadFn<K, V>>,
}

impl<K, V> BatchFn<K, Answer<V>> for Batch<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    async fn load(&mut self, keys: &[K]) -> HashMap<K, Answer<V>> {
        let result = (self.load)(keys.to_vec()).await;
        keys.iter()
            .map(|key| {
                let answer = match &result {
                    Ok(values) => Ok(values.get(key).cloned()),
                    Err(error) => Err(error.clone()),
                };
                (key.clone(), answer)
            })
            .collect()
    }
}

/// The loader's cache: a fast map of the answers.
struct Answers<K, V>(Map<K, Answer<V>>);

impl<K: Eq + Hash, V> Cache for Answers<K, V> {
    type Key = K;
    type Val = Answer<V>;
    fn get(&mut self, key: &K) -> Option<&Answer<V>> {
        self.0.get(key)
    }
    fn insert(&mut self, key: K, val: Answer<V>) {
        self.0.insert(key, val);
    }
    fn remove(&mut self, key: &K) -> Option<Answer<V>> {
        self.0.remove(key)
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Loads values by key in batches, caching them for the request.
pub struct Batcher<K, V>
where
    K: Eq + Hash + Clone + Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    loader: Loader<K, Answer<V>, Batch<K, V>, Answers<K, V>>,
}

fn dropped(error: std::io::Error) -> Arc<DbError> {
    Arc::new(DbError::Other(anyhow::anyhow!(
        "a batch load was lost: {error}"
    )))
}

impl<K, V> Batcher<K, V>
where
    K: Eq + Hash + Clone + Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(
        load: impl Fn(Vec<K>) -> BoxFuture<'static, Result<Map<K, V>, Arc<DbError>>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        let batch = Batch {
            load: Arc::new(load),
        };
        let loader = Loader::with_cache(batch, Answers(Map::default()))
            .with_max_batch_size(LARGEST_BATCH)
            .with_yield_count(YIELDS);
        Self { loader }
    }

    /// One value; `None` when there is none.
    pub async fn load_one(&self, key: K) -> Result<Option<V>, Arc<DbError>> {
        let answer = self.loader.try_load(key.clone()).await.map_err(dropped)?;
        if answer.is_err() {
            self.loader.clear(key).await;
        }
        answer
    }

    /// The values of `keys` that exist.
    pub async fn load_many(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Map<K, V>, Arc<DbError>> {
        let mut keys: Vec<K> = keys.into_iter().collect();
        let mut seen = Map::default();
        keys.retain(|k| seen.insert(k.clone(), ()).is_none());
        if keys.is_empty() {
            return Ok(Map::default());
        }
        let answers = self.loader.try_load_many(keys).await.map_err(dropped)?;
        let mut found = Map::default();
        let mut failure = None;
        for (key, answer) in answers {
            match answer {
                Ok(Some(value)) => {
                    found.insert(key, value);
                }
                Ok(None) => {}
                Err(error) => {
                    self.loader.clear(key).await;
                    failure = Some(error);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(found),
        }
    }

    /// Loads the keys not yet known in one batch, before the fields that
    /// will follow them ask (a page that knows which rows its fields will
    /// follow). After a failure nothing is cached, so the fields ask again.
    pub async fn preload(&self, keys: impl IntoIterator<Item = K>) -> Result<(), Arc<DbError>> {
        self.load_many(keys).await.map(|_| ())
    }

    /// Puts values already read (a page's rows) in the cache.
    pub async fn feed(&self, values: impl IntoIterator<Item = (K, V)>) {
        self.loader
            .prime_many(values.into_iter().map(|(k, v)| (k, Ok(Some(v)))))
            .await;
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

    #[tokio::test]
    async fn fields_polled_together_are_one_load() {
        let (batcher, calls) = counted(0);
        let fields = (0..100u32).map(|k| batcher.load_one(k));
        let answers = futures::future::join_all(fields).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(answers[4].as_ref().unwrap(), &Some(40));
        assert_eq!(answers[5].as_ref().unwrap(), &None);
    }

    #[tokio::test]
    async fn a_failed_load_is_every_asking_fields_error_and_is_not_kept() {
        let (batcher, calls) = counted(1);
        let answers = futures::future::join(batcher.load_one(2), batcher.load_one(4)).await;
        assert!(answers.0.is_err() && answers.1.is_err());
        assert_eq!(batcher.load_one(4).await.unwrap(), Some(40));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
