//! Bulk-send tasks: their states (A.6, D-20), the sender selection (F.3),
//! the batch identifier (D-21) and the quantity rule (H-10).

mod cases;

pub use cases::*;

use jiff::civil::Date;
use rand::RngExt;

use crate::domain::ids::{CustomerId, ListId, TaskId, TemplateId};
use crate::domain::templates::FooterLanguage;

/// A bulk-send task, with the names of its template and list.
#[derive(Clone, Debug)]
pub struct Task {
    pub id: TaskId,
    pub customer_id: CustomerId,
    /// The batch identifier (D-21).
    pub ident: String,
    pub tpl_id: TemplateId,
    pub tpl_name: String,
    pub list_id: ListId,
    pub list_name: String,
    pub sender: SenderSelection,
    pub sender_name: String,
    pub replyto: String,
    pub send_qty: i64,
    pub send_qty_start: i64,
    pub send_qty_remak: i64,
    pub send_time: i64,
    pub time_start: Option<i64>,
    pub time_end: Option<i64>,
    pub status: SendStatus,
    pub track_status: i64,
    pub subs_link: bool,
    pub track_domain: String,
    pub addr_type: i64,
    /// Credits held for it.
    pub reserved: i64,
    /// Paused by the platform because the service became unusable (H-3),
    /// not by the user: it resumes by itself.
    pub service_paused: bool,
    pub recipients: i64,
    pub sent_count: i64,
    pub error_count: i64,
    pub skipped_count: i64,
    /// Why a reputation guard paused it, while it stays paused.
    pub guard_pause: Option<GuardPause>,
    /// The unsubscribe footer's language; `Auto`: its customer's setting.
    pub footer_language: FooterLanguage,
}

/// Which of a customer's tasks a listing shows (6.1, 2.1).
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub id: Option<TaskId>,
    pub ident: Option<String>,
    /// Send time within [from, to).
    pub send_between: Option<(i64, i64)>,
    pub statuses: Option<Vec<SendStatus>>,
    /// (limit, offset)
    pub page: Option<(i64, i64)>,
}

/// `send_status` of A.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendStatus {
    Cancelled,
    Paused,
    Hold,
    Waiting,
    Sending,
    Done,
}

impl SendStatus {
    pub const ALL: [SendStatus; 6] = [
        SendStatus::Cancelled,
        SendStatus::Paused,
        SendStatus::Hold,
        SendStatus::Waiting,
        SendStatus::Sending,
        SendStatus::Done,
    ];

    pub fn code(self) -> i64 {
        match self {
            SendStatus::Cancelled => -3,
            SendStatus::Paused => -2,
            SendStatus::Hold => -1,
            SendStatus::Waiting => 1,
            SendStatus::Sending => 2,
            SendStatus::Done => 3,
        }
    }

    pub fn from_code(code: i64) -> Option<SendStatus> {
        Some(match code {
            -3 => SendStatus::Cancelled,
            -2 => SendStatus::Paused,
            -1 => SendStatus::Hold,
            1 => SendStatus::Waiting,
            2 => SendStatus::Sending,
            3 => SendStatus::Done,
            _ => return None,
        })
    }

    /// Not completed and not cancelled: what D-20 lets the console cancel.
    pub fn is_unfinished(self) -> bool {
        !matches!(self, SendStatus::Done | SendStatus::Cancelled)
    }

    /// The state in words, for people (CLI, console).
    pub fn name(self) -> &'static str {
        match self {
            SendStatus::Cancelled => "cancelled",
            SendStatus::Paused => "paused",
            SendStatus::Hold => "on hold",
            SendStatus::Waiting => "waiting",
            SendStatus::Sending => "sending",
            SendStatus::Done => "completed",
        }
    }

    /// Whether a task in this state holds its list, template and senders
    /// (4.5, 4.12, 5.4, 7.3, 7.6: `in_use`).
    pub fn holds_resources(self) -> bool {
        matches!(
            self,
            SendStatus::Hold | SendStatus::Waiting | SendStatus::Sending | SendStatus::Paused
        )
    }

    /// The states of [`Self::holds_resources`]: those of a task that has not
    /// ended.
    pub fn holding() -> Vec<SendStatus> {
        Self::ALL.into_iter().filter(|s| s.holds_resources()).collect()
    }
}

/// What the platform or its console does to a task's course (D-20:
/// "2 ⇄ -2 (pause / resume), any unfinished state → -3 (cancel)"); the
/// vendor API has no call for these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intervention {
    Pause,
    Resume,
    Cancel,
}

impl Intervention {
    /// Whether a task in `status` can take it. `service_paused`: the task
    /// was paused because its service became unusable (H-3); pausing it
    /// again makes it the user's pause, which the service coming back does
    /// not lift.
    pub fn allowed(self, status: SendStatus, service_paused: bool) -> bool {
        match self {
            Intervention::Pause => {
                status == SendStatus::Sending || (status == SendStatus::Paused && service_paused)
            }
            Intervention::Resume => status == SendStatus::Paused,
            Intervention::Cancel => status.is_unfinished(),
        }
    }

    /// The state it leads to.
    pub fn target(self) -> SendStatus {
        match self {
            Intervention::Pause => SendStatus::Paused,
            Intervention::Resume => SendStatus::Sending,
            Intervention::Cancel => SendStatus::Cancelled,
        }
    }

    /// The rule a refused request broke, for its one-line error.
    pub fn rule(self) -> &'static str {
        match self {
            Intervention::Pause => "only a sending task (2) can be paused",
            Intervention::Resume => "only a paused task (-2) can be resumed",
            Intervention::Cancel => "a completed or cancelled task can't be cancelled",
        }
    }
}

/// Which mailboxes a task sends from, rotating over them (F.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderSelection {
    /// Every mailbox available to the customer.
    All,
    /// Every available mailbox of one domain (A-labels).
    Domain(String),
    /// One mailbox.
    Address(String),
}

impl SenderSelection {
    pub fn acct_type(&self) -> &'static str {
        match self {
            SenderSelection::All => "all",
            SenderSelection::Domain(_) => "domain",
            SenderSelection::Address(_) => "address",
        }
    }

    pub fn domain(&self) -> &str {
        match self {
            SenderSelection::Domain(d) => d,
            _ => "",
        }
    }

    pub fn address(&self) -> &str {
        match self {
            SenderSelection::Address(a) => a,
            _ => "",
        }
    }

    pub fn from_stored(acct_type: &str, domain: &str, address: &str) -> SenderSelection {
        match acct_type {
            "domain" => SenderSelection::Domain(domain.to_string()),
            "address" => SenderSelection::Address(address.to_string()),
            _ => SenderSelection::All,
        }
    }
}

/// A reputation guard: a sending task pauses itself when too many of its
/// recipients are hard failures (`not_exist`, `invalid_addr`: a stale
/// list) or complain, which is what gets a sending domain blacklisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    Bounces,
    Complaints,
}

impl Guard {
    /// As stored with the task.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Bounces => "bounce_guard",
            Guard::Complaints => "complaint_guard",
        }
    }

    pub fn parse(s: &str) -> Option<Guard> {
        match s {
            "bounce_guard" => Some(Guard::Bounces),
            "complaint_guard" => Some(Guard::Complaints),
            _ => None,
        }
    }

    /// What it counts, for people.
    fn counts(self) -> &'static str {
        match self {
            Guard::Bounces => "hard failures",
            Guard::Complaints => "complaints",
        }
    }
}

/// When a guard trips: more than `rate` (a fraction) of at least `min`
/// recipients with an outcome (`QUNFA_BOUNCE_GUARD=10%/200`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardLimit {
    pub rate: f64,
    pub min: i64,
}

impl GuardLimit {
    /// `10%/200`, `0.3%/1000`; the rate in percent (0 to 100), the
    /// minimum a whole number of at least 1.
    pub fn parse(s: &str) -> Option<GuardLimit> {
        let (rate, min) = s.trim().split_once('/')?;
        let percent: f64 = rate.trim().strip_suffix('%')?.trim().parse().ok()?;
        let min: i64 = min.trim().parse().ok()?;
        (percent.is_finite() && (0.0..=100.0).contains(&percent) && min >= 1).then_some(GuardLimit {
            rate: percent / 100.0,
            min,
        })
    }

    /// Whether `count` of `outcomes` trips it.
    pub fn tripped(&self, outcomes: i64, count: i64) -> bool {
        outcomes >= self.min && count as f64 > self.rate * outcomes as f64
    }
}

impl std::fmt::Display for GuardLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Percent with at most three decimals, no trailing zeros: 10%, 0.3%.
        let percent = format!("{:.3}", self.rate * 100.0);
        let percent = percent.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{percent}%/{}", self.min)
    }
}

/// The guards in force (`None`: off).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Guards {
    pub bounces: Option<GuardLimit>,
    pub complaints: Option<GuardLimit>,
}

impl Default for Guards {
    /// `10%/200` for hard failures: a list where one address in ten no
    /// longer exists was not kept, and receivers judge a sender by it;
    /// `0.3%/1000` for complaints, the spam rate Gmail's guidelines for
    /// bulk senders ask to stay below.
    fn default() -> Guards {
        Guards {
            bounces: Some(GuardLimit { rate: 0.10, min: 200 }),
            complaints: Some(GuardLimit {
                rate: 0.003,
                min: 1000,
            }),
        }
    }
}

/// What the guards count: a task's recipients with an outcome (sent or
/// failed), its hard failures and its complaints, since its last resume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardFigures {
    pub outcomes: i64,
    pub hard: i64,
    pub complaints: i64,
}

impl Guards {
    /// The guard that trips on these figures, if any, as the pause to record.
    pub fn verdict(&self, f: &GuardFigures, now: i64) -> Option<GuardPause> {
        let checks = [
            (Guard::Bounces, self.bounces, f.hard),
            (Guard::Complaints, self.complaints, f.complaints),
        ];
        checks.into_iter().find_map(|(guard, limit, count)| {
            let limit = limit?;
            limit.tripped(f.outcomes, count).then(|| GuardPause {
                guard,
                outcomes: f.outcomes,
                count,
                limit: limit.to_string(),
                at: now,
            })
        })
    }
}

/// Why a guard paused a task, with the figures it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardPause {
    pub guard: Guard,
    /// Recipients with an outcome since the task's last resume …
    pub outcomes: i64,
    /// … of which hard failures or complaints.
    pub count: i64,
    /// The limit in force, `10%/200`.
    pub limit: String,
    pub at: i64,
}

impl std::fmt::Display for GuardPause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let percent = if self.outcomes > 0 {
            100.0 * self.count as f64 / self.outcomes as f64
        } else {
            0.0
        };
        write!(
            f,
            "{}: {} {} of {} recipients with an outcome ({percent:.1}%, limit {})",
            self.guard.as_str().replace('_', " "),
            self.count,
            self.guard.counts(),
            self.outcomes,
            self.limit
        )
    }
}

/// D-21: `YYYYMMDD-{customer id}-{6 upper-case hex}`, the date of the
/// initial send time.
pub fn new_ident(send_date: Date, customer_id: CustomerId) -> String {
    let suffix: u32 = rand::rng().random_range(0..0x100_0000);
    format!("{}-{customer_id}-{suffix:06X}", send_date.strftime("%Y%m%d"))
}

/// H-10: `send_qty_remak = min(send_qty or ∞, count − start + 1)`, never
/// below zero; `send_qty` 0 means all.
pub fn effective_quantity(send_qty: i64, start: i64, list_count: i64) -> i64 {
    let available = (list_count - start + 1).max(0);
    if send_qty > 0 {
        send_qty.min(available)
    } else {
        available
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents_look_like_the_vendors() {
        let id = new_ident(Date::constant(2012, 3, 2), CustomerId(362));
        assert!(id.starts_with("20120302-362-"), "{id}");
        let hex = id.rsplit('-').next().unwrap();
        assert_eq!(hex.len(), 6);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(effective_quantity(0, 1, 100), 100);
        assert_eq!(effective_quantity(30, 1, 100), 30);
        assert_eq!(effective_quantity(30, 90, 100), 11);
        assert_eq!(effective_quantity(0, 101, 100), 0);
        assert_eq!(effective_quantity(0, 500, 100), 0);
    }

    #[test]
    fn interventions_follow_d20() {
        use Intervention::*;
        use SendStatus::*;
        let all = [Cancelled, Paused, Hold, Waiting, Sending, Done];
        let from = |what: Intervention, service_paused: bool| -> Vec<SendStatus> {
            all.into_iter()
                .filter(|s| what.allowed(*s, service_paused))
                .collect()
        };
        assert_eq!(from(Pause, false), [Sending]);
        assert_eq!(
            from(Pause, true),
            [Paused, Sending],
            "a service pause becomes the user's"
        );
        assert_eq!(from(Resume, false), [Paused]);
        assert_eq!(from(Cancel, false), [Paused, Hold, Waiting, Sending]);
        assert_eq!(Pause.target(), Paused);
        assert_eq!(Resume.target(), Sending);
        assert_eq!(Cancel.target(), Cancelled);
    }

    #[test]
    fn guards_trip_above_their_rate_after_their_minimum() {
        let g = Guards::default();
        let figures = |outcomes, hard, complaints| GuardFigures {
            outcomes,
            hard,
            complaints,
        };
        assert_eq!(g.verdict(&figures(199, 150, 0), 0), None, "below the minimum");
        assert_eq!(
            g.verdict(&figures(200, 20, 0), 0),
            None,
            "10% is not more than 10%"
        );
        let p = g.verdict(&figures(200, 21, 0), 7).expect("tripped");
        assert_eq!((p.guard, p.outcomes, p.count, p.at), (Guard::Bounces, 200, 21, 7));
        assert_eq!(
            p.to_string(),
            "bounce guard: 21 hard failures of 200 recipients with an outcome (10.5%, limit 10%/200)"
        );
        let c = g.verdict(&figures(1000, 0, 4), 0).expect("complaints");
        assert_eq!((c.guard, c.limit.as_str()), (Guard::Complaints, "0.3%/1000"));
        assert_eq!(g.verdict(&figures(999, 0, 40), 0), None);
        let off = Guards {
            bounces: None,
            complaints: None,
        };
        assert_eq!(off.verdict(&figures(10_000, 10_000, 10_000), 0), None);
    }

    #[test]
    fn guard_limits_read_and_print_as_set() {
        let l = GuardLimit::parse(" 0.3% / 1000 ").unwrap();
        assert_eq!(l.min, 1000);
        assert!((l.rate - 0.003).abs() < 1e-12);
        assert_eq!(l.to_string(), "0.3%/1000");
        assert_eq!(GuardLimit::parse("10%/200").unwrap().to_string(), "10%/200");
        for bad in [
            "10/200", "10%", "x%/2", "101%/2", "-1%/2", "10%/0", "10%/x", "NaN%/5",
        ] {
            assert_eq!(GuardLimit::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn status_codes_round_trip() {
        for code in [-3, -2, -1, 1, 2, 3] {
            assert_eq!(SendStatus::from_code(code).unwrap().code(), code);
        }
        assert!(SendStatus::from_code(0).is_none());
    }
}
