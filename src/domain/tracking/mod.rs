//! Tracking: the opens and clicks that the links of sent messages record
//! (folded a batch at a time into the aggregates the reports read), the
//! targets of click links, and the unsubscribe link.

mod cases;

pub use cases::*;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jiff::civil::Date;

use crate::domain::ids::{CustomerId, DeliveryId, LinkId, ListId, TaskId};
use crate::domain::templates::FooterLanguage;

/// One open or click, as the HTTP edge saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub delivery: DeliveryId,
    /// `None` for an open; the link for a click.
    pub link: Option<LinkId>,
    pub at: i64,
    /// The local day of `at`.
    pub day: Date,
    pub ip: String,
    pub browser: String,
    pub os: String,
    pub device: &'static str,
    /// A proxy's prefetch, a scanner or a HEAD request.
    pub machine: bool,
}

/// Whose delivery a link's token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryOwner {
    pub customer: CustomerId,
    pub task: TaskId,
    /// The list its task sends to.
    pub list: ListId,
    pub address: String,
}

/// What decides the language of a delivery's unsubscribe page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryLanguage {
    /// The task's `footer_language`.
    pub task: FooterLanguage,
    /// Its customer's.
    pub customer: FooterLanguage,
    /// The task's template (subject, HTML, text); `None` when it is gone.
    pub template: Option<(String, String, String)>,
}

impl DeliveryLanguage {
    /// The task's setting, else its customer's.
    pub fn setting(&self) -> FooterLanguage {
        self.task.or(self.customer)
    }
}

/// What folding a hit needs to know of its delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HitTarget {
    pub task: TaskId,
    pub customer: CustomerId,
    pub address: String,
    /// When the receiving server accepted the message.
    pub sent_at: Option<i64>,
}

/// A recipient's hits of a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecipientHits {
    pub task: TaskId,
    pub address: String,
    pub opens: i64,
    /// Opens by a person (not a machine).
    pub opens_human: i64,
    pub open_first: Option<i64>,
    pub open_last: Option<i64>,
    pub clicks: i64,
    pub clicks_human: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
    /// The client of the earliest hit.
    pub ip_first: String,
    pub browser: String,
    pub os: String,
    pub device: &'static str,
    /// The address of the latest hit.
    pub ip_last: String,
    first_at: Option<i64>,
    last_at: Option<i64>,
}

/// A recipient's clicks on one link in a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClickHits {
    pub task: TaskId,
    pub address: String,
    pub total: i64,
    pub human: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// A (customer, day, task)'s hits in a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayHits {
    pub opens: i64,
    pub opens_machine: i64,
    pub clicks: i64,
    pub clicks_machine: i64,
}

/// A batch of hits folded per recipient, per (recipient, link) and per
/// (customer, day, task): what storage adds to its aggregates, in one
/// transaction. Ordered maps, so that every writer touches rows in the same
/// order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HitBatch {
    pub recipients: BTreeMap<DeliveryId, RecipientHits>,
    pub clicks: BTreeMap<(DeliveryId, LinkId), ClickHits>,
    pub days: BTreeMap<(CustomerId, Date, TaskId), DayHits>,
    /// How many hits it holds.
    pub recorded: usize,
}

fn earliest(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn latest(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl HitBatch {
    /// Folds hits. A hit within `scanner_window` seconds of its message's
    /// delivery is a machine's (a link scanner, a proxy's prefetch), like
    /// one the edge already knew for a machine's; hits of deliveries not in
    /// `targets` (a deleted task's) are left out.
    pub fn fold(hits: &[Hit], targets: &HashMap<DeliveryId, HitTarget>, scanner_window: i64) -> HitBatch {
        let mut b = HitBatch::default();
        for h in hits {
            let Some(target) = targets.get(&h.delivery) else {
                continue;
            };
            b.recorded += 1;
            let scanned = target.sent_at.is_some_and(|s| h.at - s < scanner_window);
            let human = !(h.machine || scanned);
            let r = b.recipients.entry(h.delivery).or_insert_with(|| RecipientHits {
                task: target.task,
                address: target.address.clone(),
                ..Default::default()
            });
            if r.first_at.is_none_or(|at| h.at < at) {
                r.first_at = Some(h.at);
                r.ip_first.clone_from(&h.ip);
                r.browser.clone_from(&h.browser);
                r.os.clone_from(&h.os);
                r.device = h.device;
            }
            if r.last_at.is_none_or(|at| h.at >= at) {
                r.last_at = Some(h.at);
                r.ip_last.clone_from(&h.ip);
            }
            let d = b.days.entry((target.customer, h.day, target.task)).or_default();
            match h.link {
                None => {
                    r.opens += 1;
                    r.opens_human += i64::from(human);
                    r.open_first = earliest(r.open_first, h.at);
                    r.open_last = latest(r.open_last, h.at);
                    d.opens += 1;
                    d.opens_machine += i64::from(!human);
                }
                Some(link) => {
                    r.clicks += 1;
                    r.clicks_human += i64::from(human);
                    r.click_first = earliest(r.click_first, h.at);
                    r.click_last = latest(r.click_last, h.at);
                    let c = b.clicks.entry((h.delivery, link)).or_insert_with(|| ClickHits {
                        task: target.task,
                        address: target.address.clone(),
                        ..Default::default()
                    });
                    c.total += 1;
                    c.human += i64::from(human);
                    c.first = earliest(c.first, h.at);
                    c.last = latest(c.last, h.at);
                    d.clicks += 1;
                    d.clicks_machine += i64::from(!human);
                }
            }
        }
        b
    }
}

/// Click links looked up lately: (delivery, link) → URL, so that a busy
/// link costs no query. Bounded: emptied when full.
#[derive(Default)]
pub struct LinkCache(Mutex<HashMap<(DeliveryId, LinkId), Arc<str>>>);

const LINKS_CACHED: usize = 100_000;

impl LinkCache {
    pub fn get(&self, delivery: DeliveryId, link: LinkId) -> Option<Arc<str>> {
        self.0
            .lock()
            .expect("link cache lock")
            .get(&(delivery, link))
            .cloned()
    }

    pub fn put(&self, delivery: DeliveryId, link: LinkId, url: Arc<str>) {
        let mut cache = self.0.lock().expect("link cache lock");
        if cache.len() >= LINKS_CACHED {
            cache.clear();
        }
        cache.insert((delivery, link), url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(delivery: i64, link: Option<i64>, at: i64, ip: &str, machine: bool) -> Hit {
        Hit {
            delivery: DeliveryId(delivery),
            link: link.map(LinkId),
            at,
            day: Date::constant(2024, 5, 1),
            ip: ip.to_string(),
            browser: format!("browser of {ip}"),
            os: String::new(),
            device: "desktop",
            machine,
        }
    }

    fn targets() -> HashMap<DeliveryId, HitTarget> {
        HashMap::from([(
            DeliveryId(7),
            HitTarget {
                task: TaskId(3),
                customer: CustomerId(1),
                address: "a@example.com".to_string(),
                sent_at: Some(1_000),
            },
        )])
    }

    #[test]
    fn early_and_machine_hits_are_not_a_persons() {
        let hits = [
            // Within the 10 s window after delivery: a scanner.
            hit(7, None, 1_005, "10.0.0.1", false),
            hit(7, None, 2_000, "10.0.0.2", true),
            hit(7, None, 3_000, "10.0.0.3", false),
            hit(7, Some(2), 1_002, "10.0.0.4", false),
            hit(7, Some(2), 4_000, "10.0.0.5", false),
            // A deleted task's delivery.
            hit(8, None, 5_000, "10.0.0.6", false),
        ];
        let b = HitBatch::fold(&hits, &targets(), 10);
        assert_eq!(b.recorded, 5);
        let r = &b.recipients[&DeliveryId(7)];
        assert_eq!((r.opens, r.opens_human, r.clicks, r.clicks_human), (3, 1, 2, 1));
        assert_eq!((r.open_first, r.open_last), (Some(1_005), Some(3_000)));
        assert_eq!((r.click_first, r.click_last), (Some(1_002), Some(4_000)));
        // The earliest hit's client, the latest hit's address.
        assert_eq!(
            (r.ip_first.as_str(), r.ip_last.as_str()),
            ("10.0.0.4", "10.0.0.5")
        );
        assert_eq!(r.browser, "browser of 10.0.0.4");
        let c = &b.clicks[&(DeliveryId(7), LinkId(2))];
        assert_eq!(
            (c.total, c.human, c.first, c.last),
            (2, 1, Some(1_002), Some(4_000))
        );
        let d = b.days[&(CustomerId(1), Date::constant(2024, 5, 1), TaskId(3))];
        assert_eq!(
            d,
            DayHits {
                opens: 3,
                opens_machine: 2,
                clicks: 2,
                clicks_machine: 1
            }
        );
    }

    #[test]
    fn a_zero_window_trusts_every_hit_the_edge_trusted() {
        let b = HitBatch::fold(&[hit(7, None, 1_000, "10.0.0.1", false)], &targets(), 0);
        assert_eq!(b.recipients[&DeliveryId(7)].opens_human, 1);
    }
}
