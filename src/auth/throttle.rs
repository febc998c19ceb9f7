//! The login throttle, which an attacker cannot turn against the owner.
//! Every attempt takes a slot, before the password is checked (so attempts
//! that arrive together, through aliases or a batch, all count), from two
//! budgets: the account *from this address* (the pair), and the address
//! across accounts. A correct password gives the slots back. Past either
//! budget the attempt is refused with `RATE_LIMITED`; each time a pair runs
//! out its next window is twice as long (backoff, up to 64 times). Failures
//! elsewhere never lock an account: its owner, from an address that has
//! not been failing, still signs in. Keys are namespaced by database, so
//! instances that share a database share the counts.

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

    fn pair_key(&self, email: &str, address: &str) -> String {
        format!("alawael:{}:login:pair:{email}:{address}", self.namespace)
    }

    /// How many times the pair ran out lately (its backoff).
    fn lockouts_key(&self, email: &str, address: &str) -> String {
        format!(
            "alawael:{}:login:lockouts:{email}:{address}",
            self.namespace
        )
    }

    fn address_key(&self, address: &str) -> String {
        format!("alawael:{}:login:address:{address}", self.namespace)
    }

    /// Counts an attempt; `TooManyAttempts` when either budget is spent.
    pub async fn attempt(&self, email: &str, address: &str) -> Result<(), ThrottleError> {
        let s = self.settings;
        let (by_address, address_wait) = self
            .cache
            .increment(
                &self.address_key(address),
                Duration::from_secs(s.address_failures_window_secs),
            )
            .await;
        let lockouts = self
            .cache
            .count(&self.lockouts_key(email, address))
            .await
            .0
            .clamp(0, 6);
        let window = s.account_failures_window_secs.saturating_mul(1 << lockouts);
        let (by_pair, pair_wait) = self
            .cache
            .increment(&self.pair_key(email, address), Duration::from_secs(window))
            .await;
        let mut wait = 0;
        let mut locked = None;
        if by_address > i64::from(s.address_failures_max) {
            wait = wait.max(address_wait);
        }
        if by_pair > i64::from(s.account_failures_max) {
            wait = wait.max(pair_wait);
            if by_pair == i64::from(s.account_failures_max) + 1 {
                let (n, _) = self
                    .cache
                    .increment(
                        &self.lockouts_key(email, address),
                        Duration::from_secs(86_400),
                    )
                    .await;
                locked = Some(n);
            }
        }
        if wait > 0 {
            metrics::counter!("alawael_login_throttled_total").increment(1);
            if let Some(n) = locked {
                metrics::counter!("alawael_login_lockouts_total").increment(1);
                tracing::warn!(
                    lockout = n,
                    "sign-ins to an account from one address are locked out"
                );
            }
            return Err(ThrottleError::TooManyAttempts {
                retry_after_secs: wait,
            });
        }
        Ok(())
    }

    /// Whether this attempt is the one that locked the pair out (checked
    /// after a refusal, to audit it once).
    pub async fn just_locked(&self, email: &str, address: &str) -> bool {
        self.cache.count(&self.pair_key(email, address)).await.0
            == i64::from(self.settings.account_failures_max) + 1
    }

    /// A correct password: the pair starts afresh and the address gets its slot back.
    pub async fn succeeded(&self, email: &str, address: &str) {
        self.cache.delete(&self.pair_key(email, address)).await;
        self.cache.delete(&self.lockouts_key(email, address)).await;
        self.cache.decrement(&self.address_key(address)).await;
    }
}
