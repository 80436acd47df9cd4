//! The use-cases of reports: a day's figures and credits, the (task, day)
//! rows, the failed recipients, a task's tracking and what came of a
//! campaign, and the console's per-day figures; and what they need of
//! storage. Every read is scoped to the customer: another customer's task
//! answers exactly like a missing one.

use std::collections::BTreeMap;

use jiff::civil::Date;

use super::{
    Campaign, CampaignCounts, CampaignCredits, ClickRecord, CustomerActivity, CustomersOf, DayFigures,
    DayRange, DayStatistic, Deduction, FailFilter, FailedKey, FailedOf, FailedQuery, FailedRecipient,
    FiguresOf, LinkStat, ProviderFigures, RangeError, RecipientActivity, RecipientStatus, TaskDay,
    TaskDayFilter, TaskOutcomes, TaskRef, TaskTracking, TrackedAddressFilter, TrackedRecipient, by_provider,
};
use crate::clock::Clock;
use crate::domain::ids::{ClickId, CustomerId, DeliveryId, LinkId, TaskId, TrackedRecipientId};
use crate::domain::storage::{Storage, StoreError, StoreResult};
use crate::domain::tasks::{Task, TaskFilter};

/// What the report use-cases need of storage. Every read takes the
/// customer whose figures it reads.
pub trait ReportStorage: Sync {
    /// 2.2: a customer's figures of one local day; `span` is the day's
    /// [start, end) in Unix seconds.
    fn day_statistic(
        &self,
        customer: CustomerId,
        day: Date,
        span: (i64, i64),
    ) -> impl Future<Output = StoreResult<DayStatistic>> + Send;

    /// 2.4: a customer's (task, day) rows the filter selects, by day then task.
    fn task_days(
        &self,
        customer: CustomerId,
        f: &TaskDayFilter,
    ) -> impl Future<Output = StoreResult<Vec<TaskDay>>> + Send;

    /// 2.3: up to `limit` failed recipients after `after`, in the order
    /// their failures were recorded.
    fn failed_recipients(
        &self,
        customer: CustomerId,
        f: &FailFilter,
        after: FailedKey,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<FailedRecipient>>> + Send;

    /// 3.1: a task's tracking figures (zeros before its first hit).
    fn task_tracking(
        &self,
        customer: CustomerId,
        task: TaskId,
    ) -> impl Future<Output = StoreResult<TaskTracking>> + Send;

    /// A task's tracked links (one, with `link`), by id.
    fn link_stats(
        &self,
        customer: CustomerId,
        task: TaskId,
        link: Option<LinkId>,
    ) -> impl Future<Output = StoreResult<Vec<LinkStat>>> + Send;

    /// 3.2: up to `limit` recipients who opened or clicked, by id after `after`.
    fn tracked_recipients(
        &self,
        customer: CustomerId,
        task: TaskId,
        after: TrackedRecipientId,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<TrackedRecipient>>> + Send;

    /// 3.3: up to `limit` (recipient, link) click records (of one link), by
    /// id after `after`.
    fn click_records(
        &self,
        customer: CustomerId,
        task: TaskId,
        link: Option<LinkId>,
        after: ClickId,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<ClickRecord>>> + Send;

    /// Whether `recipient` is a tracked recipient of the task.
    fn has_tracked_recipient(
        &self,
        customer: CustomerId,
        task: TaskId,
        recipient: TrackedRecipientId,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// 3.4: up to `limit` addresses of the tracked recipients the filter
    /// selects, by recipient id after `after`. Clicks by machines don't
    /// make a recipient one who clicked.
    fn tracked_addresses(
        &self,
        customer: CustomerId,
        task: TaskId,
        f: &TrackedAddressFilter,
        after: TrackedRecipientId,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<(TrackedRecipientId, String)>>> + Send;

    /// What a task's own counters don't say: deferred deliveries,
    /// unsubscribes and complaints, failures by class, credits taken.
    fn task_outcomes(
        &self,
        customer: CustomerId,
        task: TaskId,
    ) -> impl Future<Output = StoreResult<TaskOutcomes>> + Send;

    /// Up to `limit` recipients of a task in `status`, by delivery id after `after`.
    fn campaign_recipients(
        &self,
        customer: CustomerId,
        task: TaskId,
        status: RecipientStatus,
        after: DeliveryId,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<RecipientActivity>>> + Send;

    /// Figures per local day from `since` on; days without any are absent.
    fn day_figures(
        &self,
        of: FiguresOf,
        since: Date,
    ) -> impl Future<Output = StoreResult<BTreeMap<Date, DayFigures>>> + Send;

    /// A task's deliveries counted per recipient domain (lower case).
    fn domain_figures(
        &self,
        customer: CustomerId,
        task: TaskId,
    ) -> impl Future<Output = StoreResult<Vec<(String, ProviderFigures)>>> + Send;

    /// Customers with their services and what they sent from `since` on, by id.
    fn customer_activity(
        &self,
        of: CustomersOf,
        since: Date,
    ) -> impl Future<Output = StoreResult<Vec<CustomerActivity>>> + Send;
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No such task of the customer (another customer's is no different).
    #[error("no such task")]
    NotFound,
    #[error("the task is not tracked")]
    NotTracked,
    #[error("no such link in the task")]
    LinkNotFound,
    #[error("no such tracked recipient in the task")]
    RecipientNotFound,
    #[error("{0}")]
    Days(RangeError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ReportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound("task") => ReportError::NotFound,
            e => ReportError::Store(e),
        }
    }
}

/// The customer's task a reference names (not deleted).
async fn find_task(s: &impl Storage, customer: CustomerId, task: &TaskRef) -> Result<Task, ReportError> {
    let found = match task {
        TaskRef::Id(id) => s.task(customer, *id).await?,
        TaskRef::Ident(ident) => {
            let filter = TaskFilter {
                ident: Some(ident.clone()),
                ..Default::default()
            };
            s.tasks(customer, &filter).await?.into_iter().next()
        }
    };
    found.ok_or(ReportError::NotFound)
}

/// A customer's figures of one local day (2.2).
pub async fn day_statistic(
    s: &impl ReportStorage,
    clock: &Clock,
    customer: CustomerId,
    day: Date,
) -> Result<DayStatistic, ReportError> {
    let span = DayRange::day(day).map_err(ReportError::Days)?.span(clock);
    Ok(s.day_statistic(customer, day, span).await?)
}

/// The credits a customer's tasks took on one local day (2.5): held
/// when they were created or started, and charged for accepted messages.
pub async fn credits_deducted(
    s: &impl ReportStorage,
    clock: &Clock,
    customer: CustomerId,
    day: Date,
) -> Result<Deduction, ReportError> {
    let d = day_statistic(s, clock, customer, day).await?;
    Ok(Deduction {
        reserved: d.deduc_count,
        charged: d.sent,
    })
}

/// A customer's figures per task and day (2.4).
pub async fn task_days(
    s: &impl ReportStorage,
    customer: CustomerId,
    f: &TaskDayFilter,
) -> Result<Vec<TaskDay>, ReportError> {
    Ok(s.task_days(customer, f).await?)
}

/// A customer's failed recipients of a period, a batch at a time (2.3):
/// made by [`failed_recipients`], which checks the task asked for.
#[derive(Clone, Debug)]
pub struct FailedWalk {
    customer: CustomerId,
    /// `None`: nothing can match.
    filter: Option<FailFilter>,
    after: FailedKey,
}

impl FailedWalk {
    /// The next (at most `limit`) failed recipients, in the order their
    /// failures were recorded; empty at the end.
    pub async fn next(&mut self, s: &impl ReportStorage, limit: i64) -> StoreResult<Vec<FailedRecipient>> {
        let Some(filter) = &self.filter else {
            return Ok(Vec::new());
        };
        let rows = s
            .failed_recipients(self.customer, filter, self.after, limit)
            .await?;
        if let Some(last) = rows.last() {
            self.after = last.key();
        }
        Ok(rows)
    }
}

/// The failed recipients a query selects, to read a batch at a time;
/// `NotFound` when it names a task the customer does not have.
pub async fn failed_recipients(
    s: &impl Storage,
    clock: &Clock,
    customer: CustomerId,
    q: &FailedQuery,
) -> Result<FailedWalk, ReportError> {
    let tasks = match &q.task {
        None => None,
        Some(task) => Some(vec![find_task(s, customer, task).await?.id]),
    };
    let filter = match q.of {
        FailedOf::Complaints => None,
        FailedOf::Every => Some(None),
        FailedOf::Class(c) => Some(Some(c)),
    }
    .map(|class| FailFilter {
        between: q.days.span(clock),
        class,
        tasks,
    });
    Ok(FailedWalk {
        customer,
        filter,
        after: FailedKey::START,
    })
}

/// One of the customer's tasks that tracks opens (and maybe clicks): what
/// the tracking reports read. Made by [`tracked_task`].
#[derive(Clone, Debug)]
pub struct TrackedTask(Task);

impl TrackedTask {
    pub fn task(&self) -> &Task {
        &self.0
    }

    fn ids(&self) -> (CustomerId, TaskId) {
        (self.0.customer_id, self.0.id)
    }
}

/// The customer's task, if it is tracked (chapter 3): `NotFound`, or
/// `NotTracked` for a task sent without tracking.
pub async fn tracked_task(
    s: &impl Storage,
    customer: CustomerId,
    task: &TaskRef,
) -> Result<TrackedTask, ReportError> {
    let task = find_task(s, customer, task).await?;
    if task.track_status == 0 {
        return Err(ReportError::NotTracked);
    }
    Ok(TrackedTask(task))
}

/// A tracked task's figures and, when it tracks clicks, its links (3.1).
#[derive(Clone, Debug, Default)]
pub struct TrackingOverview {
    pub tracking: TaskTracking,
    pub links: Vec<LinkStat>,
}

/// What a tracked task's recipients did (3.1).
pub async fn tracking_overview(
    s: &impl ReportStorage,
    task: &TrackedTask,
) -> Result<TrackingOverview, ReportError> {
    let (customer, id) = task.ids();
    let track_status = task.task().track_status;
    let tracking = s.task_tracking(customer, id).await?.shown_for(track_status);
    let links = if track_status == 2 {
        s.link_stats(customer, id, None).await?
    } else {
        Vec::new()
    };
    Ok(TrackingOverview { tracking, links })
}

/// One link of a tracked task; `LinkNotFound` when the task has no such link.
pub async fn task_link(
    s: &impl ReportStorage,
    task: &TrackedTask,
    link: LinkId,
) -> Result<LinkStat, ReportError> {
    let (customer, id) = task.ids();
    s.link_stats(customer, id, Some(link))
        .await?
        .into_iter()
        .next()
        .ok_or(ReportError::LinkNotFound)
}

/// A tracked task's links, or one of them (3.5).
pub async fn link_stats(
    s: &impl ReportStorage,
    task: &TrackedTask,
    link: Option<LinkId>,
) -> Result<Vec<LinkStat>, ReportError> {
    match link {
        Some(link) => Ok(vec![task_link(s, task, link).await?]),
        None => {
            let (customer, id) = task.ids();
            Ok(s.link_stats(customer, id, None).await?)
        }
    }
}

/// The recipients of a tracked task who opened or clicked, a batch at a
/// time by ascending id (3.2).
#[derive(Clone, Debug)]
pub struct RecipientWalk {
    customer: CustomerId,
    task: TaskId,
    after: TrackedRecipientId,
}

impl RecipientWalk {
    pub fn new(task: &TrackedTask) -> RecipientWalk {
        let (customer, task) = task.ids();
        RecipientWalk {
            customer,
            task,
            after: TrackedRecipientId(0),
        }
    }

    /// The next (at most `limit`); empty at the end.
    pub async fn next(&mut self, s: &impl ReportStorage, limit: i64) -> StoreResult<Vec<TrackedRecipient>> {
        let rows = s
            .tracked_recipients(self.customer, self.task, self.after, limit)
            .await?;
        if let Some(last) = rows.last() {
            self.after = last.id;
        }
        Ok(rows)
    }
}

/// The (recipient, link) click records of a tracked task, a batch at a
/// time by ascending id (3.3).
#[derive(Clone, Debug)]
pub struct ClickWalk {
    customer: CustomerId,
    task: TaskId,
    link: Option<LinkId>,
    after: ClickId,
}

impl ClickWalk {
    /// The next (at most `limit`); empty at the end.
    pub async fn next(&mut self, s: &impl ReportStorage, limit: i64) -> StoreResult<Vec<ClickRecord>> {
        let rows = s
            .click_records(self.customer, self.task, self.link, self.after, limit)
            .await?;
        if let Some(last) = rows.last() {
            self.after = last.id;
        }
        Ok(rows)
    }
}

/// A tracked task's click records, of one of its links with `link`.
pub async fn click_records(
    s: &impl ReportStorage,
    task: &TrackedTask,
    link: Option<LinkId>,
) -> Result<ClickWalk, ReportError> {
    if let Some(link) = link {
        task_link(s, task, link).await?;
    }
    let (customer, id) = task.ids();
    Ok(ClickWalk {
        customer,
        task: id,
        link,
        after: ClickId(0),
    })
}

/// The addresses of a tracked task's recipients a filter selects, a batch
/// at a time by ascending recipient id (3.4).
#[derive(Clone, Debug)]
pub struct AddressWalk {
    customer: CustomerId,
    task: TaskId,
    filter: TrackedAddressFilter,
    after: TrackedRecipientId,
}

impl AddressWalk {
    /// The next (at most `limit`); empty at the end.
    pub async fn next(&mut self, s: &impl ReportStorage, limit: i64) -> StoreResult<Vec<String>> {
        let rows = s
            .tracked_addresses(self.customer, self.task, &self.filter, self.after, limit)
            .await?;
        if let Some((last, _)) = rows.last() {
            self.after = *last;
        }
        Ok(rows.into_iter().map(|(_, address)| address).collect())
    }
}

/// The addresses of a tracked task's recipients: `LinkNotFound` or
/// `RecipientNotFound` when the filter names a link or a recipient the
/// task does not have.
pub async fn tracked_addresses(
    s: &impl ReportStorage,
    task: &TrackedTask,
    filter: TrackedAddressFilter,
) -> Result<AddressWalk, ReportError> {
    let (customer, id) = task.ids();
    if let Some(link) = filter.link {
        task_link(s, task, link).await?;
    }
    if let Some(recipient) = filter.recipient
        && !s.has_tracked_recipient(customer, id, recipient).await?
    {
        return Err(ReportError::RecipientNotFound);
    }
    Ok(AddressWalk {
        customer,
        task: id,
        filter,
        after: TrackedRecipientId(0),
    })
}

/// One of the customer's tasks with what came of it: its recipients'
/// outcomes, opens, clicks, unsubscribes and complaints, its failures by
/// class, its links and its credits.
pub async fn campaign(s: &impl Storage, customer: CustomerId, id: TaskId) -> Result<Campaign, ReportError> {
    let task = s.task(customer, id).await?.ok_or(ReportError::NotFound)?;
    let outcomes = s.task_outcomes(customer, id).await?;
    let tracking = s.task_tracking(customer, id).await?.shown_for(task.track_status);
    let links = s.link_stats(customer, id, None).await?;
    let counts = CampaignCounts {
        recipients: if task.time_start.is_some() {
            task.recipients
        } else {
            task.send_qty_remak
        },
        sent: task.sent_count + task.error_count,
        delivered: task.sent_count,
        failed: task.error_count,
        deferred: outcomes.deferred,
        opened: tracking.open_unique,
        clicked: tracking.click_unique,
        unsubscribed: outcomes.unsubscribed,
        complained: outcomes.complained,
    };
    let credits = CampaignCredits {
        held: task.reserved,
        charged: (outcomes.credits_taken - task.reserved).max(0),
    };
    Ok(Campaign {
        task,
        counts,
        credits,
        failures: outcomes.failures,
        tracking,
        links,
    })
}

/// A page of a campaign's recipients in `status`, by delivery id after
/// `after` (from the first without it); the next page starts after the
/// last one's `delivery`.
pub async fn campaign_recipients(
    s: &impl Storage,
    customer: CustomerId,
    task: TaskId,
    status: RecipientStatus,
    after: Option<DeliveryId>,
    limit: i64,
) -> Result<Vec<RecipientActivity>, ReportError> {
    s.task(customer, task).await?.ok_or(ReportError::NotFound)?;
    let after = after.unwrap_or(DeliveryId(0));
    Ok(s.campaign_recipients(customer, task, status, after, limit.max(0))
        .await?)
}

/// Figures per local day from `since` on (days without any are absent):
/// a customer's, a task's, or the sends of an operator's customers.
pub async fn daily_figures(
    s: &impl ReportStorage,
    of: FiguresOf,
    since: Date,
) -> Result<BTreeMap<Date, DayFigures>, ReportError> {
    Ok(s.day_figures(of, since).await?)
}

/// A task's deliveries by mail provider (QQ, 163/126, …, others).
pub async fn providers(
    s: &impl Storage,
    customer: CustomerId,
    task: TaskId,
) -> Result<Vec<ProviderFigures>, ReportError> {
    s.task(customer, task).await?.ok_or(ReportError::NotFound)?;
    Ok(by_provider(s.domain_figures(customer, task).await?))
}

/// The customers an agent or a manager sees, with their services and what
/// they sent from `since` on.
pub async fn customer_activity(
    s: &impl ReportStorage,
    of: CustomersOf,
    since: Date,
) -> Result<Vec<CustomerActivity>, ReportError> {
    Ok(s.customer_activity(of, since).await?)
}
