//! Daily caps of sending domains and mailboxes, and the warm-up of a new
//! sending domain: receivers trust a sender by its history, so a new domain
//! starts with a few messages a day and grows, and an operator may hold any
//! domain or mailbox to so many a day. Days are local days
//! (`QUNFA_TIMEZONE`); what does not fit waits for the next day.

use jiff::civil::Date;

use crate::domain::ids::{DomainId, MailboxId};

/// The reason a delivery waiting for the next day is recorded with.
pub const DAILY_CAP: &str = "daily cap";

/// A warm-up's growth a day when none is given, in percent: a domain
/// starting at 50 a day sends about 1,000 on its tenth day.
pub const DEFAULT_GROWTH: f64 = 40.0;

/// A sending domain's warm-up: its cap is `start` on `from` and grows by
/// `growth` percent a day for `days` days, after which it is lifted.
#[derive(Clone, Debug, PartialEq)]
pub struct Warmup {
    pub start: i64,
    pub days: i64,
    pub growth: f64,
    pub from: Date,
}

impl Warmup {
    /// The cap on `day`; `None` once the warm-up is over.
    pub fn cap_on(&self, day: Date) -> Option<i64> {
        let n = i64::from(self.from.until(day).ok()?.get_days()).max(0);
        if n >= self.days {
            return None;
        }
        let cap = self.start as f64 * (1.0 + self.growth / 100.0).powi(n as i32);
        Some(if cap.is_finite() {
            cap.round().min(i64::MAX as f64) as i64
        } else {
            i64::MAX
        })
    }
}

/// A domain's or mailbox's daily cap: a fixed one, a warm-up (domains), or
/// both, the lower holding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DailyCap {
    pub per_day: Option<i64>,
    pub warmup: Option<Warmup>,
}

impl DailyCap {
    /// The messages allowed on `day`; `None`: no cap that day.
    pub fn on(&self, day: Date) -> Option<i64> {
        let warm = self.warmup.as_ref().and_then(|w| w.cap_on(day));
        match (self.per_day, warm) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.per_day.is_none() && self.warmup.is_none()
    }
}

/// What a cap holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapTarget {
    Domain(DomainId),
    Mailbox(MailboxId),
}

/// A cap as it stands on a day: its limit then and the messages counted.
#[derive(Clone, Debug, PartialEq)]
pub struct CapToday {
    pub cap: DailyCap,
    /// `None`: no cap that day (a warm-up over, none set).
    pub limit: Option<i64>,
    pub used: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i8) -> Date {
        Date::constant(2026, 3, d)
    }

    #[test]
    fn a_warm_up_grows_each_day_then_ends() {
        let w = Warmup {
            start: 50,
            days: 10,
            growth: DEFAULT_GROWTH,
            from: day(1),
        };
        let caps: Vec<Option<i64>> = (1..=12).map(|d| w.cap_on(day(d))).collect();
        assert_eq!(&caps[..4], &[Some(50), Some(70), Some(98), Some(137)]);
        assert_eq!(caps[9], Some(1033));
        assert_eq!(&caps[10..], &[None, None], "lifted after ten days");
        assert_eq!(
            w.cap_on(Date::constant(2026, 2, 27)),
            Some(50),
            "before its start: its first day"
        );
    }

    #[test]
    fn the_lower_cap_holds() {
        let w = Warmup {
            start: 50,
            days: 3,
            growth: 100.0,
            from: day(1),
        };
        let cap = DailyCap {
            per_day: Some(150),
            warmup: Some(w),
        };
        let limits: Vec<Option<i64>> = (1..=4).map(|d| cap.on(day(d))).collect();
        assert_eq!(limits, [Some(50), Some(100), Some(150), Some(150)]);
        assert_eq!(DailyCap::default().on(day(1)), None);
        assert!(DailyCap::default().is_empty());
    }
}
