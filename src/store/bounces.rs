//! Reports that arrive after delivery (DSNs, complaints) applied to their
//! delivery (H-2, H-4, H-5): a hard bounce turns an accepted message into
//! a failure of its class, with its credit back and the counters of the
//! day it was delivered moved; a complaint is counted once and unsubscribes
//! the address.

use super::credits::add_credits;
use super::webhooks::{NewEvent, queue_events};
use super::{Store, StoreResult, WritePool, on_pool};
use crate::bounce::Class;
use crate::clock::Clock;
use crate::domain::accounts::LedgerKind;
use crate::domain::email::EmailAddress;
use crate::domain::failure::FailureClass;
use crate::domain::ids::{CustomerId, TaskId};
use crate::domain::lists::ListStorage;
use crate::domain::webhooks::EventType;

/// What a late report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// An accepted message became a failure.
    Failed,
    Complaint,
    /// The report changes nothing (a delay, an auto-reply) or nothing more
    /// (the message had failed already, the complaint was counted).
    Unchanged,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Failed => "failed",
            Applied::Complaint => "complaint",
            Applied::Unchanged => "unchanged",
        }
    }
}

impl Store {
    pub async fn late_report(
        &self,
        delivery: i64,
        class: Class,
        status: &str,
        reason: &str,
        now: i64,
        clock: &Clock,
    ) -> StoreResult<Applied> {
        match class {
            Class::Transient | Class::Ignore => Ok(Applied::Unchanged),
            Class::Complaint => self.late_complaint(delivery, now, clock).await,
            hard => {
                let failure = hard.failure().expect("a hard class is a failure class");
                self.late_failure(delivery, i64::from(failure.code()), status, reason, now, clock)
                    .await
            }
        }
    }

    async fn late_failure(
        &self,
        delivery: i64,
        class: i64,
        status: &str,
        reason: &str,
        now: i64,
        clock: &Clock,
    ) -> StoreResult<Applied> {
        // The class's name is its `daily_stats` column.
        let column = u8::try_from(class)
            .ok()
            .and_then(FailureClass::from_code)
            .map_or("user_reject", FailureClass::as_str);
        let day_sql = format!(
            "UPDATE daily_stats SET sent = sent - 1, failed = failed + 1, {column} = {column} + 1 \
             WHERE customer_id = $1 AND day = $2 AND task_id = $3"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(i64, i64, String, Option<i64>)> = sqlx::query_as(
                "UPDATE deliveries SET state = 'failed', failure_class = $2, smtp_status = $3, smtp_text = $4 \
                 WHERE id = $1 AND state = 'sent' RETURNING task_id, customer_id, address, finished_at",
            )
            .bind(delivery)
            .bind(class)
            .bind(status)
            .bind(reason)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((task, customer, address, finished_at)) = row else {
                tx.commit().await?;
                return Ok(Applied::Unchanged);
            };
            sqlx::query(
                "UPDATE tasks SET sent_count = sent_count - 1, error_count = error_count + 1, updated_at = $2, \
                 hard_count = hard_count + $3 WHERE id = $1",
            )
            .bind(task)
            .bind(now)
            .bind(i64::from(matches!(class, 1 | 8)))
            .execute(&mut *tx)
            .await?;
            // The counters of the day the message was delivered, where 2.3 and 2.4 count it.
            let day = clock.day_of(finished_at.unwrap_or(now));
            sqlx::query(sqlx::AssertSqlSafe(day_sql))
                .bind(customer)
                .bind(&day)
                .bind(task)
                .execute(&mut *tx)
                .await?;
            // Its credit comes back.
            let reason = "a delivered message bounced".to_string();
            add_credits(&mut *tx, CustomerId(customer), Some(TaskId(task)), LedgerKind::Refund, 1, reason, now).await?;
            // A mailbox or domain that does not exist is not tried again (H-5).
            if matches!(class, 1 | 8)
                && let Some(email) = EmailAddress::parse(&address)
            {
                sqlx::query(
                    "INSERT INTO suppressions (customer_id, address_key, reason, detail, at) \
                     VALUES ($1, $2, 'bounce', $3, $4) ON CONFLICT (customer_id, address_key) DO NOTHING",
                )
                .bind(customer)
                .bind(email.key())
                .bind(column)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let bounced = |wanted: &dyn Fn(i64, EventType) -> bool| {
                late_event(wanted, EventType::Bounced, customer, task, &address, Some(column))
            };
            queue_events(&mut *tx, &[customer], bounced, now).await?;
            tx.commit().await?;
        });
        Ok(Applied::Failed)
    }

    async fn late_complaint(&self, delivery: i64, now: i64, clock: &Clock) -> StoreResult<Applied> {
        let counted: Option<(i64, i64, Option<i64>)> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(i64, i64, Option<i64>, String)> = sqlx::query_as(
                "UPDATE deliveries SET complained = TRUE WHERE id = $1 AND NOT complained \
                 RETURNING task_id, customer_id, finished_at, address",
            )
            .bind(delivery)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((task, customer, finished_at, address)) = &row {
                let (task, customer, finished_at) = (*task, *customer, *finished_at);
                let day = clock.day_of(finished_at.unwrap_or(now));
                sqlx::query(
                    "INSERT INTO daily_stats (customer_id, day, task_id, complaint) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT (customer_id, day, task_id) DO UPDATE SET complaint = daily_stats.complaint + 1",
                )
                .bind(customer)
                .bind(&day)
                .bind(task)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE tasks SET complaint_count = complaint_count + 1 WHERE id = $1")
                    .bind(task)
                    .execute(&mut *tx)
                    .await?;
                let complained = |wanted: &dyn Fn(i64, EventType) -> bool| {
                    late_event(wanted, EventType::Complained, customer, task, address, None)
                };
                queue_events(&mut *tx, &[customer], complained, now).await?;
            }
            tx.commit().await?;
            row.map(|(task, customer, finished_at, _)| (task, customer, finished_at))
        });
        if counted.is_none() {
            return Ok(Applied::Unchanged);
        }
        // The address leaves the task's list and is suppressed, as 4.14 does.
        if let Some(owner) = self.delivery_owner(delivery).await?
            && let Some(email) = EmailAddress::parse(&owner.address)
        {
            self.unsubscribe(owner.customer, owner.list, &[email], "complaint", now)
                .await?;
        }
        Ok(Applied::Complaint)
    }
}

/// The event a late report brings, when the customer's webhooks want it.
fn late_event(
    wanted: &dyn Fn(i64, EventType) -> bool,
    kind: EventType,
    customer: i64,
    task: i64,
    address: &str,
    class: Option<&str>,
) -> Vec<NewEvent> {
    if !wanted(customer, kind) {
        return Vec::new();
    }
    let mut data = serde_json::json!({"campaign_id": task, "email": address});
    if let Some(c) = class {
        data["class"] = c.into();
    }
    vec![NewEvent {
        customer,
        kind,
        data: data.to_string(),
    }]
}
