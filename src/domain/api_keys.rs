//! Keys of the JSON API: made by an administrator for a customer, shown
//! once, acting as that customer until revoked.
//!
//! A key is `qk_<lookup>_<secret>`: `qk_` makes a leaked key recognisable
//! (secret scanners, logs), `lookup` (8 random bytes, hex) finds its row with
//! one indexed read, and `secret` is 32 random bytes (base64url). Only a
//! SHA-256 of the secret is stored, compared in constant time.
//!
//! Why a fast hash and not argon2 as for passwords: a slow hash protects
//! secrets people choose, which a stolen database could be searched for by
//! guessing. A key's secret is 256 random bits; no guess finds it whatever
//! the hash costs, so SHA-256 is as safe here, and it keeps the check of
//! every API request to one read and one hash, with no cache of verified
//! keys that a revocation would have to reach on every node.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::ids::{ApiKeyId, CustomerId};
use crate::domain::storage::StoreResult;

/// What every key starts with.
pub const KEY_PREFIX: &str = "qk_";

/// How often, at most, a key's `last_used_at` is written: once a minute is
/// enough to read, and spares a write on every request.
const TOUCH_EVERY_SECS: i64 = 60;

/// The longest name of a key, in characters.
pub const NAME_MAX: usize = 100;

/// A key as listed: never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A key just made: `key` is shown once and kept nowhere.
#[derive(Clone)]
pub struct CreatedKey {
    pub id: ApiKeyId,
    pub key: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CreatedKey({}, ***)", self.id)
    }
}

/// A key's row as authentication reads it.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub id: ApiKeyId,
    pub customer: CustomerId,
    pub secret_hash: Vec<u8>,
    pub last_used_at: Option<i64>,
    /// Revoked, or its customer is disabled.
    pub refused: bool,
}

/// What the key use-cases need of storage.
pub trait ApiKeyStorage: Sync {
    /// Adds a key; `NotFound("customer")` for an unknown customer.
    fn insert_api_key(
        &self,
        customer: CustomerId,
        name: &str,
        lookup: &str,
        secret_hash: &[u8],
        now: i64,
    ) -> impl Future<Output = StoreResult<ApiKeyId>> + Send;

    /// A customer's keys, revoked ones included, by id.
    fn api_keys(&self, customer: CustomerId) -> impl Future<Output = StoreResult<Vec<ApiKey>>> + Send;

    /// Revokes a customer's key; false when it has no such key unrevoked.
    fn revoke_api_key(
        &self,
        customer: CustomerId,
        id: ApiKeyId,
        now: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The key of a lookup id, with whether it is refused.
    fn api_key_by_lookup(&self, lookup: &str) -> impl Future<Output = StoreResult<Option<StoredKey>>> + Send;

    /// Records that a key was used at `now`.
    fn touch_api_key(&self, id: ApiKeyId, now: i64) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("invalid name: longer than {NAME_MAX} characters or with a control character")]
    InvalidName,
    #[error("unknown key {0}")]
    NotFound(ApiKeyId),
    #[error(transparent)]
    Store(#[from] crate::domain::storage::StoreError),
}

fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The lookup id and the secret of a presented key, if it has a key's shape.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (lookup, secret) = rest.split_once('_')?;
    let shaped = lookup.len() == 16
        && lookup
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    shaped.then_some((lookup, secret))
}

/// Makes a key for a customer; the answer holds the only copy of it.
pub async fn add_key(
    s: &impl ApiKeyStorage,
    customer: CustomerId,
    name: &str,
    now: i64,
) -> Result<CreatedKey, ApiKeyError> {
    let name = name.trim();
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiKeyError::InvalidName);
    }
    let (lookup, secret) = {
        let mut rng = rand::rng();
        let lookup: [u8; 8] = rng.random();
        let secret: [u8; 32] = rng.random();
        (hex::encode(lookup), URL_SAFE_NO_PAD.encode(secret))
    };
    let id = s
        .insert_api_key(customer, name, &lookup, &secret_hash(&secret), now)
        .await?;
    Ok(CreatedKey {
        id,
        key: format!("{KEY_PREFIX}{lookup}_{secret}"),
    })
}

/// A customer's keys, revoked ones included.
pub async fn list_keys(s: &impl ApiKeyStorage, customer: CustomerId) -> StoreResult<Vec<ApiKey>> {
    s.api_keys(customer).await
}

/// Revokes a customer's key: from now on it is refused.
pub async fn revoke_key(
    s: &impl ApiKeyStorage,
    customer: CustomerId,
    id: ApiKeyId,
    now: i64,
) -> Result<(), ApiKeyError> {
    if s.revoke_api_key(customer, id, now).await? {
        Ok(())
    } else {
        Err(ApiKeyError::NotFound(id))
    }
}

/// The customer a presented key acts as; `None` for a key that is
/// malformed, unknown, wrong, revoked, or whose customer is disabled.
pub async fn authenticate(
    s: &impl ApiKeyStorage,
    key: &str,
    now: i64,
) -> StoreResult<Option<(ApiKeyId, CustomerId)>> {
    let Some((lookup, secret)) = split_key(key) else {
        return Ok(None);
    };
    let Some(stored) = s.api_key_by_lookup(lookup).await? else {
        return Ok(None);
    };
    let matches: bool = secret_hash(secret).ct_eq(stored.secret_hash.as_slice()).into();
    if !matches || stored.refused {
        return Ok(None);
    }
    if stored.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY_SECS) {
        s.touch_api_key(stored.id, now).await?;
    }
    Ok(Some((stored.id, stored.customer)))
}

/// Each key's requests a second: a token bucket per key that holds up to
/// twice the rate and refills at the rate. Kept per process, like the
/// per-destination limits: with N nodes a key may make up to N times it.
pub struct KeyRate {
    per_second: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<CustomerKey, (f64, std::time::Instant)>>,
}

type CustomerKey = i64;

impl KeyRate {
    pub fn new(per_second: u32) -> KeyRate {
        KeyRate {
            per_second: f64::from(per_second.max(1)),
            buckets: Default::default(),
        }
    }

    /// Takes one request of the key's allowance: `Ok` if there was one,
    /// else the whole seconds until there will be.
    pub fn take(&self, key: ApiKeyId) -> Result<(), u64> {
        let now = std::time::Instant::now();
        let burst = self.per_second * 2.0;
        let mut map = self.buckets.lock().expect("key rate lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() * self.per_second < burst);
        }
        let (tokens, at) = map.entry(key.get()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_twice_its_rate_at_once_then_waits() {
        let rate = KeyRate::new(2);
        for _ in 0..4 {
            assert_eq!(rate.take(ApiKeyId(1)), Ok(()));
        }
        assert_eq!(rate.take(ApiKeyId(1)), Err(1));
        assert_eq!(rate.take(ApiKeyId(2)), Ok(()));
    }

    #[test]
    fn only_a_key_shaped_string_is_looked_up() {
        let lookup = "0123456789abcdef";
        let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let key = format!("qk_{lookup}_{secret}");
        assert_eq!(split_key(&key), Some((lookup, secret.as_str())));
        assert_eq!(split_key(&key[1..]), None);
        assert_eq!(split_key(&format!("qk_{lookup}_{}", &secret[1..])), None);
        assert_eq!(split_key(&format!("qk_0123456789ABCDEF_{secret}")), None);
        assert_eq!(split_key(""), None);
    }
}
