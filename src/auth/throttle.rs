//! The login throttle. Every attempt takes a slot from the account's and the
//! client address's budgets before the password is checked (so attempts
//! that arrive together, through aliases or a batch, all count); a correct
//! password gives the slots back. Past either budget the attempt is refused
//! with `RATE_LIMITED`. Keys are namespaced by database, so instances that
//! share a database share the counts.

use std::time::Duration;

use crate::cache::Cache;
use crate::config::AuthSettings;

/// Why a sign-in attempt is refused before its password is checked (the
/// boundary's `RATE_LIMITED`, with `retryAfterSeconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleError {
    /// The account's or the client address's budget of attempts is spent;
    /// a new attempt is counted again after this many seconds.
    #[error("too many attempts; retry in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
}

pub struct LoginThrottle<'a> {
    cache: &'a Cache,
    settings: &'a AuthSettings,
    namespace: &'a str,
}

impl<'a> LoginThrottle<'a> {
    pub fn new(cache: &'a Cache, settings: &'a AuthSettings, namespace: &'a str) -> Self {
        Self {
            cache,
            settings,
            namespace,
        }
    }

    fn account_key(&self, email: &str) -> String {
        format!("alawael:{}:login:account:{email}", self.namespace)
    }

    fn address_key(&self, address: &str) -> String {
        format!("alawael:{}:login:address:{address}", self.namespace)
    }

    /// Counts an attempt; `TooManyAttempts` when either limit is passed.
    pub async fn attempt(&self, email: &str, address: &str) -> Result<(), ThrottleError> {
        let s = self.settings;
        let (by_address, address_wait) = self
            .cache
            .increment(
                &self.address_key(address),
                Duration::from_secs(s.address_failures_window_secs),
            )
            .await;
        let (by_account, account_wait) = self
            .cache
            .increment(
                &self.account_key(email),
                Duration::from_secs(s.account_failures_window_secs),
            )
            .await;
        let mut wait = 0;
        if by_address > i64::from(s.address_failures_max) {
            wait = wait.max(address_wait);
        }
        if by_account > i64::from(s.account_failures_max) {
            wait = wait.max(account_wait);
        }
        if wait > 0 {
            metrics::counter!("alawael_login_throttled_total").increment(1);
            return Err(ThrottleError::TooManyAttempts {
                retry_after_secs: wait,
            });
        }
        Ok(())
    }

    /// A correct password: the account starts afresh and the address gets its slot back.
    pub async fn succeeded(&self, email: &str, address: &str) {
        self.cache.delete(&self.account_key(email)).await;
        self.cache.decrement(&self.address_key(address)).await;
    }
}
