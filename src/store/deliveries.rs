//! Deliveries: claimed by workers in batches under a lease, and their
//! outcomes recorded one by one as they land, with the task's counters, the
//! day's counters, and the task's completion and refund (D-20, H-2).

use sqlx::FromRow;

use super::credits::{add_credits, ledger_row, move_credits};
use super::tasks::settle_stopped;
use super::webhooks::{NewEvent, queue_events};
use super::{Arg, Store, StoreResult, WritePool, on_pool};
use crate::domain::accounts::{LedgerEntry, LedgerKind};
use crate::domain::email::EmailAddress;
use crate::domain::failure::FailureClass;
use crate::domain::ids::{CustomerId, TaskId};
use crate::domain::senders::DAILY_CAP;
use crate::domain::tasks::SendStatus;
use crate::domain::webhooks::EventType;

/// A delivery a worker holds until `lease_until`.
#[derive(Clone, Debug, FromRow)]
pub struct Claimed {
    pub id: i64,
    pub task_id: i64,
    pub customer_id: i64,
    pub address: String,
    pub fullname: String,
    pub var1: String,
    pub var2: String,
    pub var3: String,
    pub var4: String,
    pub var5: String,
    pub var6: String,
    pub var7: String,
    pub var8: String,
    pub var9: String,
    pub var10: String,
    /// This attempt's number, from 1.
    pub attempts: i64,
}

impl Claimed {
    pub fn vars(&self) -> [&str; 10] {
        [
            &self.var1,
            &self.var2,
            &self.var3,
            &self.var4,
            &self.var5,
            &self.var6,
            &self.var7,
            &self.var8,
            &self.var9,
            &self.var10,
        ]
    }
}

/// What became of one attempt.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Accepted by the receiving server: charged.
    Sent { sender: String, code: i64, text: String },
    /// Try again at `retry_at`.
    Deferred {
        sender: String,
        retry_at: i64,
        code: Option<i64>,
        status: String,
        text: String,
    },
    /// For good, with its failure class (1, 2, 3, 8, 9).
    Failed {
        sender: String,
        class: i64,
        code: Option<i64>,
        status: String,
        text: String,
    },
    /// Not attempted: the day's allowance is used up (H-2 `day`); back in
    /// the queue until `retry_at`, this claim not counted as an attempt.
    Postponed { retry_at: i64 },
    /// Not attempted: its sending domain or mailbox sent its daily cap;
    /// deferred until `retry_at` (the next day) with the reason "daily
    /// cap", this claim not counted as an attempt.
    OverCap { sender: String, retry_at: i64 },
    /// Not attempted: its task stopped sending (paused, cancelled, deleted)
    /// while the message waited for its turn. Back in the queue of a paused
    /// task, or cancelled with its task; this claim not counted as an attempt.
    Withheld,
}

/// recipients, sent, failed, skipped, reserved, send_status, ident, deleted_at
type TaskState = (i64, i64, i64, i64, i64, i64, String, Option<i64>);

/// The outcomes of one task that landed together: messages accepted, and
/// failures by class (the columns of `daily_stats`).
struct Tally {
    customer: i64,
    sent: i64,
    not_exist: i64,
    over_quota: i64,
    user_reject: i64,
    invalid_addr: i64,
    format_error: i64,
}

impl Tally {
    fn new(customer: i64) -> Tally {
        Tally {
            customer,
            sent: 0,
            not_exist: 0,
            over_quota: 0,
            user_reject: 0,
            invalid_addr: 0,
            format_error: 0,
        }
    }

    /// One message accepted (`None`) or failed with its class code.
    fn add(&mut self, class: Option<i64>) {
        match class {
            None => self.sent += 1,
            Some(1) => self.not_exist += 1,
            Some(2) => self.over_quota += 1,
            Some(8) => self.invalid_addr += 1,
            Some(9) => self.format_error += 1,
            Some(_) => self.user_reject += 1,
        }
    }

    fn failed(&self) -> i64 {
        self.not_exist + self.over_quota + self.user_reject + self.invalid_addr + self.format_error
    }

    /// The failures the reputation guard counts: the address does not exist.
    fn hard(&self) -> i64 {
        self.not_exist + self.invalid_addr
    }
}

const CLAIM_RETURNING: &str = " RETURNING id, task_id, customer_id, address, fullname, var1, var2, var3, var4, \
     var5, var6, var7, var8, var9, var10, attempts";

impl Store {
    /// `day` services (H-2): takes one credit of today's allowance for a
    /// message about to be handed to SMTP, refilling the allowance on a new
    /// day; false when today's allowance is used up.
    pub async fn take_day_credit(
        &self,
        customer: i64,
        task: i64,
        today: &str,
        now: i64,
    ) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let reset: Option<i64> = sqlx::query_scalar(
                "UPDATE services SET qty_available = qty_buytotal, day_of = $1 \
                 WHERE customer_id = $2 AND service_type = 'day' AND (day_of IS NULL OR day_of <> $1) \
                 RETURNING qty_available",
            )
            .bind(today)
            .bind(customer)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(balance) = reset {
                let entry = LedgerEntry {
                    at: now,
                    kind: LedgerKind::DayReset,
                    amount: 0,
                    balance,
                    task_id: None,
                    reason: format!("allowance for {today}"),
                };
                ledger_row(&mut *tx, CustomerId(customer), &entry).await?;
            }
            let balance: Option<i64> = sqlx::query_scalar(
                "UPDATE services SET qty_available = qty_available - 1 WHERE customer_id = $1 AND qty_available >= 1 \
                 RETURNING qty_available",
            )
            .bind(customer)
            .fetch_optional(&mut *tx)
            .await?;
            let taken = balance.is_some();
            if let Some(balance) = balance {
                let entry = LedgerEntry {
                    at: now,
                    kind: LedgerKind::Charge,
                    amount: -1,
                    balance,
                    task_id: Some(TaskId(task)),
                    reason: "a message handed to SMTP".to_string(),
                };
                ledger_row(&mut *tx, CustomerId(customer), &entry).await?;
            }
            tx.commit().await?;
            Ok(taken)
        })
    }

    /// `day` services (H-2): gives back the credit of a message that failed for good.
    pub async fn give_day_credit(&self, customer: i64, task: i64, now: i64) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let reason = "a message failed for good".to_string();
            add_credits(&mut *tx, CustomerId(customer), Some(TaskId(task)), LedgerKind::Refund, 1, reason, now).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Defers every delivery of a task still to be sent before `until` to
    /// `until` with the reason "daily cap": all its senders sent their cap
    /// today, so none of them is claimed again before the next day.
    pub async fn defer_task_until(&self, task: i64, until: i64) -> StoreResult<u64> {
        let n = self
            .write(
                "UPDATE deliveries SET state = 'deferred', next_attempt = $1, smtp_code = NULL, smtp_status = '', \
                 smtp_text = $2 WHERE task_id = $3 AND state IN ('queued', 'deferred') AND next_attempt < $1",
                &[Arg::Int(until), Arg::Text(DAILY_CAP), Arg::Int(task)],
            )
            .await?;
        Ok(n)
    }

    /// Deliveries not yet done: queued, deferred or being sent (/metrics).
    pub async fn queue_depth(&self) -> StoreResult<i64> {
        // Two counts, each over the partial index of its states.
        let n = on_pool!(self, p => sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'deferred')) \
             + (SELECT COUNT(*) FROM deliveries WHERE state = 'sending')",
        )
        .fetch_one(p)
        .await)?;
        Ok(n)
    }

    /// Keeps a worker's claims alive: their lease now lasts until `lease_until`.
    pub async fn renew_claims(&self, claims: &[(i64, i64)], lease_until: i64) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (id, attempts) in claims {
                sqlx::query(
                    "UPDATE deliveries SET lease_until = $1 WHERE id = $2 AND attempts = $3 AND state = 'sending'",
                )
                .bind(lease_until)
                .bind(*id)
                .bind(*attempts)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes up to `limit` deliveries that are due — those whose lease ran
    /// out (their worker died) first, then, in equal shares, each sending
    /// task's queued and deferred ones that are due, oldest first — and
    /// leases them until `lease_until`. PostgreSQL: several workers claim
    /// side by side (`SKIP LOCKED`).
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Claimed>> {
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let claim =
            "UPDATE deliveries SET state = 'sending', lease_until = $2, attempts = attempts + 1 WHERE id IN";
        let lapsed = format!(
            "{claim} (SELECT d.id FROM deliveries d WHERE d.state = 'sending' AND d.lease_until < $1 \
             AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = d.task_id AND t.send_status = 2) \
             ORDER BY d.lease_until, d.id LIMIT $3{lock}){CLAIM_RETURNING}"
        );
        let due = format!(
            "{claim} (SELECT id FROM deliveries WHERE task_id = $4 AND state IN ('queued', 'deferred') \
             AND next_attempt <= $1 ORDER BY next_attempt, id LIMIT $3{lock}){CLAIM_RETURNING}"
        );
        let rows = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut rows = sqlx::query_as::<_, Claimed>(sqlx::AssertSqlSafe(lapsed))
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            let tasks: Vec<i64> = sqlx::query_scalar("SELECT id FROM tasks WHERE send_status = 2 ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
            let wanted = (limit - rows.len() as i64).max(0) as u64;
            let share = wanted.div_ceil(tasks.len().max(1) as u64) as i64;
            for task in tasks {
                let left = limit - rows.len() as i64;
                if left <= 0 {
                    break;
                }
                rows.extend(
                    sqlx::query_as::<_, Claimed>(sqlx::AssertSqlSafe(due.as_str()))
                        .bind(now)
                        .bind(lease_until)
                        .bind(share.min(left))
                        .bind(task)
                        .fetch_all(&mut *tx)
                        .await?,
                );
            }
            tx.commit().await?;
            rows
        });
        Ok(rows)
    }

    /// Records an attempt's outcome, and with it the task's and the day's
    /// counters; completes the task when this was its last open delivery,
    /// giving back the credits it reserved and did not use. A task paused
    /// meanwhile completes too when nothing is left to send; a cancelled or
    /// deleted one gets back what its messages in flight held once the last
    /// of them lands (H-2).
    pub async fn record_outcome(
        &self,
        claimed: &Claimed,
        outcome: &Outcome,
        now: i64,
        day: &str,
    ) -> StoreResult<()> {
        self.record_outcomes(&[(claimed, outcome)], now, day).await
    }

    /// Records several outcomes as [`Store::record_outcome`] does, those
    /// that were attempted in one transaction with one update of each task's
    /// and day's counters: a worker's outcomes land faster than one
    /// transaction each can be written (SQLite has one writer).
    pub async fn record_outcomes(
        &self,
        outcomes: &[(&Claimed, &Outcome)],
        now: i64,
        day: &str,
    ) -> StoreResult<()> {
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE",
        };
        let task_sql = format!(
            "SELECT recipients, sent_count, error_count, skipped_count, reserved, send_status, ident, \
             deleted_at FROM tasks WHERE id = $1{lock}"
        );
        let mut attempted = Vec::with_capacity(outcomes.len());
        for &(claimed, outcome) in outcomes {
            match outcome {
                Outcome::Withheld => self.withhold(claimed, now, &task_sql).await?,
                Outcome::Postponed { retry_at } => {
                    self.write(
                        "UPDATE deliveries SET state = 'queued', next_attempt = $1, attempts = attempts - 1, \
                         lease_until = 0 WHERE id = $2 AND state = 'sending' AND attempts = $3",
                        &[
                            Arg::Int(*retry_at),
                            Arg::Int(claimed.id),
                            Arg::Int(claimed.attempts),
                        ],
                    )
                    .await?;
                }
                Outcome::OverCap { sender, retry_at } => {
                    self.write(
                        "UPDATE deliveries SET state = 'deferred', next_attempt = $1, attempts = attempts - 1, \
                         lease_until = 0, sender = $2, smtp_code = NULL, smtp_status = '', smtp_text = $3 \
                         WHERE id = $4 AND state = 'sending' AND attempts = $5",
                        &[
                            Arg::Int(*retry_at),
                            Arg::Text(sender),
                            Arg::Text(DAILY_CAP),
                            Arg::Int(claimed.id),
                            Arg::Int(claimed.attempts),
                        ],
                    )
                    .await?;
                }
                _ => attempted.push((claimed, outcome)),
            }
        }
        if attempted.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // What landed, per task, in ascending task order (the order
            // every worker locks tasks in).
            let mut tallies: std::collections::BTreeMap<i64, Tally> = Default::default();
            // One statement for the group: a statement each was most of
            // the writer's time (a round trip to SQLite's thread each).
            let mut sql = String::from(
                "WITH v (id, attempts, state, failure_class, smtp_code, smtp_status, smtp_text, sender, sent_at, \
                 finished_at, next_attempt) AS (VALUES ",
            );
            for i in 0..attempted.len() {
                let p = i * 11;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT), \
                     CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT), \
                     CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                    p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9, p + 10, p + 11
                ));
            }
            // Only the claim that holds the delivery records its outcome: a
            // worker whose lease ran out and was taken over (a later attempt)
            // changes nothing.
            sql.push_str(
                ") UPDATE deliveries SET state = v.state, failure_class = v.failure_class, smtp_code = v.smtp_code, \
                 smtp_status = v.smtp_status, smtp_text = v.smtp_text, sender = v.sender, sent_at = v.sent_at, \
                 finished_at = v.finished_at, next_attempt = v.next_attempt, lease_until = 0 FROM v \
                 WHERE deliveries.id = v.id AND deliveries.state = 'sending' AND deliveries.attempts = v.attempts \
                 RETURNING deliveries.id",
            );
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            let mut landed = std::collections::HashMap::with_capacity(attempted.len());
            for (claimed, outcome) in attempted {
                let (state, class, code, status, text, sender, sent_at, finished, retry_at) = match outcome {
                    Outcome::Sent { sender, code, text } => {
                        ("sent", None, Some(*code), "", text.as_str(), sender.as_str(), Some(now), Some(now), 0)
                    }
                    Outcome::Deferred { sender, retry_at, code, status, text } => {
                        ("deferred", None, *code, status.as_str(), text.as_str(), sender.as_str(), None, None, *retry_at)
                    }
                    Outcome::Failed { sender, class, code, status, text } => {
                        ("failed", Some(*class), *code, status.as_str(), text.as_str(), sender.as_str(), None, Some(now), 0)
                    }
                    Outcome::Postponed { .. } | Outcome::OverCap { .. } | Outcome::Withheld => {
                        unreachable!("recorded above")
                    }
                };
                q = q
                    .bind(claimed.id)
                    .bind(claimed.attempts)
                    .bind(state)
                    .bind(class)
                    .bind(code)
                    .bind(status)
                    .bind(text)
                    .bind(sender)
                    .bind(sent_at)
                    .bind(finished)
                    .bind(retry_at);
                landed.insert(claimed.id, (claimed, state, class));
            }
            let mut hard = Vec::new();
            let mut events = Vec::new();
            for id in q.fetch_all(&mut *tx).await? {
                if let Some(&(claimed, state, class)) = landed.get(&id) {
                    events.push((claimed, state, class));
                }
                if let Some(&(claimed, state, class)) = landed.get(&id)
                    && state != "deferred"
                {
                    tallies.entry(claimed.task_id).or_insert_with(|| Tally::new(claimed.customer_id)).add(class);
                    if let Some(c) = class.and_then(|c| u8::try_from(c).ok()).and_then(FailureClass::from_code)
                        && c.is_hard()
                    {
                        hard.push((claimed, c));
                    }
                }
            }
            // A mailbox or domain that does not exist is not tried again by
            // the customer's later tasks (H-5).
            for (claimed, class) in hard {
                if let Some(email) = EmailAddress::parse(&claimed.address) {
                    sqlx::query(
                        "INSERT INTO suppressions (customer_id, address_key, reason, detail, at) \
                         VALUES ($1, $2, 'bounce', $3, $4) ON CONFLICT (customer_id, address_key) DO NOTHING",
                    )
                    .bind(claimed.customer_id)
                    .bind(email.key())
                    .bind(class.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let mut done = Vec::new();
            for (&task, t) in &tallies {
                sqlx::query(
                    "UPDATE tasks SET sent_count = sent_count + $1, error_count = error_count + $2, \
                     reserved = CASE WHEN reserved > $1 THEN reserved - $1 ELSE 0 END, updated_at = $3, \
                     hard_count = hard_count + $5 WHERE id = $4",
                )
                .bind(t.sent)
                .bind(t.failed())
                .bind(now)
                .bind(task)
                .bind(t.hard())
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO daily_stats (customer_id, day, task_id, sent, failed, not_exist, over_quota, \
                     user_reject, invalid_addr, format_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (customer_id, day, task_id) DO UPDATE SET sent = daily_stats.sent + $4, \
                     failed = daily_stats.failed + $5, not_exist = daily_stats.not_exist + $6, \
                     over_quota = daily_stats.over_quota + $7, user_reject = daily_stats.user_reject + $8, \
                     invalid_addr = daily_stats.invalid_addr + $9, format_error = daily_stats.format_error + $10",
                )
                .bind(t.customer)
                .bind(day)
                .bind(task)
                .bind(t.sent)
                .bind(t.failed())
                .bind(t.not_exist)
                .bind(t.over_quota)
                .bind(t.user_reject)
                .bind(t.invalid_addr)
                .bind(t.format_error)
                .execute(&mut *tx)
                .await?;
                let (recipients, sent_count, error_count, skipped, reserved, status, ident, deleted): TaskState =
                    sqlx::query_as(sqlx::AssertSqlSafe(task_sql.clone())).bind(task).fetch_one(&mut *tx).await?;
                let status = SendStatus::from_code(status);
                let stopped = status == Some(SendStatus::Cancelled) || deleted.is_some();
                let going = matches!(status, Some(SendStatus::Sending | SendStatus::Paused));
                if !stopped && going && sent_count + error_count + skipped >= recipients {
                    sqlx::query(
                        "UPDATE tasks SET send_status = 3, time_end = $1, reserved = 0, service_paused = $2 \
                         WHERE id = $3",
                    )
                    .bind(now)
                    .bind(false)
                    .bind(task)
                    .execute(&mut *tx)
                    .await?;
                    let reason = format!("task {ident} done: unused reservation");
                    move_credits(&mut *tx, CustomerId(t.customer), TaskId(task), -reserved, reason, now).await?;
                    done.push((t.customer, task, sent_count, error_count, skipped));
                } else if stopped {
                    settle_stopped(&mut *tx, CustomerId(t.customer), TaskId(task), reserved, &ident, now).await?;
                }
            }
            let customers: Vec<i64> = events.iter().map(|(c, _, _)| c.customer_id).collect();
            queue_events(&mut *tx, &customers, |wanted| outcome_events(wanted, &events, &done), now).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Gives back a claim its worker did not attempt because the task
    /// stopped sending: to the queue of a paused task, or cancelled with a
    /// cancelled or deleted one, which then settles.
    async fn withhold(&self, claimed: &Claimed, now: i64, task_sql: &str) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (_, _, _, _, reserved, status, ident, deleted): TaskState =
                sqlx::query_as(sqlx::AssertSqlSafe(task_sql.to_string())).bind(claimed.task_id).fetch_one(&mut *tx).await?;
            let stopped = status == SendStatus::Cancelled.code() || deleted.is_some();
            let changed = sqlx::query(
                "UPDATE deliveries SET state = $1, attempts = attempts - 1, lease_until = 0, finished_at = $2 \
                 WHERE id = $3 AND state = 'sending' AND attempts = $4",
            )
            .bind(if stopped { "cancelled" } else { "queued" })
            .bind(stopped.then_some(now))
            .bind(claimed.id)
            .bind(claimed.attempts)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if stopped && changed > 0 {
                settle_stopped(&mut *tx, CustomerId(claimed.customer_id), TaskId(claimed.task_id), reserved, &ident, now).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// The webhook events of outcomes that landed together, and of the tasks
/// they completed (`customer, task, sent, failed, skipped`), of the types
/// some webhook of their customer hears.
fn outcome_events(
    wanted: &dyn Fn(i64, EventType) -> bool,
    landed: &[(&Claimed, &str, Option<i64>)],
    done: &[(i64, i64, i64, i64, i64)],
) -> Vec<NewEvent> {
    let mut out = Vec::new();
    for &(claimed, state, class) in landed {
        let kind = match state {
            "sent" => EventType::Delivered,
            "deferred" => EventType::Deferred,
            _ => EventType::Failed,
        };
        if !wanted(claimed.customer_id, kind) {
            continue;
        }
        let mut data = serde_json::json!({"campaign_id": claimed.task_id, "email": claimed.address});
        if let Some(c) = class
            .and_then(|c| u8::try_from(c).ok())
            .and_then(FailureClass::from_code)
        {
            data["class"] = c.as_str().into();
        }
        out.push(NewEvent {
            customer: claimed.customer_id,
            kind,
            data: data.to_string(),
        });
    }
    for &(customer, task, sent, failed, skipped) in done {
        if wanted(customer, EventType::CampaignDone) {
            let data =
                serde_json::json!({"campaign_id": task, "sent": sent, "failed": failed, "skipped": skipped});
            out.push(NewEvent {
                customer,
                kind: EventType::CampaignDone,
                data: data.to_string(),
            });
        }
    }
    out
}
