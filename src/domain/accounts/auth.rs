//! The one authenticator, for the vendor API and the console: argon2 over the
//! md5 digest (D-9), the same answer for every kind of failure (D-1), and a
//! throttle on repeated failures per user name and client address.
//!
//! argon2 is slow on purpose, and the vendor API authenticates every request,
//! so a successful check is remembered for a few minutes under a SHA-256 of
//! (stored hash, digest): a changed password changes the stored hash and so
//! misses the cache, and memory never holds the credential itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{
    AccountStorage, Md5Digest, Principal, Role, Username, credential_outdated, hash_credential, slow_hash,
    verify_credential,
};
use crate::domain::ids::{CustomerId, OperatorId};

const FAILURES_ALLOWED: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(600);
const BLOCK_FOR: Duration = Duration::from_secs(600);
const REMEMBER_FOR: Duration = Duration::from_secs(300);
const MAX_ENTRIES: usize = 100_000;

/// What a client presented as its secret.
pub enum Secret<'a> {
    /// The vendor API's `password`: must be an md5 digest (A.3 rule 3).
    Digest(&'a str),
    /// `/apinew/` Basic auth: a 32-hex value is tried as the digest first,
    /// then as the plain password (H-6).
    DigestOrPlain(&'a str),
    /// The console's login form: the plain password (8.1).
    Plain(&'a str),
}

impl Secret<'_> {
    fn candidates(&self) -> Vec<Md5Digest> {
        match self {
            Secret::Digest(s) => Md5Digest::parse(s).into_iter().collect(),
            Secret::DigestOrPlain(s) => {
                let mut v: Vec<Md5Digest> = Md5Digest::parse(s).into_iter().collect();
                v.push(Md5Digest::of_plain(s));
                v
            }
            Secret::Plain(s) => vec![Md5Digest::of_plain(s)],
        }
    }
}

struct Failures {
    count: u32,
    since: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
pub struct Authenticator {
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    failures: Mutex<HashMap<(Role, String, IpAddr), Failures>>,
}

/// Checked against when the user does not exist, so that an unknown name
/// takes as long as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_credential(&Md5Digest::of_plain("qunfa-dummy")));

impl Authenticator {
    /// Who the credentials name when they are right, the account is
    /// enabled and the client is not throttled; `None` for every kind of
    /// failure.
    pub async fn check(
        &self,
        s: &impl AccountStorage,
        role: Role,
        username: &str,
        secret: Secret<'_>,
        ip: IpAddr,
    ) -> Option<Principal> {
        let Ok(username) = Username::parse(username) else {
            return None;
        };
        let throttle_key = (role, username.key(), ip);
        if self.is_blocked(&throttle_key) {
            return None;
        }
        let result = self.verify(s, role, &username, secret).await;
        self.record(throttle_key, result.is_some());
        result.map(|id| match role {
            Role::Customer => Principal::Customer(CustomerId(id)),
            Role::Agent => Principal::Agent(OperatorId(id)),
            Role::Manager => Principal::Manager(OperatorId(id)),
        })
    }

    async fn verify(
        &self,
        s: &impl AccountStorage,
        role: Role,
        username: &Username,
        secret: Secret<'_>,
    ) -> Option<i64> {
        let candidates = secret.candidates();
        let stored = match s.credential(role, username).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "credential lookup failed");
                return None;
            }
        };
        let Some(stored) = stored else {
            if let Some(c) = candidates.into_iter().next() {
                let _ = slow_verify(c, DUMMY_HASH.clone()).await;
            }
            return None;
        };
        for candidate in candidates {
            let key = remember_key(&stored.password_hash, &candidate);
            let ok = self.remembered(&key) || {
                let ok = slow_verify(candidate.clone(), stored.password_hash.clone()).await;
                if ok {
                    self.remember(key);
                    if credential_outdated(&stored.password_hash) {
                        rehash(s, role, username, candidate, &stored.password_hash).await;
                    }
                }
                ok
            };
            if ok {
                return (!stored.disabled).then_some(stored.id);
            }
        }
        None
    }

    fn remembered(&self, key: &[u8; 32]) -> bool {
        let map = self.verified.lock().expect("auth cache lock");
        map.get(key).is_some_and(|at| at.elapsed() < REMEMBER_FOR)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut map = self.verified.lock().expect("auth cache lock");
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, at| at.elapsed() < REMEMBER_FOR);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, Instant::now());
    }

    fn is_blocked(&self, key: &(Role, String, IpAddr)) -> bool {
        let map = self.failures.lock().expect("throttle lock");
        map.get(key)
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| Instant::now() < until)
    }

    fn record(&self, key: (Role, String, IpAddr), success: bool) {
        let mut map = self.failures.lock().expect("throttle lock");
        if success {
            map.remove(&key);
            return;
        }
        let now = Instant::now();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, f| {
                now.duration_since(f.since) < FAILURE_WINDOW || f.blocked_until.is_some_and(|u| now < u)
            });
        }
        let f = map.entry(key).or_insert(Failures {
            count: 0,
            since: now,
            blocked_until: None,
        });
        if now.duration_since(f.since) > FAILURE_WINDOW && f.blocked_until.is_none_or(|u| now >= u) {
            *f = Failures {
                count: 0,
                since: now,
                blocked_until: None,
            };
        }
        f.count += 1;
        if f.count >= FAILURES_ALLOWED {
            f.blocked_until = Some(now + BLOCK_FOR);
        }
    }

    /// Forgets remembered successes, e.g. after a password change on this node.
    pub fn forget_all(&self) {
        self.verified.lock().expect("auth cache lock").clear();
    }
}

fn remember_key(stored_hash: &str, digest: &Md5Digest) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(stored_hash.as_bytes());
    h.update([0u8]);
    h.update(digest.as_str().as_bytes());
    h.finalize().into()
}

async fn slow_verify(digest: Md5Digest, stored: String) -> bool {
    slow_hash(move || verify_credential(&digest, &stored)).await
}

/// Stores the credential again with today's parameters, unless it changed
/// since it was read (a password change wins). A failure leaves the old
/// hash, which still verifies.
async fn rehash(s: &impl AccountStorage, role: Role, username: &Username, digest: Md5Digest, old: &str) {
    let fresh = slow_hash(move || hash_credential(&digest)).await;
    if let Err(e) = s.replace_password_hash(role, username, old, &fresh).await {
        tracing::warn!(error = %e, "storing a credential's new hash");
    }
}
