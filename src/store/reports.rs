//! The reports' reads: the per-date reports of chapter 2 from the counters
//! the engine keeps as outcomes land (`daily_stats`), the tasks and the
//! credit ledger; the tracking reports of chapter 3 from the aggregates the
//! hit writer keeps; and the console's per-day figures.

use std::collections::BTreeMap;

use jiff::civil::Date;
use sqlx::FromRow;

use super::accounts::{CustomerRow, ServiceRow};
use super::{Arg, Store, StoreError, StoreResult, bind_args, on_pool};
use crate::clock::{format_date, parse_date};
use crate::domain::failure::FailureClass;
use crate::domain::ids::{ClickId, CustomerId, DeliveryId, LinkId, TaskId, TrackedRecipientId};
use crate::domain::reports::{
    ClassCounts, ClickRecord, CustomerActivity, CustomersOf, DayFigures, DayStatistic, DeliveryState,
    FailFilter, FailedKey, FailedRecipient, FiguresOf, LinkStat, ProviderFigures, RecipientActivity,
    RecipientStatus, ReportStorage, TaskDay, TaskDayFilter, TaskOutcomes, TaskTracking, TrackedAddressFilter,
    TrackedRecipient,
};

fn corrupt(what: &str) -> StoreError {
    StoreError::Failed(format!("corrupt report row: {what}"))
}

fn day(text: &str) -> StoreResult<Date> {
    parse_date(text).map_err(|_| corrupt("day"))
}

fn class(code: i64) -> StoreResult<FailureClass> {
    u8::try_from(code)
        .ok()
        .and_then(FailureClass::from_code)
        .ok_or_else(|| corrupt("failure class"))
}

/// The condition that a task is the customer's, with the task in `$1` and
/// the customer in `$2`: evaluated once per query.
const TASK_IS_CUSTOMERS: &str = "EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND customer_id = $2)";

/// `From<row> for entity`, for a row that holds each of the entity's
/// fields under the same name.
macro_rules! entity_from_row {
    ($row:ident => $entity:ident { $($field:ident),* $(,)? }) => {
        impl From<$row> for $entity {
            fn from(r: $row) -> $entity {
                $entity { $($field: r.$field),* }
            }
        }
    };
}

#[derive(FromRow)]
struct TaskDayRow {
    task_id: TaskId,
    day: String,
    ident: String,
    recipients: i64,
    sent: i64,
    failed: i64,
    not_exist: i64,
    over_quota: i64,
    user_reject: i64,
    invalid_addr: i64,
    format_error: i64,
    complaint: i64,
}

#[derive(FromRow)]
struct FailedRow {
    id: DeliveryId,
    finished_at: i64,
    address: String,
    failure_class: i64,
    task_id: TaskId,
}

#[derive(FromRow)]
struct TrackingRow {
    open_unique: i64,
    open_total: i64,
    open_machine: i64,
    open_first: Option<i64>,
    open_last: Option<i64>,
    click_unique: i64,
    click_total: i64,
    click_machine: i64,
    click_first: Option<i64>,
    click_last: Option<i64>,
}

entity_from_row!(TrackingRow => TaskTracking {
    open_unique, open_total, open_machine, open_first, open_last,
    click_unique, click_total, click_machine, click_first, click_last,
});

#[derive(FromRow)]
struct LinkRow {
    link: LinkId,
    url: String,
    click_unique: i64,
    click_total: i64,
    click_first: Option<i64>,
    click_last: Option<i64>,
}

entity_from_row!(LinkRow => LinkStat { link, url, click_unique, click_total, click_first, click_last });

#[derive(FromRow)]
struct TrackedRow {
    id: TrackedRecipientId,
    address: String,
    browser: String,
    os: String,
    device: String,
    ip_first: String,
    ip_last: String,
    open_total: i64,
    open_first: Option<i64>,
    open_last: Option<i64>,
    click_total: i64,
    click_first: Option<i64>,
    click_last: Option<i64>,
}

entity_from_row!(TrackedRow => TrackedRecipient {
    id, address, browser, os, device, ip_first, ip_last,
    open_total, open_first, open_last, click_total, click_first, click_last,
});

#[derive(FromRow)]
struct ClickRow {
    id: ClickId,
    address: String,
    url: String,
    click_total: i64,
    click_human: i64,
    click_first: Option<i64>,
    click_last: Option<i64>,
}

entity_from_row!(ClickRow => ClickRecord { id, address, url, click_total, click_human, click_first, click_last });

#[derive(FromRow)]
struct RecipientRow {
    id: DeliveryId,
    address: String,
    state: String,
    failure_class: Option<i64>,
    smtp_status: String,
    attempts: i64,
    sent_at: Option<i64>,
    finished_at: Option<i64>,
    complained: bool,
    opens: i64,
    open_first: Option<i64>,
    open_last: Option<i64>,
    clicks: i64,
    click_first: Option<i64>,
    click_last: Option<i64>,
}

#[derive(FromRow)]
struct ActivityRow {
    #[sqlx(flatten)]
    customer: CustomerRow,
    #[sqlx(flatten)]
    service: ServiceRow,
    sent: i64,
    failed: i64,
}

/// The rows of `table` that `of` covers from the day in `$1` on: the
/// condition and its arguments after that day.
fn figures_scope(of: FiguresOf) -> (&'static str, Vec<Arg<'static>>) {
    match of {
        FiguresOf::Customer(c) => ("customer_id = $2", vec![Arg::Int(c.get())]),
        FiguresOf::Task(c, t) => (
            "customer_id = $2 AND task_id = $3",
            vec![Arg::Int(c.get()), Arg::Int(t.get())],
        ),
        FiguresOf::Customers(CustomersOf::Agent(agent)) => (
            "customer_id IN (SELECT id FROM customers WHERE agent_id = $2)",
            vec![Arg::Int(agent.get())],
        ),
        FiguresOf::Customers(CustomersOf::Everyone) => ("1 = 1", Vec::new()),
    }
}

impl ReportStorage for Store {
    async fn day_statistic(
        &self,
        customer: CustomerId,
        day: Date,
        span: (i64, i64),
    ) -> StoreResult<DayStatistic> {
        let (from, to) = span;
        let day = format_date(day);
        let (sent, failed, invalid_addr, format_error): (i64, i64, i64, i64) = on_pool!(self, p => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(sent), 0) AS BIGINT), CAST(COALESCE(SUM(failed), 0) AS BIGINT), \
             CAST(COALESCE(SUM(invalid_addr), 0) AS BIGINT), CAST(COALESCE(SUM(format_error), 0) AS BIGINT) \
             FROM daily_stats WHERE customer_id = $1 AND day = $2",
        )
        .bind(customer)
        .bind(&day)
        .fetch_one(p)
        .await)?;
        let ws_qty: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(send_qty_remak), 0) AS BIGINT) FROM tasks \
             WHERE customer_id = $1 AND deleted_at IS NULL AND send_time >= $2 AND send_time < $3",
        )
        .bind(customer)
        .bind(from)
        .bind(to)
        .fetch_one(p)
        .await)?;
        let send_count: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(recipients), 0) AS BIGINT) FROM tasks \
             WHERE customer_id = $1 AND time_start >= $2 AND time_start < $3",
        )
        .bind(customer)
        .bind(from)
        .bind(to)
        .fetch_one(p)
        .await)?;
        let deduc_count: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) FROM credit_ledger \
             WHERE customer_id = $1 AND kind = 'pre_deduct' AND at >= $2 AND at < $3",
        )
        .bind(customer)
        .bind(from)
        .bind(to)
        .fetch_one(p)
        .await)?;
        Ok(DayStatistic {
            ws_qty,
            ws_count: sent + failed,
            failed,
            invalid_addr,
            format_error,
            send_count,
            deduc_count,
            sent,
        })
    }

    async fn task_days(&self, customer: CustomerId, f: &TaskDayFilter) -> StoreResult<Vec<TaskDay>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, TaskDayRow>(
            "SELECT s.task_id, s.day, t.ident, t.recipients, s.sent, s.failed, s.not_exist, s.over_quota, \
             s.user_reject, s.invalid_addr, s.format_error, s.complaint \
             FROM daily_stats s JOIN tasks t ON t.id = s.task_id \
             WHERE s.customer_id = $1 AND ($2 IS NULL OR s.day = $2) AND ($3 IS NULL OR t.ident = $3) \
             AND ($4 IS NULL OR s.task_id = $4) ORDER BY s.day, s.task_id",
        )
        .bind(customer)
        .bind(f.day.map(format_date))
        .bind(f.ident.as_deref())
        .bind(f.task)
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(TaskDay {
                    task_id: r.task_id,
                    day: day(&r.day)?,
                    ident: r.ident,
                    recipients: r.recipients,
                    sent: r.sent,
                    failed: r.failed,
                    classes: ClassCounts {
                        not_exist: r.not_exist,
                        over_quota: r.over_quota,
                        user_reject: r.user_reject,
                        invalid_addr: r.invalid_addr,
                        format_error: r.format_error,
                    },
                    complaints: r.complaint,
                })
            })
            .collect()
    }

    async fn failed_recipients(
        &self,
        customer: CustomerId,
        f: &FailFilter,
        after: FailedKey,
        limit: i64,
    ) -> StoreResult<Vec<FailedRecipient>> {
        let mut sql = String::from(
            "SELECT id, finished_at, address, failure_class, task_id FROM deliveries \
             WHERE customer_id = $1 AND state = 'failed' AND finished_at >= $2 AND finished_at < $3 \
             AND (finished_at > $4 OR (finished_at = $4 AND id > $5))",
        );
        let mut args = vec![
            Arg::Int(customer.get()),
            Arg::Int(f.between.0),
            Arg::Int(f.between.1),
            Arg::Int(after.at),
            Arg::Int(after.id.get()),
        ];
        if let Some(class) = f.class {
            sql.push_str(" AND failure_class = $6");
            args.push(Arg::Int(i64::from(class.code())));
        }
        if let Some(tasks) = &f.tasks {
            let ids: Vec<String> = tasks.iter().map(|t| t.get().to_string()).collect();
            sql.push_str(&format!(
                " AND task_id IN ({})",
                if ids.is_empty() {
                    "NULL".to_string()
                } else {
                    ids.join(",")
                }
            ));
        }
        sql.push_str(&format!(" ORDER BY finished_at, id LIMIT {limit}"));
        let rows = on_pool!(self, p => {
            bind_args!(sqlx::query_as::<_, FailedRow>(sqlx::AssertSqlSafe(sql.clone())), &args).fetch_all(p).await
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(FailedRecipient {
                    id: r.id,
                    finished_at: r.finished_at,
                    address: r.address,
                    class: class(r.failure_class)?,
                    task_id: r.task_id,
                })
            })
            .collect()
    }

    async fn task_tracking(&self, customer: CustomerId, task: TaskId) -> StoreResult<TaskTracking> {
        let sql = format!(
            "SELECT open_unique, open_total, open_machine, open_first, open_last, click_unique, click_total, \
             click_machine, click_first, click_last FROM task_tracking WHERE task_id = $1 AND {TASK_IS_CUSTOMERS}"
        );
        let row = on_pool!(self, p => sqlx::query_as::<_, TrackingRow>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(TaskTracking::from).unwrap_or_default())
    }

    async fn link_stats(
        &self,
        customer: CustomerId,
        task: TaskId,
        link: Option<LinkId>,
    ) -> StoreResult<Vec<LinkStat>> {
        let sql = format!(
            "SELECT link_id AS link, url, click_unique, click_total, click_first, click_last FROM task_links \
             WHERE task_id = $1 AND {TASK_IS_CUSTOMERS} AND ($3 IS NULL OR link_id = $3) ORDER BY link_id"
        );
        let rows = on_pool!(self, p => sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .bind(link)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(LinkStat::from).collect())
    }

    async fn tracked_recipients(
        &self,
        customer: CustomerId,
        task: TaskId,
        after: TrackedRecipientId,
        limit: i64,
    ) -> StoreResult<Vec<TrackedRecipient>> {
        let sql = format!(
            "SELECT id, address, browser, os, device, ip_first, ip_last, open_total, open_first, open_last, \
             click_total, click_first, click_last FROM track_recipients \
             WHERE task_id = $1 AND {TASK_IS_CUSTOMERS} AND id > $3 ORDER BY id LIMIT $4"
        );
        let rows = on_pool!(self, p => sqlx::query_as::<_, TrackedRow>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(TrackedRecipient::from).collect())
    }

    async fn click_records(
        &self,
        customer: CustomerId,
        task: TaskId,
        link: Option<LinkId>,
        after: ClickId,
        limit: i64,
    ) -> StoreResult<Vec<ClickRecord>> {
        let sql = format!(
            "SELECT c.id, c.address, l.url, c.click_total, c.click_human, c.click_first, c.click_last \
             FROM track_clicks c JOIN task_links l ON l.task_id = c.task_id AND l.link_id = c.link_id \
             WHERE c.task_id = $1 AND {TASK_IS_CUSTOMERS} AND ($3 IS NULL OR c.link_id = $3) AND c.id > $4 \
             ORDER BY c.id LIMIT $5"
        );
        let rows = on_pool!(self, p => sqlx::query_as::<_, ClickRow>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .bind(link)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(ClickRecord::from).collect())
    }

    async fn has_tracked_recipient(
        &self,
        customer: CustomerId,
        task: TaskId,
        recipient: TrackedRecipientId,
    ) -> StoreResult<bool> {
        let sql =
            format!("SELECT id FROM track_recipients WHERE task_id = $1 AND {TASK_IS_CUSTOMERS} AND id = $3");
        let n: Option<i64> = on_pool!(self, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .bind(recipient)
            .fetch_optional(p)
            .await)?;
        Ok(n.is_some())
    }

    async fn tracked_addresses(
        &self,
        customer: CustomerId,
        task: TaskId,
        f: &TrackedAddressFilter,
        after: TrackedRecipientId,
        limit: i64,
    ) -> StoreResult<Vec<(TrackedRecipientId, String)>> {
        let sql = format!(
            "SELECT r.id, r.address FROM track_recipients r WHERE r.task_id = $1 AND {TASK_IS_CUSTOMERS} \
             AND r.id > $3 AND ($4 IS NULL OR r.id = $4) \
             AND ($5 = 0 OR r.click_human > 0) \
             AND ($6 IS NULL OR EXISTS (SELECT 1 FROM track_clicks c WHERE c.delivery_id = r.delivery_id \
             AND c.link_id = $6 AND c.click_human > 0)) \
             ORDER BY r.id LIMIT $7"
        );
        let rows = on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .bind(after)
            .bind(f.recipient)
            .bind(i64::from(f.clicked_only || f.link.is_some()))
            .bind(f.link)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        Ok(rows)
    }

    async fn task_outcomes(&self, customer: CustomerId, task: TaskId) -> StoreResult<TaskOutcomes> {
        // `state IN (…)` lets both backends use the index of due deliveries.
        let deferred: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE task_id = $1 AND state IN ('queued', 'deferred') \
             AND state = 'deferred' AND customer_id = $2",
        )
        .bind(task)
        .bind(customer)
        .fetch_one(p)
        .await)?;
        type Sums = (i64, i64, i64, i64, i64, i64);
        let (complained, not_exist, over_quota, user_reject, invalid_addr, format_error): Sums = on_pool!(self, p => sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(complaint), 0) AS BIGINT), CAST(COALESCE(SUM(not_exist), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(over_quota), 0) AS BIGINT), CAST(COALESCE(SUM(user_reject), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(invalid_addr), 0) AS BIGINT), CAST(COALESCE(SUM(format_error), 0) AS BIGINT) \
                 FROM daily_stats WHERE customer_id = $1 AND task_id = $2",
            )
            .bind(customer)
            .bind(task)
            .fetch_one(p)
            .await)?;
        let unsubscribed: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(unsubscribes), 0) AS BIGINT) FROM track_daily \
             WHERE customer_id = $1 AND task_id = $2",
        )
        .bind(customer)
        .bind(task)
        .fetch_one(p)
        .await)?;
        let credits_taken: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) FROM credit_ledger \
             WHERE customer_id = $1 AND task_id = $2",
        )
        .bind(customer)
        .bind(task)
        .fetch_one(p)
        .await)?;
        Ok(TaskOutcomes {
            deferred,
            unsubscribed,
            complained,
            failures: ClassCounts {
                not_exist,
                over_quota,
                user_reject,
                invalid_addr,
                format_error,
            },
            credits_taken,
        })
    }

    async fn campaign_recipients(
        &self,
        customer: CustomerId,
        task: TaskId,
        status: RecipientStatus,
        after: DeliveryId,
        limit: i64,
    ) -> StoreResult<Vec<RecipientActivity>> {
        let which = match status {
            RecipientStatus::Delivered => "d.state = 'sent'",
            RecipientStatus::Failed => "d.state = 'failed'",
            RecipientStatus::Opened => "r.open_human > 0",
            RecipientStatus::Clicked => "r.click_human > 0",
        };
        let sql = format!(
            "SELECT d.id, d.address, d.state, d.failure_class, d.smtp_status, d.attempts, d.sent_at, d.finished_at, \
             d.complained, COALESCE(r.open_total, 0) AS opens, r.open_first, r.open_last, \
             COALESCE(r.click_total, 0) AS clicks, r.click_first, r.click_last \
             FROM deliveries d LEFT JOIN track_recipients r ON r.delivery_id = d.id \
             WHERE d.task_id = $1 AND d.customer_id = $2 AND d.id > $3 AND {which} ORDER BY d.id LIMIT $4"
        );
        let rows = on_pool!(self, p => sqlx::query_as::<_, RecipientRow>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(RecipientActivity {
                    delivery: r.id,
                    address: r.address,
                    state: DeliveryState::parse(&r.state).ok_or_else(|| corrupt("delivery state"))?,
                    class: r.failure_class.map(class).transpose()?,
                    smtp_status: r.smtp_status,
                    attempts: r.attempts,
                    sent_at: r.sent_at,
                    finished_at: r.finished_at,
                    complained: r.complained,
                    opens: r.opens,
                    open_first: r.open_first,
                    open_last: r.open_last,
                    clicks: r.clicks,
                    click_first: r.click_first,
                    click_last: r.click_last,
                })
            })
            .collect()
    }

    async fn day_figures(&self, of: FiguresOf, since: Date) -> StoreResult<BTreeMap<Date, DayFigures>> {
        let since = format_date(since);
        let (scope, scope_args) = figures_scope(of);
        let mut args = vec![Arg::Text(&since)];
        args.extend(scope_args);
        type SendRow = (String, i64, i64, i64, i64, i64, i64, i64);
        let sends_sql = format!(
            "SELECT day, CAST(SUM(sent) AS BIGINT), CAST(SUM(failed) AS BIGINT), CAST(SUM(not_exist) AS BIGINT), \
             CAST(SUM(over_quota) AS BIGINT), CAST(SUM(user_reject) AS BIGINT), \
             CAST(SUM(invalid_addr) AS BIGINT), CAST(SUM(format_error) AS BIGINT) \
             FROM daily_stats WHERE day >= $1 AND {scope} GROUP BY day"
        );
        let sends: Vec<SendRow> = on_pool!(self, p => {
            bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(sends_sql.clone())), &args).fetch_all(p).await
        })?;
        let hits_sql = format!(
            "SELECT day, CAST(SUM(opens) AS BIGINT), CAST(SUM(opens_machine) AS BIGINT), \
             CAST(SUM(clicks) AS BIGINT), CAST(SUM(clicks_machine) AS BIGINT) \
             FROM track_daily WHERE day >= $1 AND {scope} GROUP BY day"
        );
        let hits: Vec<(String, i64, i64, i64, i64)> = on_pool!(self, p => {
            bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(hits_sql.clone())), &args).fetch_all(p).await
        })?;
        let mut days: BTreeMap<Date, DayFigures> = BTreeMap::new();
        for (d, sent, failed, not_exist, over_quota, user_reject, invalid_addr, format_error) in sends {
            let f = days.entry(day(&d)?).or_default();
            f.sent = sent;
            f.failed = failed;
            f.classes = ClassCounts {
                not_exist,
                over_quota,
                user_reject,
                invalid_addr,
                format_error,
            };
        }
        for (d, opens, opens_machine, clicks, clicks_machine) in hits {
            let f = days.entry(day(&d)?).or_default();
            f.opens = opens;
            f.opens_machine = opens_machine;
            f.clicks = clicks;
            f.clicks_machine = clicks_machine;
        }
        Ok(days)
    }

    async fn domain_figures(
        &self,
        customer: CustomerId,
        task: TaskId,
    ) -> StoreResult<Vec<(String, ProviderFigures)>> {
        let domain = match self {
            Store::Sqlite(_) => "lower(substr(address, instr(address, '@') + 1))",
            Store::Postgres(_) => "lower(split_part(address, '@', 2))",
        };
        let sql = format!(
            "SELECT {domain} AS d, COUNT(*), CAST(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS BIGINT) \
             FROM deliveries WHERE task_id = $1 AND customer_id = $2 GROUP BY d"
        );
        let rows: Vec<(String, i64, i64, i64)> = on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(task)
            .bind(customer)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(domain, recipients, sent, failed)| {
                let n = ProviderFigures {
                    provider: "",
                    recipients,
                    sent,
                    failed,
                };
                (domain, n)
            })
            .collect())
    }

    async fn customer_activity(&self, of: CustomersOf, since: Date) -> StoreResult<Vec<CustomerActivity>> {
        let agent = match of {
            CustomersOf::Agent(a) => Some(a),
            CustomersOf::Everyone => None,
        };
        let rows = on_pool!(self, p => sqlx::query_as::<_, ActivityRow>(
            "SELECT c.id, c.username, c.company, c.contact, c.phone, c.mobile, c.email, c.im, c.address, \
             o.username AS agent, c.disabled, s.customer_id, s.status, s.service_type, s.send_type, \
             s.begin_date, s.end_date, s.qty_available, s.qty_buytotal, s.day_of, \
             CAST(COALESCE((SELECT SUM(d.sent) FROM daily_stats d WHERE d.customer_id = c.id AND d.day >= $2), 0) AS BIGINT) AS sent, \
             CAST(COALESCE((SELECT SUM(d.failed) FROM daily_stats d WHERE d.customer_id = c.id AND d.day >= $2), 0) AS BIGINT) AS failed \
             FROM customers c JOIN services s ON s.customer_id = c.id LEFT JOIN operators o ON o.id = c.agent_id \
             WHERE ($1 IS NULL OR c.agent_id = $1) ORDER BY c.id",
        )
        .bind(agent)
        .bind(format_date(since))
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(CustomerActivity {
                    customer: r.customer.into(),
                    service: r.service.try_into()?,
                    sent: r.sent,
                    failed: r.failed,
                })
            })
            .collect()
    }
}
