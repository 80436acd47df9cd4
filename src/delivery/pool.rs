//! Idle connections kept for the next message to the same server: a new
//! connection costs a TCP and often a TLS handshake, EHLO and AUTH; a reused
//! one an RSET in the same write as the next MAIL FROM.
//!
//! Each idle connection is counted against the destination group whose
//! message it carried last (`throttle`): a group's connections, in use or
//! idle, stay within its share of connections, so a receiving server never
//! sees more sessions than the group's limit, idle ones included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

/// The destination group an idle connection is counted against.
pub type Tag = Arc<str>;

pub struct Pool {
    idle: Mutex<Idle>,
    per_key: usize,
    max_idle: Duration,
}

struct Idle {
    by_key: HashMap<Key, Vec<(Connection, Tag)>>,
    /// Idle connections per group.
    by_tag: HashMap<Tag, usize>,
    swept: Instant,
}

impl Idle {
    fn uncount(&mut self, tag: &Tag) {
        if let Some(n) = self.by_tag.get_mut(tag) {
            *n -= 1;
            if *n == 0 {
                self.by_tag.remove(tag);
            }
        }
    }
}

impl Pool {
    pub fn new(per_key: usize, max_idle: Duration) -> Pool {
        Pool {
            idle: Mutex::new(Idle {
                by_key: HashMap::new(),
                by_tag: HashMap::new(),
                swept: Instant::now(),
            }),
            per_key,
            max_idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection to `key` still young enough, the most recently
    /// used one of group `tag` first, with the group it was counted
    /// against; older ones are dropped (the server has likely closed them).
    pub fn take(&self, key: &Key, tag: &Tag) -> Option<(Connection, Tag)> {
        let mut idle = self.lock();
        let idle = &mut *idle;
        let list = idle.by_key.get_mut(key)?;
        let mut stale = Vec::new();
        list.retain(|(c, t)| {
            let keep = c.idle_since.elapsed() < self.max_idle;
            if !keep {
                stale.push(t.clone());
            }
            keep
        });
        let at = list
            .iter()
            .rposition(|(_, t)| t == tag)
            .or_else(|| list.len().checked_sub(1));
        let found = at.map(|i| list.remove(i));
        for t in &stale {
            idle.uncount(t);
        }
        if let Some((_, t)) = &found {
            idle.uncount(t);
        }
        found
    }

    /// Any idle connection of group `tag`, whatever its server: one the
    /// group must close to stay within its connections.
    pub fn take_tagged(&self, tag: &Tag) -> Option<Connection> {
        let mut idle = self.lock();
        if !idle.by_tag.contains_key(tag) {
            return None;
        }
        let found = idle.by_key.values_mut().find_map(|list| {
            let i = list.iter().rposition(|(_, t)| t == tag)?;
            Some(list.remove(i).0)
        });
        if found.is_some() {
            idle.uncount(tag);
        }
        found
    }

    /// Idle connections of group `tag`.
    pub fn idle_of(&self, tag: &Tag) -> usize {
        self.lock().by_tag.get(tag).copied().unwrap_or(0)
    }

    /// Keeps `c` for later, counted against `tag`; gives it back when
    /// enough are kept already, for the caller to close.
    pub fn keep(&self, key: Key, c: Connection, tag: Tag) -> Option<Connection> {
        if self.per_key == 0 {
            return Some(c);
        }
        let mut idle = self.lock();
        if idle.swept.elapsed() >= self.max_idle {
            // Now and then, drop what went stale for servers no longer sent to.
            let max_idle = self.max_idle;
            let mut stale = Vec::new();
            idle.by_key.retain(|_, list| {
                list.retain(|(c, t)| {
                    let keep = c.idle_since.elapsed() < max_idle;
                    if !keep {
                        stale.push(t.clone());
                    }
                    keep
                });
                !list.is_empty()
            });
            for t in &stale {
                idle.uncount(t);
            }
            idle.swept = Instant::now();
        }
        let list = idle.by_key.entry(key).or_default();
        if list.len() >= self.per_key {
            return Some(c);
        }
        list.push((c, tag.clone()));
        *idle.by_tag.entry(tag).or_default() += 1;
        None
    }

    /// Every idle connection, to close.
    pub fn drain(&self) -> Vec<Connection> {
        let mut idle = self.lock();
        idle.by_tag.clear();
        idle.by_key
            .drain()
            .flat_map(|(_, list)| list)
            .map(|(c, _)| c)
            .collect()
    }
}
