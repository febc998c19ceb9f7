//! The login throttle: every attempt counts against the account and the
//! client address (also when many arrive in one request through aliases or
//! a batch); past the limit the attempt is refused before the password is
//! checked. A successful login clears the account's count.

use std::time::Duration;

use crate::cache::Cache;
use crate::config::AuthSettings;
use crate::error::ApiError;

pub struct LoginThrottle<'a> {
    cache: &'a Cache,
    settings: &'a AuthSettings,
}

impl<'a> LoginThrottle<'a> {
    pub fn new(cache: &'a Cache, settings: &'a AuthSettings) -> Self {
        Self { cache, settings }
    }

    fn account_key(email: &str) -> String {
        format!("alawael:login:account:{email}")
    }

    fn address_key(address: &str) -> String {
        format!("alawael:login:address:{address}")
    }

    /// Counts an attempt; `RATE_LIMITED` when either limit is passed.
    pub async fn attempt(&self, email: &str, address: &str) -> Result<(), ApiError> {
        let s = self.settings;
        let (by_address, address_wait) = self
            .cache
            .increment(
                &Self::address_key(address),
                Duration::from_secs(s.address_failures_window_secs),
            )
            .await;
        let (by_account, account_wait) = self
            .cache
            .increment(
                &Self::account_key(email),
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
            return Err(ApiError::RateLimited {
                retry_after_secs: wait,
            });
        }
        Ok(())
    }

    /// A correct password: the account starts afresh.
    pub async fn succeeded(&self, email: &str) {
        self.cache.delete(&Self::account_key(email)).await;
    }
}
