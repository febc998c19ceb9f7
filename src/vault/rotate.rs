//! Master key rotation: every data key (and the blind index key) is
//! unwrapped with the key that wraps it and wrapped again with the current
//! one, one key at a time, each rewrap a single conditional write. Nothing
//! stops meanwhile (both keys unwrap while it runs), and a rotation cut
//! short by a crash resumes where it stopped: the keys still wrapped by
//! another master key are exactly those left to do.

use super::{Vault, VaultResult, context};

/// Keys read per batch.
const BATCH: i64 = 500;

/// How many keys are not yet wrapped by the current master key.
pub async fn remaining(vault: &Vault) -> VaultResult<u64> {
    let current = vault.masters().current();
    Ok(vault
        .status()
        .await?
        .into_iter()
        .filter(|(master, _)| master != current)
        .map(|(_, n)| n)
        .sum())
}

/// Rewraps every key not wrapped by the current master key; `progress`
/// hears each one done. Returns how many it rewrapped.
pub async fn rotate(vault: &Vault, mut progress: impl FnMut(u64)) -> VaultResult<u64> {
    let masters = vault.masters();
    let current = masters.current().to_string();
    let mut done = 0;
    loop {
        let keys = vault.store().wrapped_by_others(&current, BATCH).await?;
        if keys.is_empty() {
            return Ok(done);
        }
        for key in keys {
            let secret = masters.unwrap(&key.master, &key.wrapped, &context(&key.id))?;
            let (master, wrapped) = masters.wrap(&secret, &context(&key.id))?;
            // A key erased or rotated meanwhile is left as it is.
            if vault
                .store()
                .rewrap(&key, &key.master, &master, wrapped)
                .await?
            {
                done += 1;
                progress(done);
            }
        }
    }
}
