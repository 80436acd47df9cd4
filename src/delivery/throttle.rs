//! Per-destination limits: how many messages may be in flight to one
//! provider at once (each holds one connection), and how many may start per
//! second. Large providers throttle or block senders that open too many
//! connections or send too fast; their domains share one limit per provider
//! (qq.com and foxmail.com are one mail system). Every other domain is a
//! group of its own under the default limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::DomainLimit;

/// A destination's limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    /// Messages in flight (connections in use) at once; at least 1.
    pub connections: u32,
    /// Messages started per second; 0 means no limit.
    pub per_second: f64,
}

const fn limit(connections: u32, per_second: f64) -> Limit {
    Limit {
        connections,
        per_second,
    }
}

/// Built-in limits of the large providers, cautious enough for a new sending
/// address; `QUNFA_DOMAIN_LIMITS` overrides them.
const PROVIDERS: &[(&[&str], Limit)] = &[
    (&["qq.com", "vip.qq.com", "foxmail.com"], limit(5, 10.0)),
    (&["163.com", "vip.163.com"], limit(5, 10.0)),
    (&["126.com", "vip.126.com"], limit(5, 10.0)),
    (&["yeah.net"], limit(3, 5.0)),
    (&["sina.com", "sina.cn", "vip.sina.com"], limit(3, 5.0)),
    (&["sohu.com"], limit(3, 5.0)),
    (&["139.com"], limit(3, 5.0)),
    (&["aliyun.com"], limit(3, 5.0)),
    (&["gmail.com", "googlemail.com"], limit(10, 20.0)),
    (
        &["outlook.com", "hotmail.com", "live.com", "msn.com"],
        limit(10, 20.0),
    ),
    (&["yahoo.com", "ymail.com", "rocketmail.com"], limit(5, 10.0)),
    (&["icloud.com", "me.com", "mac.com"], limit(5, 10.0)),
];

/// Any other domain: a few connections, no rate limit.
pub const OTHER: Limit = limit(10, 0.0);

/// Domains met at run time are kept this many before idle ones are dropped.
const OTHERS_KEPT: usize = 10_000;

/// The limits of every destination, shared by every sending task.
pub struct Throttle {
    /// Built-in and configured groups, by each of their domains.
    known: HashMap<String, Arc<Group>>,
    other: Limit,
    others: Mutex<HashMap<String, Arc<Group>>>,
}

struct Group {
    limit: Limit,
    slots: Arc<Semaphore>,
    pace: Mutex<Pace>,
}

impl Group {
    fn new(limit: Limit) -> Arc<Group> {
        Arc::new(Group {
            limit,
            slots: Arc::new(Semaphore::new(limit.connections.max(1) as usize)),
            pace: Mutex::new(Pace::new(limit.per_second)),
        })
    }
}

/// A message in flight to a group; the slot is freed when it drops, however
/// the sending ends (RAII: an early return or a panic can't leak a slot).
pub struct InFlight {
    _slot: OwnedSemaphorePermit,
}

impl Throttle {
    /// The built-in limits with `overrides` applied: a domain of a built-in
    /// group changes the group's limit, `*` the default, any other domain
    /// becomes a group of its own.
    pub fn new(overrides: &[DomainLimit]) -> Throttle {
        let find = |domain: &str| overrides.iter().rev().find(|o| o.domain == domain);
        let as_limit = |o: &DomainLimit| limit(o.connections, o.per_second);
        let mut known = HashMap::new();
        for (domains, builtin) in PROVIDERS {
            let chosen = domains.iter().find_map(|d| find(d)).map_or(*builtin, as_limit);
            let group = Group::new(chosen);
            for d in *domains {
                known.insert(d.to_string(), group.clone());
            }
        }
        for o in overrides {
            if o.domain != "*" && !known.contains_key(&o.domain) {
                known.insert(o.domain.clone(), Group::new(as_limit(o)));
            }
        }
        Throttle {
            known,
            other: find("*").map_or(OTHER, as_limit),
            others: Mutex::new(HashMap::new()),
        }
    }

    /// The limit `domain` (lower case) is sent under.
    pub fn limit(&self, domain: &str) -> Limit {
        self.known.get(domain).map_or(self.other, |g| g.limit)
    }

    /// Waits for a free slot and for the group's pace, then holds the slot
    /// until the returned guard drops.
    pub async fn enter(&self, domain: &str) -> InFlight {
        let group = self.group(domain);
        let slot = group
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("throttle semaphores are never closed");
        let wait = group
            .pace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        InFlight { _slot: slot }
    }

    /// Messages in flight to `domain`'s group now.
    pub fn in_flight(&self, domain: &str) -> usize {
        let group = self.group(domain);
        group.limit.connections.max(1) as usize - group.slots.available_permits()
    }

    fn group(&self, domain: &str) -> Arc<Group> {
        if let Some(g) = self.known.get(domain) {
            return g.clone();
        }
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = others.get(domain) {
            return g.clone();
        }
        if others.len() >= OTHERS_KEPT {
            // Forget the groups nobody is sending to; they only held a pace.
            others.retain(|_, g| Arc::strong_count(g) > 1);
        }
        let g = Group::new(self.other);
        others.insert(domain.to_string(), g.clone());
        g
    }
}

/// A rate as a generic cell rate algorithm: each message moves the
/// theoretical arrival time on by one interval; a burst of up to one
/// second's worth may start at once after a quiet spell.
struct Pace {
    interval: Duration,
    tolerance: Duration,
    next: Option<Instant>,
}

impl Pace {
    fn new(per_second: f64) -> Pace {
        if per_second.is_finite() && per_second > 0.0 {
            let interval = Duration::from_secs_f64(1.0 / per_second);
            let burst = per_second.ceil().max(1.0) as u32;
            Pace {
                interval,
                tolerance: interval * (burst - 1),
                next: None,
            }
        } else {
            Pace {
                interval: Duration::ZERO,
                tolerance: Duration::ZERO,
                next: None,
            }
        }
    }

    /// Books the next start and says how long to wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        if self.interval.is_zero() {
            return Duration::ZERO;
        }
        let due = self.next.map_or(now, |n| n.max(now));
        self.next = Some(due + self.interval);
        let start = due.checked_sub(self.tolerance).unwrap_or(now).max(now);
        start - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn over(domain: &str, connections: u32, per_second: f64) -> DomainLimit {
        DomainLimit {
            domain: domain.into(),
            connections,
            per_second,
        }
    }

    #[test]
    fn providers_share_a_limit_and_overrides_win() {
        let t = Throttle::new(&[
            over("foxmail.com", 2, 4.0),
            over("corp.test", 1, 0.0),
            over("*", 3, 0.0),
        ]);
        assert_eq!(t.limit("qq.com"), limit(2, 4.0));
        assert_eq!(t.limit("vip.qq.com"), limit(2, 4.0));
        assert_eq!(t.limit("gmail.com"), limit(10, 20.0));
        assert_eq!(t.limit("corp.test"), limit(1, 0.0));
        assert_eq!(t.limit("unknown.test"), limit(3, 0.0));
        assert_eq!(Throttle::new(&[]).limit("unknown.test"), OTHER);
    }

    #[tokio::test]
    async fn the_guard_holds_a_slot_until_it_drops() {
        let t = Throttle::new(&[over("one.test", 1, 0.0)]);
        let first = t.enter("one.test").await;
        assert_eq!(t.in_flight("one.test"), 1);
        let second = tokio::time::timeout(Duration::from_millis(50), t.enter("one.test")).await;
        assert!(second.is_err(), "a second message entered a one-connection group");
        drop(first);
        let _again = t.enter("one.test").await;
        assert_eq!(t.in_flight("qq.com"), 0);
    }

    #[test]
    fn pace_allows_a_second_of_burst_then_spaces_messages() {
        let mut p = Pace::new(4.0);
        let now = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| p.reserve(now)).collect();
        assert_eq!(&waits[..4], &[Duration::ZERO; 4]);
        assert_eq!(waits[4], Duration::from_millis(250));
        assert_eq!(waits[5], Duration::from_millis(500));
        let mut unlimited = Pace::new(0.0);
        assert_eq!(unlimited.reserve(now), Duration::ZERO);
    }
}
