//! Idle connections kept for the next message to the same server: a new
//! connection costs a TCP and often a TLS handshake, EHLO and AUTH; a reused
//! one an RSET in the same write as the next MAIL FROM.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::Tls;
use super::session::Connection;

/// Which connections can carry which messages: the same server, spoken to
/// the same way, logged in as the same user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub user: Option<String>,
}

pub struct Pool {
    idle: Mutex<Idle>,
    per_key: usize,
    max_idle: Duration,
}

struct Idle {
    by_key: HashMap<Key, Vec<Connection>>,
    swept: Instant,
}

impl Pool {
    pub fn new(per_key: usize, max_idle: Duration) -> Pool {
        Pool {
            idle: Mutex::new(Idle {
                by_key: HashMap::new(),
                swept: Instant::now(),
            }),
            per_key,
            max_idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection to `key` still young enough;
    /// older ones are dropped (the server has likely closed them).
    pub fn take(&self, key: &Key) -> Option<Connection> {
        let mut idle = self.lock();
        let list = idle.by_key.get_mut(key)?;
        while let Some(c) = list.pop() {
            if c.idle_since.elapsed() < self.max_idle {
                return Some(c);
            }
        }
        None
    }

    /// Keeps `c` for later; gives it back when enough are kept already,
    /// for the caller to close.
    pub fn keep(&self, key: Key, c: Connection) -> Option<Connection> {
        if self.per_key == 0 {
            return Some(c);
        }
        let mut idle = self.lock();
        if idle.swept.elapsed() >= self.max_idle {
            // Now and then, drop what went stale for servers no longer sent to.
            let max_idle = self.max_idle;
            idle.by_key.retain(|_, list| {
                list.retain(|c| c.idle_since.elapsed() < max_idle);
                !list.is_empty()
            });
            idle.swept = Instant::now();
        }
        let list = idle.by_key.entry(key).or_default();
        if list.len() >= self.per_key {
            return Some(c);
        }
        list.push(c);
        None
    }

    /// Every idle connection, to close.
    pub fn drain(&self) -> Vec<Connection> {
        self.lock().by_key.drain().flat_map(|(_, list)| list).collect()
    }
}
