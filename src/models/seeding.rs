//! What the models' seed generators (`<model>/seed.rs`) share: stable ids,
//! picks that wrap around a list, and times of day.

use bson::oid::ObjectId;
use chrono::{NaiveDate, TimeZone, Utc};
use sha2::{Digest, Sha256};

/// A stable id for the `index`-th row of `kind`.
pub fn seed_id(kind: &str, index: usize) -> ObjectId {
    let digest = Sha256::digest(format!("alawael-seed:{kind}:{index}").as_bytes());
    let mut bytes = [0u8; 12];
    bytes.copy_from_slice(&digest[..12]);
    ObjectId::from_bytes(bytes)
}

/// The item at `index`, wrapping around the list.
pub fn pick<T>(items: &[T], index: usize) -> anyhow::Result<&T> {
    anyhow::ensure!(!items.is_empty(), "a seed list is empty");
    Ok(&items[index % items.len()])
}

/// `day` at `hour`:`minute`, UTC.
pub fn at(day: NaiveDate, hour: u32, minute: u32) -> anyhow::Result<chrono::DateTime<Utc>> {
    let naive = day
        .and_hms_opt(hour, minute, 0)
        .ok_or_else(|| anyhow::anyhow!("bad seed time"))?;
    Ok(Utc.from_utc_datetime(&naive))
}
