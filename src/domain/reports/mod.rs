//! Reports: what a customer sent and what came of it, per day and per task
//! (2.2–2.5), the failed recipients, the credits spent, what recipients did
//! with the messages (chapter 3: opens, clicks, links), and the figures the
//! console draws. Everything is read from the counters kept as outcomes and
//! hits land; no report scans raw hits.

mod cases;

pub use cases::*;

use jiff::civil::Date;

use crate::clock::Clock;
use crate::domain::accounts::{Customer, Service};
use crate::domain::failure::FailureClass;
use crate::domain::ids::{ClickId, CustomerId, DeliveryId, LinkId, OperatorId, TaskId, TrackedRecipientId};
use crate::domain::tasks::Task;

/// Local days from `first` to `last`, both included, in the clock's zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRange {
    first: Date,
    last: Date,
}

/// Why days can't make a [`DayRange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("the last day is before the first")]
    Reversed,
    #[error("the calendar's last day has no end to report to")]
    Endless,
}

impl DayRange {
    pub fn new(first: Date, last: Date) -> Result<DayRange, RangeError> {
        if first.tomorrow().is_err() || last.tomorrow().is_err() {
            return Err(RangeError::Endless);
        }
        if last < first {
            return Err(RangeError::Reversed);
        }
        Ok(DayRange { first, last })
    }

    /// One day.
    pub fn day(day: Date) -> Result<DayRange, RangeError> {
        DayRange::new(day, day)
    }

    pub fn first(self) -> Date {
        self.first
    }

    pub fn last(self) -> Date {
        self.last
    }

    /// The instants the days cover: [start of the first, start of the day
    /// after the last), in UTC seconds.
    pub fn span(self, clock: &Clock) -> (i64, i64) {
        // `new` made sure the last day has a next one.
        let after = self.last.tomorrow().unwrap_or(self.last);
        (clock.start_of_day(self.first), clock.start_of_day(after))
    }
}

/// Failed recipients counted by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub not_exist: i64,
    pub over_quota: i64,
    pub user_reject: i64,
    pub invalid_addr: i64,
    pub format_error: i64,
}

impl ClassCounts {
    pub fn get(&self, class: FailureClass) -> i64 {
        match class {
            FailureClass::NotExist => self.not_exist,
            FailureClass::OverQuota => self.over_quota,
            FailureClass::UserReject => self.user_reject,
            FailureClass::InvalidAddr => self.invalid_addr,
            FailureClass::FormatError => self.format_error,
        }
    }

    /// Every class with its count, in the order of [`FailureClass::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (FailureClass, i64)> + '_ {
        FailureClass::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    pub fn total(&self) -> i64 {
        self.iter().map(|(_, n)| n).sum()
    }

    pub fn add(&mut self, other: &ClassCounts) {
        self.not_exist += other.not_exist;
        self.over_quota += other.over_quota;
        self.user_reject += other.user_reject;
        self.invalid_addr += other.invalid_addr;
        self.format_error += other.format_error;
    }
}

/// A task named by its id or by its batch identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskRef {
    Id(TaskId),
    Ident(String),
}

/// A customer's figures of one local day (2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayStatistic {
    /// Σ `send_qty_remak` of the tasks scheduled that day (the 2.1 set).
    pub ws_qty: i64,
    /// Messages that reached a final outcome that day: sent + failed.
    pub ws_count: i64,
    pub failed: i64,
    pub invalid_addr: i64,
    pub format_error: i64,
    /// Σ recipients counted (snapshotted) by the tasks started that day.
    pub send_count: i64,
    /// Credits pre-deducted that day, net of later adjustments at start.
    pub deduc_count: i64,
    /// Messages the receiving servers accepted that day.
    pub sent: i64,
}

/// The credits of one day (2.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deduction {
    /// Held for tasks that day (pre-deducted), net of adjustments at start.
    pub reserved: i64,
    /// Charged that day: one per message the receiving server accepted.
    pub charged: i64,
}

/// One task on one day (2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDay {
    pub task_id: TaskId,
    pub day: Date,
    pub ident: String,
    /// The task's recipients (all days).
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    pub classes: ClassCounts,
    pub complaints: i64,
}

/// Which (task, day) rows 2.4 reads; the filters are ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskDayFilter {
    pub day: Option<Date>,
    pub ident: Option<String>,
    pub task: Option<TaskId>,
}

/// One failed recipient (2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRecipient {
    pub id: DeliveryId,
    /// When the failure was recorded.
    pub finished_at: i64,
    pub address: String,
    pub class: FailureClass,
    pub task_id: TaskId,
}

impl FailedRecipient {
    pub fn key(&self) -> FailedKey {
        FailedKey {
            at: self.finished_at,
            id: self.id,
        }
    }
}

/// Where a read of failed recipients resumes: after this (time, delivery).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FailedKey {
    pub at: i64,
    pub id: DeliveryId,
}

impl FailedKey {
    /// Before every failure.
    pub const START: FailedKey = FailedKey {
        at: i64::MIN,
        id: DeliveryId(0),
    };
}

/// Which failures a read of failed recipients covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedOf {
    Every,
    Class(FailureClass),
    /// Complaints (the vendor's type 5): a complained message stays
    /// delivered, so no recipient has failed with it.
    Complaints,
}

/// A read of failed recipients, as a caller asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedQuery {
    /// The days their failures were recorded on.
    pub days: DayRange,
    pub of: FailedOf,
    /// `None`: every task of the customer.
    pub task: Option<TaskRef>,
}

/// Failed recipients as storage selects them, once the query is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailFilter {
    /// [from, to) in Unix seconds.
    pub between: (i64, i64),
    /// `None`: every class.
    pub class: Option<FailureClass>,
    /// `None`: every task of the customer.
    pub tasks: Option<Vec<TaskId>>,
}

/// A task's tracking figures (3.1), with the machine hits the console shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskTracking {
    /// Recipients with an open by a person (not a proxy or a scanner).
    pub open_unique: i64,
    pub open_total: i64,
    pub open_machine: i64,
    pub open_first: Option<i64>,
    pub open_last: Option<i64>,
    pub click_unique: i64,
    pub click_total: i64,
    pub click_machine: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

impl TaskTracking {
    /// The figures a task's tracking setting lets it show: a task that
    /// tracks opens only (`track_status` 1) has no clicks.
    fn shown_for(mut self, track_status: i64) -> TaskTracking {
        if track_status != 2 {
            self.click_unique = 0;
            self.click_total = 0;
            self.click_machine = 0;
            self.click_first = None;
            self.click_last = None;
        }
        self
    }
}

/// One tracked link of a task (3.1 `link_statistic`, 3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStat {
    pub link: LinkId,
    pub url: String,
    pub click_unique: i64,
    pub click_total: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// One recipient who opened or clicked (3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedRecipient {
    pub id: TrackedRecipientId,
    pub address: String,
    pub browser: String,
    pub os: String,
    /// `desktop`, `mobile`, `tablet`, `unknown`, or empty before any hit said.
    pub device: String,
    pub ip_first: String,
    pub ip_last: String,
    pub open_total: i64,
    pub open_first: Option<i64>,
    pub open_last: Option<i64>,
    pub click_total: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// One recipient's clicks on one link (3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickRecord {
    pub id: ClickId,
    pub address: String,
    pub url: String,
    pub click_total: i64,
    /// Those made by a person.
    pub click_human: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// Which tracked recipients' addresses 3.4 exports; the filters are ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackedAddressFilter {
    /// Only those who clicked (a person, not a scanner).
    pub clicked_only: bool,
    /// Only those who clicked this link (a person).
    pub link: Option<LinkId>,
    /// Only this one.
    pub recipient: Option<TrackedRecipientId>,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Queued,
    /// Held by a worker that is sending it.
    Sending,
    /// Accepted by the receiving server.
    Delivered,
    /// Refused for now; tried again later.
    Deferred,
    Failed,
    /// Left out (a suppressed address).
    Skipped,
    /// Its task was cancelled or deleted first.
    Cancelled,
}

impl DeliveryState {
    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "sent",
            DeliveryState::Deferred => "deferred",
            DeliveryState::Failed => "failed",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "queued" => DeliveryState::Queued,
            "sending" => DeliveryState::Sending,
            "sent" => DeliveryState::Delivered,
            "deferred" => DeliveryState::Deferred,
            "failed" => DeliveryState::Failed,
            "skipped" => DeliveryState::Skipped,
            "cancelled" => DeliveryState::Cancelled,
            _ => return None,
        })
    }
}

/// What a campaign's recipients did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CampaignCounts {
    /// Its recipients once it started; before, the addresses it will send to.
    pub recipients: i64,
    /// Messages with a final outcome: delivered + failed.
    pub sent: i64,
    /// Accepted by the receiving servers (net of later bounces).
    pub delivered: i64,
    pub failed: i64,
    /// Refused for now and waiting for their next try.
    pub deferred: i64,
    /// Recipients who opened (people; proxies and scanners left out).
    pub opened: i64,
    /// Recipients who clicked (people).
    pub clicked: i64,
    /// Recipients who unsubscribed through the campaign's link.
    pub unsubscribed: i64,
    pub complained: i64,
}

/// A campaign's credits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CampaignCredits {
    /// Taken from the service and still held for messages not yet sent.
    pub held: i64,
    /// Spent: taken and not given back, beyond what is held.
    pub charged: i64,
}

/// A task with what came of it.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub task: Task,
    pub counts: CampaignCounts,
    pub credits: CampaignCredits,
    pub failures: ClassCounts,
    pub tracking: TaskTracking,
    pub links: Vec<LinkStat>,
}

/// What storage counts of a task beyond its own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskOutcomes {
    pub deferred: i64,
    pub unsubscribed: i64,
    pub complained: i64,
    pub failures: ClassCounts,
    /// Credits taken for the task and not given back (the ledger's net).
    pub credits_taken: i64,
}

/// Which recipients of a campaign a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientStatus {
    /// Accepted by the receiving server (and not bounced since).
    Delivered,
    Failed,
    /// Opened by a person.
    Opened,
    /// Clicked by a person.
    Clicked,
}

/// One recipient of a campaign and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientActivity {
    pub delivery: DeliveryId,
    pub address: String,
    pub state: DeliveryState,
    /// Why it failed.
    pub class: Option<FailureClass>,
    /// The receiving server's enhanced status of the last answer, if any.
    pub smtp_status: String,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub complained: bool,
    pub opens: i64,
    pub open_first: Option<i64>,
    pub open_last: Option<i64>,
    pub clicks: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// One day of a customer's (or a task's) figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayFigures {
    pub sent: i64,
    pub failed: i64,
    pub classes: ClassCounts,
    pub opens: i64,
    pub opens_machine: i64,
    pub clicks: i64,
    pub clicks_machine: i64,
}

/// Whose figures per day a chart draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FiguresOf {
    Customer(CustomerId),
    Task(CustomerId, TaskId),
    /// Sends only: summed over the customers an operator sees.
    Customers(CustomersOf),
}

/// The customers an agent or a manager sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomersOf {
    /// An agent's own.
    Agent(OperatorId),
    /// Every customer (a manager).
    Everyone,
}

/// Deliveries of a task to one mail provider (by recipient domain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderFigures {
    pub provider: &'static str,
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
}

/// The big providers a task's report breaks down by; every other domain
/// counts as "others".
pub const PROVIDERS: &[(&str, &[&str])] = &[
    ("QQ", &["qq.com", "foxmail.com", "vip.qq.com"]),
    ("163/126", &["163.com", "126.com", "yeah.net", "vip.163.com"]),
    ("Sina", &["sina.com", "sina.cn", "vip.sina.com"]),
    ("Gmail", &["gmail.com", "googlemail.com"]),
    ("Outlook", &["outlook.com", "hotmail.com", "live.com", "msn.com"]),
];

/// The provider of a (lower-case) recipient domain.
pub fn provider_of(domain: &str) -> &'static str {
    PROVIDERS
        .iter()
        .find(|(_, domains)| domains.contains(&domain))
        .map_or("others", |(name, _)| name)
}

/// Adds up deliveries counted per recipient domain into provider rows, in
/// the order of [`PROVIDERS`] then "others", leaving out providers without
/// recipients.
pub fn by_provider(per_domain: impl IntoIterator<Item = (String, ProviderFigures)>) -> Vec<ProviderFigures> {
    let mut out: Vec<ProviderFigures> = PROVIDERS
        .iter()
        .map(|(name, _)| *name)
        .chain(["others"])
        .map(|provider| ProviderFigures {
            provider,
            ..Default::default()
        })
        .collect();
    for (domain, n) in per_domain {
        let p = provider_of(&domain);
        if let Some(f) = out.iter_mut().find(|f| f.provider == p) {
            f.recipients += n.recipients;
            f.sent += n.sent;
            f.failed += n.failed;
        }
    }
    out.retain(|f| f.recipients > 0);
    out
}

/// A customer with its service and what it sent in a period, as an agent's
/// or a manager's console lists it.
#[derive(Clone, Debug)]
pub struct CustomerActivity {
    pub customer: Customer,
    pub service: Service,
    /// Messages accepted in the period.
    pub sent: i64,
    pub failed: i64,
}

/// `part / whole × 100` with two decimals, rounded half up; `0.00` when
/// `whole` is 0 (3.1's `open_ratio`, `click_ratio`).
pub fn ratio(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0.00".to_string();
    }
    let hundredths = (part.max(0) as i128 * 20_000 + whole as i128) / (2 * whole as i128);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_have_two_decimals_rounded_half_up() {
        assert_eq!(ratio(0, 0), "0.00");
        assert_eq!(ratio(1, 3), "33.33");
        assert_eq!(ratio(2, 3), "66.67");
        assert_eq!(ratio(1, 8), "12.50");
        assert_eq!(ratio(1, 1), "100.00");
        assert_eq!(ratio(1, 200_000), "0.00");
        assert_eq!(ratio(1, 20_000), "0.01");
    }

    #[test]
    fn day_ranges_refuse_reversed_and_endless_days() {
        let d = |y, m, day| Date::new(y, m, day).unwrap();
        assert!(DayRange::new(d(2012, 3, 2), d(2012, 3, 2)).is_ok());
        assert_eq!(
            DayRange::new(d(2012, 3, 2), d(2012, 3, 1)),
            Err(RangeError::Reversed)
        );
        assert_eq!(DayRange::day(d(9999, 12, 31)), Err(RangeError::Endless));
        assert_eq!(
            DayRange::new(d(2012, 3, 2), d(9999, 12, 31)),
            Err(RangeError::Endless)
        );
    }

    #[test]
    fn a_day_spans_its_local_hours() {
        let clock = Clock::new(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap());
        let range = DayRange::new(Date::new(2012, 3, 2).unwrap(), Date::new(2012, 3, 3).unwrap()).unwrap();
        let (from, to) = range.span(&clock);
        assert_eq!(clock.format_datetime(from), "2012-03-02 00:00:00");
        assert_eq!(to - from, 2 * 86_400);
    }

    #[test]
    fn providers_group_domains_and_drop_empty_ones() {
        let n = |recipients, sent, failed| ProviderFigures {
            provider: "",
            recipients,
            sent,
            failed,
        };
        let rows = by_provider([
            ("qq.com".to_string(), n(3, 2, 1)),
            ("foxmail.com".to_string(), n(1, 1, 0)),
            ("example.org".to_string(), n(2, 0, 2)),
        ]);
        let got: Vec<(&str, i64, i64, i64)> = rows
            .iter()
            .map(|p| (p.provider, p.recipients, p.sent, p.failed))
            .collect();
        assert_eq!(got, [("QQ", 4, 3, 1), ("others", 2, 0, 2)]);
    }

    #[test]
    fn opens_only_tasks_show_no_clicks() {
        let t = TaskTracking {
            open_unique: 2,
            click_unique: 1,
            click_total: 3,
            click_first: Some(5),
            ..Default::default()
        };
        assert_eq!(t.clone().shown_for(2), t);
        let opens_only = t.shown_for(1);
        assert_eq!(opens_only.open_unique, 2);
        assert_eq!(
            (
                opens_only.click_unique,
                opens_only.click_total,
                opens_only.click_first
            ),
            (0, 0, None)
        );
    }
}
