//! Quotas per caller: a GCRA bucket (a token bucket kept as one timestamp)
//! per account, per API key and per client address for anonymous callers,
//! charged with an operation's estimated cost, shared by every instance
//! through Redis (one script, one round trip) and kept in process while
//! Redis is away. Stricter buckets of their own hold the operations an
//! attacker would repeat (`login`, `refreshToken`, `exportBeneficiaryData`,
//! `eraseBeneficiary`, `requestReport`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cache::Cache;

/// A bucket's limit: `per_minute` units a minute, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_minute: u64,
    pub burst: u64,
}

impl Limit {
    /// Milliseconds one unit takes to come back.
    fn interval_ms(self) -> f64 {
        60_000.0 / self.per_minute.max(1) as f64
    }
}

/// What a charge found: whether it passed, and the bucket after it (for
/// the `RateLimit` headers).
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub allowed: bool,
    /// The policy's name (`default`, `login`, ...).
    pub policy: &'static str,
    pub limit: Limit,
    /// Units left now.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds to wait before the refused charge would pass.
    pub retry_after_secs: u64,
    /// What the operation was charged.
    pub cost: u64,
}

impl Charge {
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
    pub fn policy_header(&self) -> String {
        format!("\"{}\";q={};w=60", self.policy, self.limit.burst)
    }

    /// `RateLimit`.
    pub fn state_header(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.policy, self.remaining, self.reset_secs
        )
    }
}

/// The GCRA, given the bucket's theoretical arrival time (ms): the new one
/// when the charge passes, and the charge's outcome.
fn gcra(
    tat: f64,
    now: f64,
    cost: u64,
    limit: Limit,
    policy: &'static str,
) -> (Option<f64>, Charge) {
    let interval = limit.interval_ms();
    let tolerance = interval * limit.burst as f64;
    let tat = tat.max(now);
    let next = tat + interval * cost as f64;
    let allowed = next - now <= tolerance;
    let after = if allowed { next } else { tat };
    let remaining = ((tolerance - (after - now)) / interval).floor().max(0.0) as u64;
    let charge = Charge {
        allowed,
        policy,
        limit,
        remaining,
        reset_secs: ((after - now) / 1000.0).ceil().max(0.0) as u64,
        retry_after_secs: if allowed {
            0
        } else {
            ((next - now - tolerance) / 1000.0).ceil().max(1.0) as u64
        },
        cost,
    };
    (allowed.then_some(next), charge)
}

const SCRIPT: &str = "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') \
    local now = tonumber(ARGV[1]) local cost = tonumber(ARGV[2]) \
    local interval = tonumber(ARGV[3]) local tolerance = tonumber(ARGV[4]) \
    if tat < now then tat = now end \
    local nxt = tat + interval * cost \
    if nxt - now > tolerance then return {0, tostring(tat)} end \
    redis.call('SET', KEYS[1], tostring(nxt), 'PX', math.ceil(nxt - now) + 1000) \
    return {1, tostring(nxt)}";

/// The buckets: in Redis when it answers, in this process otherwise.
pub struct Quotas {
    local: Mutex<HashMap<String, (f64, Instant)>>,
    started: Instant,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            local: Mutex::default(),
            started: Instant::now(),
        }
    }
}

impl Quotas {
    /// Charges `cost` units to bucket `key` under `limit`.
    pub async fn charge(
        &self,
        cache: &Cache,
        key: &str,
        cost: u64,
        limit: Limit,
        policy: &'static str,
    ) -> Charge {
        let now_ms = chrono::Utc::now().timestamp_millis() as f64;
        let interval = limit.interval_ms();
        let tolerance = interval * limit.burst as f64;
        let args = [
            format!("{now_ms}"),
            cost.to_string(),
            format!("{interval}"),
            format!("{tolerance}"),
        ];
        if let Some((passed, tat)) = cache.run_script(SCRIPT, key, &args).await {
            let tat: f64 = tat.parse().unwrap_or(now_ms);
            // The script answers the new state when it passed, the old one otherwise.
            let before = if passed {
                tat - interval * cost as f64
            } else {
                tat
            };
            return gcra(before, now_ms, cost, limit, policy).1;
        }
        self.charge_here(key, now_ms, cost, limit, policy)
    }

    fn charge_here(
        &self,
        key: &str,
        now_ms: f64,
        cost: u64,
        limit: Limit,
        policy: &'static str,
    ) -> Charge {
        let Ok(mut buckets) = self.local.lock() else {
            return gcra(now_ms, now_ms, cost, limit, policy).1;
        };
        if buckets.len() > 100_000 {
            let now = Instant::now();
            buckets.retain(|_, (_, until)| *until > now);
        }
        let tat = buckets.get(key).map_or(0.0, |(t, _)| *t);
        let (next, charge) = gcra(tat, now_ms, cost, limit, policy);
        if let Some(next) = next {
            let keep = Duration::from_millis((next - now_ms).max(0.0) as u64 + 1000);
            buckets.insert(key.to_string(), (next, Instant::now() + keep));
        }
        let _ = self.started;
        charge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Limit = Limit {
        per_minute: 60,
        burst: 10,
    };

    #[test]
    fn a_burst_passes_then_the_bucket_refills_at_its_rate() {
        let mut tat = 0.0;
        let now = 1_000_000.0;
        for i in 0..10 {
            let (next, charge) = gcra(tat, now, 1, TEN, "default");
            assert!(charge.allowed, "charge {i}");
            assert_eq!(charge.remaining, 9 - i);
            tat = next.unwrap();
        }
        let (next, refused) = gcra(tat, now, 1, TEN, "default");
        assert!(!refused.allowed && next.is_none());
        assert_eq!(refused.retry_after_secs, 1);
        // One unit a second comes back.
        let (_, later) = gcra(tat, now + 1000.0, 1, TEN, "default");
        assert!(later.allowed);
        // A cost larger than the burst never passes.
        let (_, huge) = gcra(0.0, now, 11, TEN, "default");
        assert!(!huge.allowed);
        assert_eq!(later.policy_header(), "\"default\";q=10;w=60");
    }

    #[test]
    fn buckets_kept_in_process_charge_each_key_apart() {
        let quotas = Quotas::default();
        for _ in 0..10 {
            assert!(quotas.charge_here("a", 5_000.0, 1, TEN, "default").allowed);
        }
        assert!(!quotas.charge_here("a", 5_000.0, 1, TEN, "default").allowed);
        assert!(quotas.charge_here("b", 5_000.0, 1, TEN, "default").allowed);
    }
}
