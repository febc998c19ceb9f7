//! Encryption at rest with a key per person (crypto-shredding). What
//! identifies a person or describes their health is stored sealed under
//! that person's data key (`Sealed`); data keys are kept wrapped by a
//! master key (`MasterKeys`, from the environment or a key file, never the
//! database) in a key store of their own (`store`). Erasure deletes the
//! person's key: everything sealed with it, wherever a copy lies, stops
//! opening. Lookups of a sealed value (a national id) go through a keyed
//! blind index instead of the value.

pub mod master;
pub mod rotate;
pub mod sealed;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bson::Bson;
use bson::oid::ObjectId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

pub use master::{DEVELOPMENT_MASTER_KEY, MasterKeys};
pub use sealed::{DataKey, Sealed};
use store::{KeyStore, StoredKey};

use crate::db::{Db, DbError};

/// Why the vault could not do something.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master keys are missing or malformed.
    #[error("vault configuration: {0}")]
    Config(String),
    /// A stored key is wrapped by a master key this process was not given.
    #[error(
        "a data key is wrapped by master key `{0}`, which is not configured; give it (after the current one) until `alawael keys rotate` has finished"
    )]
    UnknownMasterKey(String),
    /// A key or value did not open (wrong key, or altered).
    #[error("{0}")]
    Crypto(String),
    /// The key store could not be read or written.
    #[error(transparent)]
    Db(#[from] DbError),
}

pub type VaultResult<T> = Result<T, VaultError>;

/// The blind index key's id in the key store.
const INDEX_KEY: &str = "blind-index";

/// The data keys this process has unwrapped, by person; emptied when full.
struct KeyCache {
    keys: Mutex<HashMap<ObjectId, Arc<DataKey>>>,
    capacity: usize,
}

impl KeyCache {
    fn get(&self, subject: &ObjectId) -> Option<Arc<DataKey>> {
        self.keys.lock().ok()?.get(subject).cloned()
    }

    fn put(&self, key: Arc<DataKey>) {
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= self.capacity {
                keys.clear();
            }
            keys.insert(key.subject(), key);
        }
    }

    fn remove(&self, subject: &ObjectId) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(subject);
        }
    }
}

/// The keyed blind index of looked-up values (HMAC-SHA256 under a random
/// key kept in the key store like a data key).
struct BlindIndex(Hmac<Sha256>);

/// The blind index, its key loaded.
pub struct Indexer(Hmac<Sha256>);

impl Indexer {
    /// See `Vault::blind_index`.
    pub fn index(&self, what: &str, value: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(what.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The vault: master keys, the key store and the keys in memory. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    masters: Arc<MasterKeys>,
    store: KeyStore,
    cache: Arc<KeyCache>,
    index: Arc<OnceCell<BlindIndex>>,
}

pub(crate) fn context(id: &Bson) -> Vec<u8> {
    format!("alawael data key {id}").into_bytes()
}

impl Vault {
    /// The vault over the key store database `database` (on `db`'s server).
    pub fn new(masters: MasterKeys, db: &Db, database: &str, cache_size: usize) -> Self {
        Self {
            masters: Arc::new(masters),
            store: KeyStore::new(db.sibling(database)),
            cache: Arc::new(KeyCache {
                keys: Mutex::default(),
                capacity: cache_size.max(1),
            }),
            index: Arc::default(),
        }
    }

    /// The same vault over another client of the same server (a serving
    /// thread's own), sharing the keys in memory.
    pub fn replica(&self, db: &Db) -> Self {
        Self {
            store: KeyStore::new(db.sibling(self.store.db().name())),
            ..self.clone()
        }
    }

    pub fn masters(&self) -> &MasterKeys {
        &self.masters
    }

    /// The key store's database name.
    pub fn database(&self) -> &str {
        self.store.db().name()
    }

    fn unwrap_key(&self, subject: ObjectId, stored: &StoredKey) -> VaultResult<Arc<DataKey>> {
        let secret = self
            .masters
            .unwrap(&stored.master, &stored.wrapped, &context(&stored.id))?;
        Ok(Arc::new(DataKey::from_secret(
            subject,
            stored.key_id.clone(),
            &secret,
        )))
    }

    /// The data keys of these people that exist (none for an erased
    /// person); one key-store command for those not in memory.
    pub async fn keys(
        &self,
        subjects: &[ObjectId],
    ) -> VaultResult<HashMap<ObjectId, Arc<DataKey>>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for subject in subjects {
            match self.cache.get(subject) {
                Some(key) => {
                    found.insert(*subject, key);
                }
                None if !missing.contains(&Bson::ObjectId(*subject)) => {
                    missing.push(Bson::ObjectId(*subject))
                }
                None => {}
            }
        }
        for stored in self.store.find(&missing).await?.into_values() {
            let Bson::ObjectId(subject) = stored.id else {
                continue;
            };
            let key = self.unwrap_key(subject, &stored)?;
            self.cache.put(key.clone());
            found.insert(subject, key);
        }
        Ok(found)
    }

    /// One person's data key, if it exists.
    pub async fn key(&self, subject: ObjectId) -> VaultResult<Option<Arc<DataKey>>> {
        Ok(self.keys(&[subject]).await?.remove(&subject))
    }

    /// The data keys of these people, made for those who have none.
    pub async fn create_keys(
        &self,
        subjects: &[ObjectId],
    ) -> VaultResult<HashMap<ObjectId, Arc<DataKey>>> {
        let mut found = self.keys(subjects).await?;
        let mut fresh = Vec::new();
        for subject in subjects {
            if found.contains_key(subject)
                || fresh
                    .iter()
                    .any(|k: &StoredKey| k.id == Bson::ObjectId(*subject))
            {
                continue;
            }
            let (key, secret) = DataKey::generate(*subject);
            let id = Bson::ObjectId(*subject);
            let (master, wrapped) = self.masters.wrap(&secret, &context(&id))?;
            fresh.push(StoredKey {
                id,
                key_id: key.id().to_string(),
                master,
                wrapped,
            });
        }
        if fresh.is_empty() {
            return Ok(found);
        }
        self.store.insert(&fresh).await?;
        // Read back: a concurrent writer's key wins over ours.
        let made: Vec<ObjectId> = fresh.iter().filter_map(|k| k.id.as_object_id()).collect();
        found.extend(self.keys(&made).await?);
        Ok(found)
    }

    /// One person's data key, made if they have none.
    pub async fn create_key(&self, subject: ObjectId) -> VaultResult<Arc<DataKey>> {
        self.create_keys(&[subject])
            .await?
            .remove(&subject)
            .ok_or_else(|| VaultError::Crypto("a data key could not be stored".into()))
    }

    /// Destroys a person's data key (erasure): nothing sealed with it opens
    /// again. Other instances forget it when they hear of it (`forget`).
    pub async fn destroy(&self, subject: ObjectId) -> VaultResult<bool> {
        self.cache.remove(&subject);
        Ok(self.store.delete(subject).await?)
    }

    /// Drops a person's key from memory (destroyed by another instance).
    pub fn forget(&self, subject: ObjectId) {
        self.cache.remove(&subject);
    }

    /// Drops every key from memory (after missing news of destroyed keys).
    pub fn forget_all(&self) {
        if let Ok(mut keys) = self.cache.keys.lock() {
            keys.clear();
        }
    }

    /// What `sealed` holds; `None` once its person's key is destroyed.
    pub async fn open(&self, sealed: &Sealed) -> VaultResult<Option<String>> {
        let Some((subject, _)) = sealed.owner() else {
            return Err(VaultError::Crypto("a sealed value is malformed".into()));
        };
        match self.key(subject).await? {
            Some(key) => Ok(Some(key.open(sealed)?)),
            None => Ok(None),
        }
    }

    async fn index(&self) -> VaultResult<&BlindIndex> {
        self.index
            .get_or_try_init(|| async {
                let id = Bson::String(INDEX_KEY.into());
                let mut stored = self.store.find(std::slice::from_ref(&id)).await?;
                if stored.is_empty() {
                    let mut secret = [0u8; 32];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
                    let (master, wrapped) = self.masters.wrap(&secret, &context(&id))?;
                    self.store
                        .insert(&[StoredKey {
                            id: id.clone(),
                            key_id: INDEX_KEY.into(),
                            master,
                            wrapped,
                        }])
                        .await?;
                    stored = self.store.find(std::slice::from_ref(&id)).await?;
                }
                let stored = stored
                    .into_values()
                    .next()
                    .ok_or_else(|| VaultError::Crypto("the blind index key is missing".into()))?;
                let secret =
                    self.masters
                        .unwrap(&stored.master, &stored.wrapped, &context(&stored.id))?;
                let mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
                    .map_err(|_| VaultError::Crypto("the blind index key is unusable".into()))?;
                Ok(BlindIndex(mac))
            })
            .await
    }

    /// The blind index of `value` looked up as `what` (a national id): equal
    /// values give equal indexes, and nobody without the key can tell which
    /// value an index stands for.
    pub async fn blind_index(&self, what: &str, value: &str) -> VaultResult<String> {
        Ok(self.indexer().await?.index(what, value))
    }

    /// The blind index, for many values at once (the seed).
    pub async fn indexer(&self) -> VaultResult<Indexer> {
        Ok(Indexer(self.index().await?.0.clone()))
    }

    /// How many keys each master key wraps (`alawael keys status`).
    pub async fn status(&self) -> VaultResult<Vec<(String, u64)>> {
        Ok(self.store.count_by_master().await?)
    }

    pub(crate) fn store(&self) -> &KeyStore {
        &self.store
    }
}
