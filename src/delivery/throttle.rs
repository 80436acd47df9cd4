//! Per-destination limits: how many connections one provider may have from
//! us at once (each message in flight holds one; an idle connection kept
//! for the next message counts too), and how many messages may start per
//! second. Large providers throttle or block senders that open too many
//! connections or send too fast; their domains share one limit per provider
//! (qq.com and foxmail.com are one mail system). Every other domain is a
//! group of its own under the default limit.
//!
//! Alone (SQLite, one node) the limits are kept in this process. With a
//! [`Coordinator`] (PostgreSQL, several workers) they hold for the whole
//! cluster: a process holds a share of a group's connections as slots
//! leased from the database, renewed while it lives, and books the group's
//! start times a quarter of a second at a time, so that a message does not
//! cost a round trip; a process that dies gives its slots back when their
//! lease runs out.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use metrics::SharedString;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::pool::{Pool, Tag};
use crate::config::DomainLimit;

/// A destination's limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    /// Connections at once (each message in flight holds one); at least 1.
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

/// Start times are booked this far ahead at most: the longer, the fewer
/// round trips, the more a process that stops wastes of the rate.
const BOOKING_SPAN: f64 = 0.25;
/// A booked start time not used by then is given up: a message that
/// starts later would bunch up with the ones booked after it.
const TICKET_SLACK: Duration = Duration::from_millis(50);
/// How often a process short of slots asks the database again, and how
/// often its keeper looks at the slots it holds.
const POLL: Duration = Duration::from_millis(100);
/// A slot no message of this process needed for this long goes back to
/// the cluster (with its idle connection) even when nobody asks for it.
const LINGER: Duration = Duration::from_secs(2);
/// After a failed database call, wait this long before the next.
const BACKOFF: Duration = Duration::from_secs(1);
/// A group that started nothing for this long may start a burst at once.
const QUIET: Duration = Duration::from_secs(1);

/// A group's share of the cluster, kept in the database every process of
/// the cluster uses. Times are the database's, so the processes' clocks
/// need not agree.
pub trait Coordinator: Send + Sync {
    /// How long a slot is held unless renewed.
    fn lease(&self) -> Duration;

    /// Takes up to `want` free slots (numbered `0..limit`) of `group` for
    /// this process, for one lease; when it gets fewer than `want`, marks the
    /// group as wanted, for its holders to share.
    fn acquire<'a>(
        &'a self,
        group: &'a str,
        limit: u32,
        want: u32,
    ) -> BoxFuture<'a, anyhow::Result<Vec<u32>>>;

    /// Gives slots of `group` back.
    fn release<'a>(&'a self, group: &'a str, slots: &'a [u32]) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Renews every slot this process holds; those it still holds.
    fn renew(&self) -> BoxFuture<'_, anyhow::Result<Vec<(String, u32)>>>;

    /// The groups among `groups` that another process asked for lately.
    fn wanted<'a>(&'a self, groups: &'a [String]) -> BoxFuture<'a, anyhow::Result<Vec<String>>>;

    /// Books `span` of `group`'s sending time: the group's next start time
    /// moves on by `span`.
    fn book<'a>(&'a self, group: &'a str, span: Duration) -> BoxFuture<'a, anyhow::Result<Booked>>;
}

/// What a booking got.
#[derive(Clone, Copy, Debug)]
pub struct Booked {
    /// How long from now until the booked span begins (zero when the
    /// group was idle).
    pub ahead: Duration,
    /// The group had started nothing for a second ([`QUIET`]): the booked
    /// starts may go at once, as a burst the span pays back.
    pub quiet: bool,
    /// Whether another process asked for the group's slots lately.
    pub wanted: bool,
}

/// The limits of every destination, shared by every sending task.
pub struct Throttle {
    shared: Arc<Shared>,
}

struct Shared {
    /// Built-in and configured groups, by each of their domains.
    known: HashMap<String, Arc<Group>>,
    other: Limit,
    others: Mutex<HashMap<String, Arc<Group>>>,
    cluster: Option<Cluster>,
}

struct Cluster {
    coordinator: Arc<dyn Coordinator>,
    /// Idle connections, closed when their slots go back.
    pool: Arc<Pool>,
    keeper: AtomicBool,
    /// Wakes the keeper: a slot may be due back.
    kick: Notify,
}

struct Group {
    /// Its name in the cluster and the tag of its connections: its first domain.
    key: Tag,
    /// Its name on /metrics: named groups by name, every other domain as `other`.
    label: SharedString,
    limit: Limit,
    interval: Duration,
    /// Starts allowed at once after a quiet second: a second's worth.
    burst: u32,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    /// Connections this process may have: the limit (alone) or its slots.
    held: usize,
    /// The cluster's slots this process holds.
    slots: BTreeSet<u32>,
    /// Messages holding a connection.
    in_use: usize,
    /// Messages waiting for one.
    waiting: usize,
    /// A process asks the database for slots (one at a time) …
    acquiring: bool,
    /// … and not again before this.
    next_ask: Option<Instant>,
    /// The last time every slot was needed.
    full_at: Option<Instant>,
    /// Another process asked for this group's slots until this.
    wanted_until: Option<Instant>,
    /// Alone: the next start's theoretical time …
    next_start: Option<Instant>,
    /// … and the starts of the current burst still allowed at once.
    burst_left: u32,
    /// In a cluster: start times booked and not used yet.
    tickets: VecDeque<Instant>,
    booking: bool,
}

impl State {
    fn demand(&self) -> usize {
        self.in_use + self.waiting
    }

    /// Slots to give back to the cluster now: those no message here needs,
    /// at once when another process asks for them, else after a while. A
    /// process that needs all its slots keeps them: splitting a group's
    /// few connections between processes would split its rate into spans
    /// one connection each could not fill.
    fn surplus(&self, now: Instant) -> usize {
        let wanted = self.wanted_until.is_some_and(|t| t > now);
        let quiet = self.full_at.is_none_or(|t| now.duration_since(t) >= LINGER);
        let keep = if wanted || quiet { self.demand() } else { self.held };
        self.held.saturating_sub(keep.max(self.in_use))
    }
}

impl Group {
    fn new(key: &str, label: SharedString, limit: Limit, clustered: bool) -> Arc<Group> {
        let (interval, burst) = if limit.per_second.is_finite() && limit.per_second > 0.0 {
            let interval = Duration::from_secs_f64(1.0 / limit.per_second);
            (interval, limit.per_second.ceil().max(1.0) as u32)
        } else {
            (Duration::ZERO, 0)
        };
        Arc::new(Group {
            key: Arc::from(key),
            label,
            limit,
            interval,
            burst,
            state: Mutex::new(State {
                held: if clustered {
                    0
                } else {
                    limit.connections.max(1) as usize
                },
                ..State::default()
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Alone: books the next start and says how long to wait for it. Each
    /// message moves the theoretical start on by one interval and starts
    /// then, never earlier: a process that fell behind (a stall) does not
    /// catch up in a rush. After a quiet second up to a second's worth
    /// may start at once, a burst the following starts pay back, so no
    /// second ever sees more than the rate (and one).
    fn pace(&self, now: Instant) -> Duration {
        if self.interval.is_zero() {
            return Duration::ZERO;
        }
        let mut s = self.lock();
        if s.next_start.is_none_or(|t| t + QUIET <= now) {
            s.burst_left = self.burst;
        }
        let due = s.next_start.map_or(now, |n| n.max(now));
        s.next_start = Some(due + self.interval);
        if s.burst_left > 0 {
            s.burst_left -= 1;
            return Duration::ZERO;
        }
        due - now
    }

    /// How many start times a booking asks for: a quarter of a second's
    /// worth, no more than the messages waiting here.
    fn booking_size(&self, demand: usize) -> u32 {
        let span = (self.limit.per_second * BOOKING_SPAN).ceil().max(1.0) as usize;
        span.min(demand.max(1)) as u32
    }
}

/// A message's connection to a group; given back when it drops, however
/// the sending ends (RAII: an early return or a panic can't leak it).
pub struct InFlight {
    group: Arc<Group>,
    shared: Arc<Shared>,
}

impl InFlight {
    /// The group the connection is counted against.
    pub(super) fn tag(&self) -> &Tag {
        &self.group.key
    }

    /// Whether the group would have more connections than it may if this
    /// message took a connection of its own while `idle` of the group's
    /// connections stay open.
    pub(super) fn crowded(&self, idle: usize) -> bool {
        let s = self.group.lock();
        s.in_use + idle > s.held
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let surplus = {
            let mut s = self.group.lock();
            s.in_use -= 1;
            self.shared.cluster.is_some() && s.surplus(Instant::now()) > 0
        };
        metrics::gauge!("delivery_in_flight", "group" => self.group.label.clone()).decrement(1.0);
        self.group.changed.notify_waiters();
        if surplus && let Some(c) = &self.shared.cluster {
            c.kick.notify_one();
        }
    }
}

/// Counts a message among a group's waiting ones while it waits, however
/// the wait ends.
struct Waiting<'a>(&'a Group);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

/// Clears a flag of a group's state when the work it marks ends, however
/// it ends.
struct Busy<'a> {
    group: &'a Group,
    flag: fn(&mut State) -> &mut bool,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        *(self.flag)(&mut self.group.lock()) = false;
        self.group.changed.notify_waiters();
    }
}

impl Throttle {
    /// The built-in limits with `overrides` applied, kept in this process:
    /// a domain of a built-in group changes the group's limit, `*` the
    /// default, any other domain becomes a group of its own.
    pub fn new(overrides: &[DomainLimit]) -> Throttle {
        Self::build(overrides, None)
    }

    /// The same limits held for the whole cluster through `coordinator`;
    /// idle connections of `pool` are closed when their slots go back.
    pub(super) fn clustered(
        overrides: &[DomainLimit],
        coordinator: Arc<dyn Coordinator>,
        pool: Arc<Pool>,
    ) -> Throttle {
        Self::build(
            overrides,
            Some(Cluster {
                coordinator,
                pool,
                keeper: AtomicBool::new(false),
                kick: Notify::new(),
            }),
        )
    }

    fn build(overrides: &[DomainLimit], cluster: Option<Cluster>) -> Throttle {
        let clustered = cluster.is_some();
        let find = |domain: &str| overrides.iter().rev().find(|o| o.domain == domain);
        let as_limit = |o: &DomainLimit| limit(o.connections, o.per_second);
        let mut known = HashMap::new();
        for (domains, builtin) in PROVIDERS {
            let chosen = domains.iter().find_map(|d| find(d)).map_or(*builtin, as_limit);
            let group = Group::new(domains[0], SharedString::from(domains[0]), chosen, clustered);
            for d in *domains {
                known.insert(d.to_string(), group.clone());
            }
        }
        for o in overrides {
            if o.domain != "*" && !known.contains_key(&o.domain) {
                let label = SharedString::from(o.domain.clone());
                known.insert(
                    o.domain.clone(),
                    Group::new(&o.domain, label, as_limit(o), clustered),
                );
            }
        }
        Throttle {
            shared: Arc::new(Shared {
                known,
                other: find("*").map_or(OTHER, as_limit),
                others: Mutex::new(HashMap::new()),
                cluster,
            }),
        }
    }

    /// The limit `domain` (lower case) is sent under.
    pub fn limit(&self, domain: &str) -> Limit {
        self.shared
            .known
            .get(domain)
            .map_or(self.shared.other, |g| g.limit)
    }

    /// Waits for a connection of the group and for the group's pace, then
    /// holds the connection until the returned guard drops.
    pub async fn enter(&self, domain: &str) -> InFlight {
        let group = self.shared.group(domain);
        let began = Instant::now();
        self.connection(&group).await;
        let in_flight = InFlight {
            group: group.clone(),
            shared: self.shared.clone(),
        };
        metrics::gauge!("delivery_in_flight", "group" => group.label.clone()).increment(1.0);
        let wait = match &self.shared.cluster {
            Some(c) if !group.interval.is_zero() => self.ticket(&group, c).await,
            _ => group.pace(Instant::now()),
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let waited = began.elapsed();
        if waited >= Duration::from_millis(1) {
            metrics::counter!("delivery_waits_total", "group" => group.label.clone()).increment(1);
            metrics::histogram!("delivery_wait_seconds", "group" => group.label.clone())
                .record(waited.as_secs_f64());
        }
        in_flight
    }

    /// Messages in flight to `domain`'s group now.
    pub fn in_flight(&self, domain: &str) -> usize {
        self.shared.group(domain).lock().in_use
    }

    /// Waits until this process may use one more connection of `group`,
    /// asking the cluster for slots when it holds too few.
    async fn connection(&self, group: &Group) {
        let mut waiting = None;
        loop {
            let changed = group.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let ask = {
                let mut s = group.lock();
                if s.in_use < s.held {
                    s.in_use += 1;
                    if s.in_use == s.held {
                        s.full_at = Some(now);
                    }
                    drop(s);
                    drop(waiting);
                    return;
                }
                if waiting.is_none() {
                    s.waiting += 1;
                    waiting = Some(Waiting(group));
                }
                s.full_at = Some(now);
                let limit = group.limit.connections.max(1) as usize;
                match &self.shared.cluster {
                    Some(_) if s.held < limit && !s.acquiring && s.next_ask.is_none_or(|t| t <= now) => {
                        s.acquiring = true;
                        Some(s.demand().min(limit) - s.held)
                    }
                    _ => None,
                }
            };
            match (ask, &self.shared.cluster) {
                (Some(want), Some(c)) => self.acquire(group, c, want as u32).await,
                (_, Some(_)) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
                (_, None) => changed.await,
            }
        }
    }

    /// Asks the cluster for `want` more slots of `group`.
    async fn acquire(&self, group: &Group, c: &Cluster, want: u32) {
        let _busy = Busy {
            group,
            flag: |s| &mut s.acquiring,
        };
        let asked = Instant::now();
        let got = c
            .coordinator
            .acquire(&group.key, group.limit.connections.max(1), want)
            .await;
        metrics::histogram!("delivery_grant_seconds", "kind" => "connection")
            .record(asked.elapsed().as_secs_f64());
        let mut s = group.lock();
        match got {
            Ok(slots) if !slots.is_empty() => {
                metrics::counter!("delivery_grants_total", "group" => group.label.clone(), "kind" => "connection")
                    .increment(slots.len() as u64);
                s.slots.extend(slots);
                s.held = s.slots.len();
                s.next_ask = None;
                drop(s);
                self.start_keeper();
            }
            Ok(_) => s.next_ask = Some(Instant::now() + POLL),
            Err(e) => {
                s.next_ask = Some(Instant::now() + BACKOFF);
                tracing::warn!(group = %group.key, error = %e, "asking the cluster for connection slots");
            }
        }
    }

    /// In a cluster: how long until the next start time booked for this
    /// process, booking a quarter of a second's worth when none is left.
    async fn ticket(&self, group: &Group, c: &Cluster) -> Duration {
        loop {
            let changed = group.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let book = {
                let mut s = group.lock();
                let now = Instant::now();
                while s.tickets.front().is_some_and(|t| *t + TICKET_SLACK < now) {
                    s.tickets.pop_front();
                }
                if let Some(t) = s.tickets.pop_front() {
                    return t.saturating_duration_since(now);
                }
                if s.booking {
                    None
                } else {
                    s.booking = true;
                    Some(group.booking_size(s.demand()))
                }
            };
            match book {
                Some(n) => self.book(group, c, n).await,
                None => changed.await,
            }
        }
    }

    /// Books `n` start times of `group`, spaced by its interval.
    async fn book(&self, group: &Group, c: &Cluster, n: u32) {
        let _busy = Busy {
            group,
            flag: |s| &mut s.booking,
        };
        let asked = Instant::now();
        let booked = c.coordinator.book(&group.key, group.interval * n).await;
        metrics::histogram!("delivery_grant_seconds", "kind" => "rate").record(asked.elapsed().as_secs_f64());
        match booked {
            Ok(b) => {
                metrics::counter!("delivery_grants_total", "group" => group.label.clone(), "kind" => "rate")
                    .increment(u64::from(n));
                let now = Instant::now();
                let mut s = group.lock();
                for k in 0..n {
                    let due = if b.quiet {
                        Duration::ZERO
                    } else {
                        b.ahead + group.interval * k
                    };
                    s.tickets.push_back(now + due);
                }
                if b.wanted {
                    s.wanted_until = Some(now + Duration::from_secs(1));
                    if s.surplus(now) > 0 {
                        c.kick.notify_one();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(group = %group.key, error = %e, "booking start times with the cluster");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }

    /// Starts the task that renews this process's slots and gives back
    /// those it no longer needs (once, when it first holds a slot).
    fn start_keeper(&self) {
        let Some(c) = &self.shared.cluster else { return };
        if c.keeper.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::downgrade(&self.shared);
        tokio::spawn(keep(shared));
    }

    /// Gives every slot back (at shutdown, after the idle connections are closed).
    pub async fn release_all(&self) {
        let Some(c) = &self.shared.cluster else { return };
        for group in self.shared.groups() {
            let slots: Vec<u32> = {
                let mut s = group.lock();
                let slots = std::mem::take(&mut s.slots).into_iter().collect();
                s.held = 0;
                slots
            };
            if !slots.is_empty()
                && let Err(e) = c.coordinator.release(&group.key, &slots).await
            {
                tracing::warn!(group = %group.key, error = %e, "giving connection slots back");
            }
        }
    }
}

impl Shared {
    fn group(&self, domain: &str) -> Arc<Group> {
        if let Some(g) = self.known.get(domain) {
            return g.clone();
        }
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = others.get(domain) {
            return g.clone();
        }
        if others.len() >= OTHERS_KEPT {
            // Forget the groups nobody is sending to and that hold no slot.
            others.retain(|_, g| Arc::strong_count(g) > 1 || g.lock().held > 0);
        }
        let g = Group::new(
            domain,
            SharedString::const_str("other"),
            self.other,
            self.cluster.is_some(),
        );
        others.insert(domain.to_string(), g.clone());
        g
    }

    /// Every group, each once.
    fn groups(&self) -> Vec<Arc<Group>> {
        let mut seen = std::collections::HashSet::new();
        let mut all: Vec<Arc<Group>> = Vec::new();
        let others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        for g in self.known.values().chain(others.values()) {
            if seen.insert(Arc::as_ptr(g)) {
                all.push(g.clone());
            }
        }
        all
    }
}

/// The keeper of a process's slots: every [`POLL`] (or when kicked) it
/// gives back the slots no message needs — closing their idle connections
/// first, so no other process opens one before ours is closed — and every
/// third of a lease it renews the others. It ends with the throttle.
async fn keep(shared: Weak<Shared>) {
    let mut renewed = Instant::now();
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let Some(c) = &strong.cluster else { return };
        let kicked = c.kick.notified();
        tokio::pin!(kicked);
        kicked.as_mut().enable();
        let holding: Vec<Arc<Group>> = strong
            .groups()
            .into_iter()
            .filter(|g| g.lock().held > 0)
            .collect();
        // Who else wants the groups this process could share.
        let now = Instant::now();
        let shareable: Vec<String> = holding
            .iter()
            .filter(|g| {
                let s = g.lock();
                s.held > s.demand()
            })
            .map(|g| g.key.to_string())
            .collect();
        if !shareable.is_empty() {
            match c.coordinator.wanted(&shareable).await {
                Ok(wanted) => {
                    for g in holding.iter().filter(|g| wanted.iter().any(|w| **w == *g.key)) {
                        g.lock().wanted_until = Some(now + Duration::from_secs(1));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "asking who wants connection slots"),
            }
        }
        for g in &holding {
            give_back(c, g).await;
        }
        if renewed.elapsed() >= c.coordinator.lease() / 3 {
            renewed = Instant::now();
            match c.coordinator.renew().await {
                Ok(held) => reconcile(&strong, c, &held).await,
                Err(e) => tracing::warn!(error = %e, "renewing connection slots"),
            }
        }
        tokio::select! {
            _ = kicked => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Gives back the slots of `group` this process no longer needs.
async fn give_back(c: &Cluster, group: &Group) {
    let freed: Vec<u32> = {
        let mut s = group.lock();
        let n = s.surplus(Instant::now());
        let freed: Vec<u32> = s.slots.iter().rev().take(n).copied().collect();
        for slot in &freed {
            s.slots.remove(slot);
        }
        s.held = s.slots.len();
        freed
    };
    if freed.is_empty() {
        return;
    }
    close_surplus(c, group).await;
    if let Err(e) = c.coordinator.release(&group.key, &freed).await {
        tracing::warn!(group = %group.key, error = %e, "giving connection slots back");
    }
}

/// Closes idle connections of `group` until its connections fit its slots.
async fn close_surplus(c: &Cluster, group: &Group) {
    loop {
        let over = {
            let s = group.lock();
            s.in_use + c.pool.idle_of(&group.key) > s.held
        };
        if !over {
            return;
        }
        match c.pool.take_tagged(&group.key) {
            Some(conn) => conn.quit(Duration::from_secs(5)).await,
            None => return,
        }
    }
}

/// Makes the slots this process counts those the database says it holds:
/// a slot lost (its lease ran out while this process stalled) is dropped
/// with an idle connection, one taken but never counted (the asking was
/// cut short) is counted or given back.
async fn reconcile(shared: &Shared, c: &Cluster, held: &[(String, u32)]) {
    let mut by_group: HashMap<&str, BTreeSet<u32>> = HashMap::new();
    for (g, slot) in held {
        by_group.entry(g.as_str()).or_default().insert(*slot);
    }
    for group in shared.groups() {
        let slots = by_group.remove(&*group.key).unwrap_or_default();
        let lost = {
            let mut s = group.lock();
            if s.acquiring {
                // Slots granted after the renewal are not in its answer:
                // this group waits for the next one.
                continue;
            }
            let lost = s.slots.difference(&slots).count();
            s.slots = slots;
            s.held = s.slots.len();
            lost
        };
        if lost > 0 {
            tracing::warn!(group = %group.key, lost, "connection slots lost to another process");
            close_surplus(c, &group).await;
        }
        group.changed.notify_waiters();
    }
    for (g, slots) in by_group {
        let slots: Vec<u32> = slots.into_iter().collect();
        if let Err(e) = c.coordinator.release(g, &slots).await {
            tracing::warn!(group = g, error = %e, "giving connection slots back");
        }
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
        assert_eq!(
            t.shared.group("one.test").lock().waiting,
            0,
            "the wait given up is not counted"
        );
    }

    #[test]
    fn pace_allows_a_second_of_burst_then_spaces_messages() {
        let g = Group::new("p.test", SharedString::const_str("p"), limit(1, 4.0), false);
        let now = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| g.pace(now)).collect();
        assert_eq!(&waits[..4], &[Duration::ZERO; 4]);
        assert_eq!(waits[4], Duration::from_millis(1000), "the burst is paid back");
        assert_eq!(waits[5], Duration::from_millis(1250));
        let unlimited = Group::new("u.test", SharedString::const_str("u"), limit(1, 0.0), false);
        assert_eq!(unlimited.pace(now), Duration::ZERO);
    }

    #[test]
    fn a_stall_does_not_catch_up_and_a_quiet_second_allows_a_burst_again() {
        let g = Group::new("p.test", SharedString::const_str("p"), limit(1, 4.0), false);
        let t0 = Instant::now();
        for _ in 0..4 {
            g.pace(t0);
        }
        // Behind by half a second: one now, then spaced again.
        let late = t0 + Duration::from_millis(1500);
        let waits: Vec<Duration> = (0..3).map(|_| g.pace(late)).collect();
        assert_eq!(
            waits,
            [
                Duration::ZERO,
                Duration::from_millis(250),
                Duration::from_millis(500)
            ]
        );
        // Nothing started for a second: a burst again.
        let quiet = t0 + Duration::from_millis(3500);
        let waits: Vec<Duration> = (0..5).map(|_| g.pace(quiet)).collect();
        assert_eq!(&waits[..4], &[Duration::ZERO; 4]);
        assert_eq!(waits[4], Duration::from_secs(1));
    }

    #[test]
    fn slots_go_back_when_idle_or_wanted_never_in_use() {
        let now = Instant::now();
        let busy = State {
            held: 4,
            in_use: 4,
            waiting: 3,
            full_at: Some(now),
            ..State::default()
        };
        assert_eq!(busy.surplus(now), 0);
        let wanted = State {
            wanted_until: Some(now + Duration::from_secs(1)),
            ..busy
        };
        assert_eq!(wanted.surplus(now), 0, "not the slots of its messages");
        let finishing = State {
            in_use: 1,
            waiting: 0,
            ..wanted
        };
        assert_eq!(finishing.surplus(now), 3, "wanted: down to what is used");
        let lingering = State {
            wanted_until: None,
            ..finishing
        };
        assert_eq!(lingering.surplus(now), 0, "kept a while for the next message");
        assert_eq!(lingering.surplus(now + LINGER), 3);
    }

    #[test]
    fn bookings_cover_a_quarter_second_or_the_demand() {
        let g = Group::new("b.test", SharedString::const_str("b"), limit(2, 40.0), true);
        assert_eq!(g.booking_size(32), 10);
        assert_eq!(g.booking_size(3), 3);
        assert_eq!(g.booking_size(0), 1);
        let slow = Group::new("s.test", SharedString::const_str("s"), limit(2, 0.5), true);
        assert_eq!(slow.booking_size(32), 1);
        assert_eq!(g.burst, 40);
    }
}
