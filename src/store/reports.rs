//! The per-date reports of chapter 2, read from the counters the engine
//! keeps as outcomes land (`daily_stats`), the tasks and the credit ledger.

use super::{Arg, Store, StoreResult, bind_args, on_pool};

/// 2.2 for one customer and local day.
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

/// One row of 2.4: one task on one day.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TaskDay {
    pub task_id: i64,
    pub day: String,
    pub ident: String,
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    pub not_exist: i64,
    pub over_quota: i64,
    pub user_reject: i64,
    pub invalid_addr: i64,
    pub format_error: i64,
    pub complaint: i64,
}

/// One failed recipient (2.3).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FailedRecipient {
    pub id: i64,
    pub finished_at: i64,
    pub address: String,
    pub failure_class: i64,
    pub task_id: i64,
}

/// Which failed recipients 2.3 exports.
#[derive(Clone, Debug)]
pub struct FailFilter {
    /// [from, to) in Unix seconds.
    pub between: (i64, i64),
    /// `None`: every class.
    pub class: Option<i64>,
    /// `None`: every task of the customer.
    pub tasks: Option<Vec<i64>>,
}

impl Store {
    /// 2.2: a customer's figures of one local day (`between` is its span).
    pub async fn day_statistic(
        &self,
        customer: i64,
        day: &str,
        between: (i64, i64),
    ) -> StoreResult<DayStatistic> {
        let (from, to) = between;
        let (sent, failed, invalid_addr, format_error): (i64, i64, i64, i64) = on_pool!(self, p => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(sent), 0) AS BIGINT), CAST(COALESCE(SUM(failed), 0) AS BIGINT), \
             CAST(COALESCE(SUM(invalid_addr), 0) AS BIGINT), CAST(COALESCE(SUM(format_error), 0) AS BIGINT) \
             FROM daily_stats WHERE customer_id = $1 AND day = $2",
        )
        .bind(customer)
        .bind(day)
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

    /// 2.4: a customer's (task, day) rows, filtered by day, batch
    /// identifier and task id (ANDed), by day then task.
    pub async fn task_days(
        &self,
        customer: i64,
        day: Option<&str>,
        ident: Option<&str>,
        task: Option<i64>,
    ) -> StoreResult<Vec<TaskDay>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, TaskDay>(
            "SELECT s.task_id, s.day, t.ident, t.recipients, s.sent, s.failed, s.not_exist, s.over_quota, \
             s.user_reject, s.invalid_addr, s.format_error, s.complaint \
             FROM daily_stats s JOIN tasks t ON t.id = s.task_id \
             WHERE s.customer_id = $1 AND ($2 IS NULL OR s.day = $2) AND ($3 IS NULL OR t.ident = $3) \
             AND ($4 IS NULL OR s.task_id = $4) ORDER BY s.day, s.task_id",
        )
        .bind(customer)
        .bind(day)
        .bind(ident)
        .bind(task)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// 2.3: failed recipients in the order they were recorded, a page at a
    /// time after (`finished_at`, `id`).
    pub async fn failed_recipients(
        &self,
        customer: i64,
        f: &FailFilter,
        after: (i64, i64),
        limit: i64,
    ) -> StoreResult<Vec<FailedRecipient>> {
        let mut sql = String::from(
            "SELECT id, finished_at, address, failure_class, task_id FROM deliveries \
             WHERE customer_id = $1 AND state = 'failed' AND finished_at >= $2 AND finished_at < $3 \
             AND (finished_at > $4 OR (finished_at = $4 AND id > $5))",
        );
        let mut args = vec![
            Arg::Int(customer),
            Arg::Int(f.between.0),
            Arg::Int(f.between.1),
            Arg::Int(after.0),
            Arg::Int(after.1),
        ];
        if let Some(class) = f.class {
            sql.push_str(" AND failure_class = $6");
            args.push(Arg::Int(class));
        }
        if let Some(tasks) = &f.tasks {
            let ids: Vec<String> = tasks.iter().map(i64::to_string).collect();
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
            bind_args!(sqlx::query_as::<_, FailedRecipient>(sqlx::AssertSqlSafe(sql.clone())), &args).fetch_all(p).await
        })?;
        Ok(rows)
    }
}
