//! The accounts behind access tokens, kept in memory so a request does not
//! read its caller from the database: whether the account is active, its
//! role and name. An entry is dropped at once when the account is
//! deactivated or changed (here directly; on other instances through the
//! event bus), and after `auth.account_cache_secs` in any case, as a
//! backstop for a change whose event was lost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;

use crate::domain::Role;

/// What a request needs of its caller's account.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub active: bool,
    pub role: Role,
    pub name: String,
    /// Access tokens issued before this (milliseconds) are refused.
    pub sessions_since_ms: i64,
    /// Sessions ended one by one whose access tokens may still be alive.
    pub ended: Vec<String>,
    /// For an API key: what proves it and what it may do.
    pub key: Option<KeyAccount>,
}

/// What a request needs of an API key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAccount {
    /// Hex SHA-256 of the key.
    pub hash: String,
    pub scopes: crate::domain::scopes::Scopes,
    /// When it stops working (Unix milliseconds).
    pub expires_ms: Option<i64>,
}

impl Account {
    /// Whether an access token issued at `issued_ms` in session `sid` may
    /// still be used.
    pub fn admits(&self, issued_ms: i64, sid: &str) -> bool {
        issued_ms >= self.sessions_since_ms && !self.ended.iter().any(|e| e == sid)
    }
}

/// Entries beyond this are dropped all at once (a bound, not an LRU: the
/// active accounts of a centre are far fewer).
const CAPACITY: usize = 50_000;

pub struct AccountCache {
    entries: Mutex<HashMap<ObjectId, (Instant, Account)>>,
    ttl: Duration,
}

impl AccountCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// The account, when it was read less than the TTL ago.
    pub fn get(&self, id: ObjectId) -> Option<Account> {
        let entries = self.entries.lock().ok()?;
        let (read, account) = entries.get(&id)?;
        (read.elapsed() < self.ttl).then(|| account.clone())
    }

    pub fn put(&self, id: ObjectId, account: Account) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(id, (Instant::now(), account));
        }
    }

    /// The account changed: read it again next time.
    pub fn forget(&self, id: ObjectId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&id);
        }
    }

    /// Events were missed: read every account again.
    pub fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let account = Account {
            active: true,
            role: Role::User,
            name: "A".into(),
            sessions_since_ms: 0,
            ended: Vec::new(),
            key: None,
        };
        let id = ObjectId::new();
        let cache = AccountCache::new(Duration::from_secs(60));
        cache.put(id, account.clone());
        assert_eq!(cache.get(id), Some(account.clone()));
        cache.forget(id);
        assert_eq!(cache.get(id), None);
        let off = AccountCache::new(Duration::ZERO);
        off.put(id, account);
        assert_eq!(off.get(id), None);
    }
}
