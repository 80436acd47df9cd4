//! Tasks, their credit reservations and their deliveries. A task's state is
//! checked and changed in one transaction (D-18), together with the credits
//! it takes or gives back (D-20, H-2), each change a ledger row.

use sqlx::FromRow;

use super::conn::Conn;
use super::credits::move_credits;
use super::{Arg, Refusal, Store, StoreError, StoreResult, WritePool, bind_args, on_pool, unique_as};
use crate::domain::ids::{CustomerId, ListId, TaskId, TemplateId};
use crate::domain::senders::DAILY_CAP;
use crate::domain::tasks::{
    Guard, GuardFigures, GuardPause, Intervention, SendStatus, SenderSelection, Task, TaskFilter, TaskStorage,
};
use crate::domain::templates::FooterLanguage;

#[derive(FromRow)]
struct TaskRow {
    id: i64,
    customer_id: i64,
    ident: String,
    tpl_id: i64,
    tpl_name: Option<String>,
    list_id: i64,
    list_name: Option<String>,
    acct_type: String,
    acct_domain: String,
    acct_address: String,
    sender_name: String,
    replyto: String,
    send_qty: i64,
    send_qty_start: i64,
    send_qty_remak: i64,
    send_time: i64,
    time_start: Option<i64>,
    time_end: Option<i64>,
    send_status: i64,
    track_status: i64,
    subs_link: bool,
    track_domain: String,
    addr_type: i64,
    reserved: i64,
    service_paused: bool,
    recipients: i64,
    sent_count: i64,
    error_count: i64,
    skipped_count: i64,
    pause_reason: String,
    pause_outcomes: i64,
    pause_count: i64,
    pause_limit: String,
    paused_at: Option<i64>,
    footer_language: String,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Task {
        Task {
            id: TaskId(r.id),
            customer_id: CustomerId(r.customer_id),
            ident: r.ident,
            tpl_id: TemplateId(r.tpl_id),
            tpl_name: r.tpl_name.unwrap_or_default(),
            list_id: ListId(r.list_id),
            list_name: r.list_name.unwrap_or_default(),
            sender: SenderSelection::from_stored(&r.acct_type, &r.acct_domain, &r.acct_address),
            sender_name: r.sender_name,
            replyto: r.replyto,
            send_qty: r.send_qty,
            send_qty_start: r.send_qty_start,
            send_qty_remak: r.send_qty_remak,
            send_time: r.send_time,
            time_start: r.time_start,
            time_end: r.time_end,
            status: SendStatus::from_code(r.send_status).unwrap_or(SendStatus::Hold),
            track_status: r.track_status,
            subs_link: r.subs_link,
            track_domain: r.track_domain,
            addr_type: r.addr_type,
            reserved: r.reserved,
            service_paused: r.service_paused,
            recipients: r.recipients,
            sent_count: r.sent_count,
            error_count: r.error_count,
            skipped_count: r.skipped_count,
            guard_pause: Guard::parse(&r.pause_reason).map(|guard| GuardPause {
                guard,
                outcomes: r.pause_outcomes,
                count: r.pause_count,
                limit: r.pause_limit,
                at: r.paused_at.unwrap_or(0),
            }),
            // A value the column's check let through that this release
            // does not know is `auto`.
            footer_language: FooterLanguage::parse(&r.footer_language).unwrap_or_default(),
        }
    }
}

macro_rules! select_task {
    () => {
        "SELECT t.id, t.customer_id, t.ident, t.tpl_id, tp.name AS tpl_name, t.list_id, l.subject AS list_name, \
         t.acct_type, t.acct_domain, t.acct_address, t.sender_name, t.replyto, t.send_qty, t.send_qty_start, \
         t.send_qty_remak, t.send_time, t.time_start, t.time_end, t.send_status, t.track_status, t.subs_link, \
         t.track_domain, t.addr_type, t.reserved, t.service_paused, t.recipients, t.sent_count, t.error_count, t.skipped_count, \
         t.pause_reason, t.pause_outcomes, t.pause_count, t.pause_limit, t.paused_at, t.footer_language \
         FROM tasks t LEFT JOIN templates tp ON tp.id = t.tpl_id LEFT JOIN lists l ON l.id = t.list_id "
    };
}

const TASK_OF_CUSTOMER: &str = concat!(
    select_task!(),
    "WHERE t.customer_id = $1 AND t.id = $2 AND t.deleted_at IS NULL"
);
const TASK_OF_CUSTOMER_LOCKED: &str = concat!(
    select_task!(),
    "WHERE t.customer_id = $1 AND t.id = $2 AND t.deleted_at IS NULL FOR UPDATE OF t"
);

/// One of the customer's tasks, not deleted, read on the caller's
/// transaction and locked for the rest of it (PostgreSQL; SQLite's write
/// transaction holds the lock already); `NotFound("task")` when there is none.
async fn locked_task(c: &mut impl Conn, customer: CustomerId, id: TaskId) -> StoreResult<Task> {
    let sql = if c.is_postgres() {
        TASK_OF_CUSTOMER_LOCKED
    } else {
        TASK_OF_CUSTOMER
    };
    c.fetch_row::<TaskRow>(sql, &[Arg::Int(customer.get()), Arg::Int(id.get())])
        .await?
        .map(Task::from)
        .ok_or(StoreError::NotFound("task"))
}

/// Writes every editable column of a task, on the caller's transaction.
async fn write_task(c: &mut impl Conn, t: &Task, now: i64) -> StoreResult<()> {
    c.execute(
        "UPDATE tasks SET tpl_id = $1, list_id = $2, acct_type = $3, acct_domain = $4, acct_address = $5, \
         sender_name = $6, replyto = $7, send_qty = $8, send_qty_start = $9, send_qty_remak = $10, \
         send_time = $11, send_status = $12, track_status = $13, subs_link = $14, track_domain = $15, \
         reserved = $16, updated_at = $17, footer_language = $19 WHERE id = $18",
        &[
            Arg::Int(t.tpl_id.get()),
            Arg::Int(t.list_id.get()),
            Arg::Text(t.sender.acct_type()),
            Arg::Text(t.sender.domain()),
            Arg::Text(t.sender.address()),
            Arg::Text(&t.sender_name),
            Arg::Text(&t.replyto),
            Arg::Int(t.send_qty),
            Arg::Int(t.send_qty_start),
            Arg::Int(t.send_qty_remak),
            Arg::Int(t.send_time),
            Arg::Int(t.status.code()),
            Arg::Int(t.track_status),
            Arg::Bool(t.subs_link),
            Arg::Text(&t.track_domain),
            Arg::Int(t.reserved),
            Arg::Int(now),
            Arg::Int(t.id.get()),
            Arg::Text(t.footer_language.as_str()),
        ],
    )
    .await?;
    Ok(())
}

/// Stops a task's deliveries on the caller's transaction (cancel, delete:
/// D-20, H-2): the queued and deferred ones, and those a worker leased and
/// let run out (it died), become `cancelled`. Returns how many are still
/// in flight: leased by a live worker, perhaps inside SMTP; their outcomes
/// land later and settle the task ([`settle_stopped`]).
async fn stop_deliveries(c: &mut impl Conn, task: TaskId, now: i64) -> StoreResult<i64> {
    c.execute(
        "UPDATE deliveries SET state = 'cancelled', finished_at = $1, lease_until = 0 WHERE task_id = $2 \
         AND (state IN ('queued', 'deferred') OR (state = 'sending' AND lease_until < $1))",
        &[Arg::Int(now), Arg::Int(task.get())],
    )
    .await?;
    in_flight(c, task).await
}

/// How many of a task's deliveries a worker holds now.
async fn in_flight(c: &mut impl Conn, task: TaskId) -> StoreResult<i64> {
    Ok(c.fetch_i64(
        "SELECT COUNT(*) FROM deliveries WHERE task_id = $1 AND state = 'sending'",
        &[Arg::Int(task.get())],
    )
    .await?
    .unwrap_or(0))
}

/// A cancelled or deleted task keeps the credits of its messages in flight
/// (`reserved`, at most one each); when the last of them has its outcome,
/// what is left goes back to the service: the unsent part (H-2). On the
/// caller's transaction.
pub(crate) async fn settle_stopped(
    c: &mut impl Conn,
    customer: CustomerId,
    task: TaskId,
    reserved: i64,
    ident: &str,
    now: i64,
) -> StoreResult<()> {
    if reserved > 0 && in_flight(c, task).await? == 0 {
        c.execute(
            "UPDATE tasks SET reserved = 0, updated_at = $1 WHERE id = $2",
            &[Arg::Int(now), Arg::Int(task.get())],
        )
        .await?;
        move_credits(
            c,
            customer,
            task,
            -reserved,
            format!("task {ident} stopped: unsent part"),
            now,
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// A task by id whoever owns it (for the engine).
    pub async fn task_by_id(&self, id: i64) -> StoreResult<Option<Task>> {
        let row = on_pool!(self, p => sqlx::query_as::<_, TaskRow>(concat!(select_task!(), "WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Task::from))
    }

    /// Whether a task still sends (2, not deleted): a worker asks before it
    /// hands a claimed message to SMTP.
    pub async fn task_sending(&self, id: i64) -> StoreResult<bool> {
        let row: Option<(i64, Option<i64>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT send_status, deleted_at FROM tasks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(matches!(row, Some((status, None)) if status == SendStatus::Sending.code()))
    }

    /// Customers with a task sending (2), or paused because their service
    /// became unusable (-2), with those states: whose services the
    /// scheduler follows (H-3).
    pub async fn customers_sending(&self) -> StoreResult<Vec<(i64, SendStatus)>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, (i64, i64)>(
            "SELECT customer_id, send_status FROM tasks WHERE deleted_at IS NULL \
             AND (send_status = 2 OR (send_status = -2 AND service_paused)) \
             GROUP BY customer_id, send_status ORDER BY customer_id",
        )
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(c, s)| Some((c, SendStatus::from_code(s)?)))
            .collect())
    }

    /// H-3: a customer's sending tasks pause (-2) because its service became
    /// unusable (`usable` false), or those it paused so resume (`usable`
    /// true); a task the user paused is left alone. Returns how many changed.
    pub async fn follow_service(&self, customer: i64, usable: bool, now: i64) -> StoreResult<u64> {
        let sql = if usable {
            "UPDATE tasks SET send_status = 2, service_paused = $1, updated_at = $2 \
             WHERE customer_id = $3 AND deleted_at IS NULL AND send_status = -2 AND service_paused"
        } else {
            "UPDATE tasks SET send_status = -2, service_paused = $1, updated_at = $2 \
             WHERE customer_id = $3 AND deleted_at IS NULL AND send_status = 2"
        };
        let changed = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(sql)
                .bind(!usable)
                .bind(now)
                .bind(customer)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(changed)
    }

    /// Cancelled or deleted tasks whose messages in flight were held by a
    /// worker that died: their leases ran out, so they are cancelled and
    /// the task settles (H-2). Returns how many tasks it looked at.
    pub async fn settle_stopped_tasks(&self, now: i64) -> StoreResult<usize> {
        let stopped: Vec<(i64, i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT t.id, t.customer_id, t.ident FROM tasks t WHERE t.reserved > 0 \
             AND (t.send_status = -3 OR t.deleted_at IS NOT NULL) \
             AND EXISTS (SELECT 1 FROM deliveries d WHERE d.task_id = t.id AND d.state = 'sending' \
             AND d.lease_until < $1)",
        )
        .bind(now)
        .fetch_all(p)
        .await)?;
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE",
        };
        let sql = format!("SELECT reserved FROM tasks WHERE id = $1{lock}");
        for (id, customer, ident) in &stopped {
            on_pool!(self, pool => {
                let mut tx = pool.begin_write().await?;
                let reserved: i64 =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_one(&mut *tx).await?;
                stop_deliveries(&mut *tx, TaskId(*id), now).await?;
                settle_stopped(&mut *tx, CustomerId(*customer), TaskId(*id), reserved, ident, now).await?;
                tx.commit().await?;
            });
        }
        Ok(stopped.len())
    }

    /// Waiting tasks whose time has come, oldest first.
    pub async fn due_tasks(&self, now: i64, limit: i64) -> StoreResult<Vec<(i64, i64)>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, (i64, i64)>(
            "SELECT id, customer_id FROM tasks WHERE send_status = 1 AND send_time <= $1 AND deleted_at IS NULL \
             ORDER BY send_time, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Starts a waiting task (D-20, H-2): snapshots its recipients (the
    /// list's addresses now, in the `send_qty_start`/`send_qty` window,
    /// minus suppressed ones), adjusts its reservation to them — taking more
    /// if the list grew and credits allow, skipping the recipients it can't
    /// pay for, giving back what it does not need — and marks it sending.
    /// `all_type`: whether the service counts credits as one pool (else the
    /// day allowance is taken per message). Returns the recipients queued,
    /// or `None` if the task was no longer waiting.
    pub async fn start_task(&self, id: i64, now: i64, all_type: bool) -> StoreResult<Option<i64>> {
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let pick = format!(
            "SELECT customer_id, list_id, send_qty_start, send_qty, reserved, ident FROM tasks \
             WHERE id = $1 AND send_status = 1 AND deleted_at IS NULL{lock}"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<(i64, i64, i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(pick)).bind(id).fetch_optional(&mut *tx).await?;
            let Some((customer, list, start, send_qty, reserved, ident)) = row else { return Ok(None) };
            // The window is taken on the list's positions now (H-2: the list may
            // have grown); suppressed addresses in it are dropped. The window's
            // first and last address ids are looked up apart, so that the rows
            // come straight off the list's index in id order: a window taken
            // in a subquery and ordered again was sorted in a temporary b-tree
            // holding every recipient (100 MB of memory for a million).
            let first = (start - 1).max(0);
            let last = (send_qty > 0).then(|| first.saturating_add(send_qty - 1));
            let queued = sqlx::query(
                "INSERT INTO deliveries (task_id, customer_id, address_id, address, fullname, var1, var2, var3, \
                 var4, var5, var6, var7, var8, var9, var10, next_attempt) \
                 SELECT $1, a.customer_id, a.id, a.address, a.fullname, a.var1, a.var2, a.var3, a.var4, a.var5, \
                 a.var6, a.var7, a.var8, a.var9, a.var10, $2 FROM addresses a \
                 WHERE a.customer_id = $3 AND a.list_id = $4 \
                 AND a.id >= COALESCE((SELECT id FROM addresses WHERE customer_id = $3 AND list_id = $4 \
                   ORDER BY id LIMIT 1 OFFSET $5), 9223372036854775807) \
                 AND ($6 IS NULL OR a.id <= COALESCE((SELECT id FROM addresses WHERE customer_id = $3 \
                   AND list_id = $4 ORDER BY id LIMIT 1 OFFSET COALESCE($6, 0)), 9223372036854775807)) \
                 AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.customer_id = a.customer_id \
                 AND s.address_key = a.address_key) ORDER BY a.id",
            )
            .bind(id)
            .bind(now)
            .bind(customer)
            .bind(list)
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
            let mut skipped = 0i64;
            let mut held = reserved;
            if all_type {
                if queued > reserved {
                    let available: i64 =
                        sqlx::query_scalar("SELECT qty_available FROM services WHERE customer_id = $1")
                            .bind(customer)
                            .fetch_one(&mut *tx)
                            .await?;
                    let more = (queued - reserved).min(available);
                    move_credits(&mut *tx, CustomerId(customer), TaskId(id), more, format!("task {ident} started"), now).await?;
                    held = reserved + more;
                    skipped = queued - held;
                    if skipped > 0 {
                        // The last recipients (highest address ids) can't be paid for.
                        sqlx::query(
                            "UPDATE deliveries SET state = 'skipped', finished_at = $1 WHERE id IN \
                             (SELECT id FROM deliveries WHERE task_id = $2 ORDER BY address_id DESC LIMIT $3)",
                        )
                        .bind(now)
                        .bind(id)
                        .bind(skipped)
                        .execute(&mut *tx)
                        .await?;
                    }
                } else if queued < reserved {
                    move_credits(&mut *tx, CustomerId(customer), TaskId(id), queued - reserved, format!("task {ident} started"), now).await?;
                    held = queued;
                }
            }
            let done = queued - skipped == 0;
            sqlx::query(
                "UPDATE tasks SET send_status = $1, time_start = $2, time_end = $3, recipients = $4, \
                 skipped_count = $5, reserved = $6, updated_at = $2 WHERE id = $7",
            )
            .bind(if done { SendStatus::Done.code() } else { SendStatus::Sending.code() })
            .bind(now)
            .bind(done.then_some(now))
            .bind(queued)
            .bind(skipped)
            .bind(if done { 0 } else { held })
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done {
                move_credits(&mut *tx, CustomerId(customer), TaskId(id), -held, format!("task {ident} done"), now).await?;
            }
            tx.commit().await?;
            Ok(Some(queued))
        })
    }

    /// Whether a task on hold, waiting, sending or paused matches `condition`
    /// (on `$2`), for the customer (`-1`: any customer): the `in_use` rule
    /// of 7.3, 7.6.
    pub(crate) async fn held_by_task(
        &self,
        condition: &'static str,
        customer: i64,
        value: &Arg<'_>,
    ) -> StoreResult<bool> {
        self.task_in(condition, customer, value, &SendStatus::holding())
            .await
    }

    /// Whether a task (not deleted) in one of `statuses` matches `condition`
    /// (on `$2`), for the customer (`-1`: any customer).
    pub(crate) async fn task_in(
        &self,
        condition: &'static str,
        customer: i64,
        value: &Arg<'_>,
        statuses: &[SendStatus],
    ) -> StoreResult<bool> {
        if statuses.is_empty() {
            return Ok(false);
        }
        let codes: Vec<String> = statuses.iter().map(|s| s.code().to_string()).collect();
        let sql = format!(
            "SELECT id FROM tasks WHERE ($1 < 0 OR customer_id = $1) AND deleted_at IS NULL \
             AND send_status IN ({}) AND {condition} LIMIT 1",
            codes.join(", ")
        );
        let found: Option<i64> = on_pool!(self, p => {
            let q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(customer);
            bind_args!(q, std::slice::from_ref(value)).fetch_optional(p).await
        })?;
        Ok(found.is_some())
    }
}

impl TaskStorage for Store {
    async fn create_task(&self, task: &Task, now: i64) -> StoreResult<TaskId> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tasks (customer_id, ident, tpl_id, list_id, acct_type, acct_domain, acct_address, \
                 sender_name, replyto, send_qty, send_qty_start, send_qty_remak, send_time, send_status, \
                 track_status, subs_link, track_domain, addr_type, reserved, created_at, updated_at, footer_language) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21) \
                 RETURNING id",
            )
            .bind(task.customer_id.get())
            .bind(&task.ident)
            .bind(task.tpl_id.get())
            .bind(task.list_id.get())
            .bind(task.sender.acct_type())
            .bind(task.sender.domain())
            .bind(task.sender.address())
            .bind(&task.sender_name)
            .bind(&task.replyto)
            .bind(task.send_qty)
            .bind(task.send_qty_start)
            .bind(task.send_qty_remak)
            .bind(task.send_time)
            .bind(task.status.code())
            .bind(task.track_status)
            .bind(task.subs_link)
            .bind(&task.track_domain)
            .bind(task.addr_type)
            .bind(task.reserved)
            .bind(now)
            .bind(task.footer_language.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(unique_as("task ident"))?;
            let id = TaskId(id);
            let reason = format!("task {} reserved", task.ident);
            move_credits(&mut *tx, task.customer_id, id, task.reserved, reason, now).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    async fn task(&self, customer: CustomerId, id: TaskId) -> StoreResult<Option<Task>> {
        let row = on_pool!(self, p => sqlx::query_as::<_, TaskRow>(TASK_OF_CUSTOMER)
            .bind(customer.get())
            .bind(id.get())
            .fetch_optional(p)
            .await)?;
        Ok(row.map(Task::from))
    }

    async fn tasks(&self, customer: CustomerId, f: &TaskFilter) -> StoreResult<Vec<Task>> {
        let mut sql = String::from(select_task!());
        sql.push_str("WHERE t.customer_id = $1 AND t.deleted_at IS NULL");
        let mut args: Vec<Arg<'_>> = vec![Arg::Int(customer.get())];
        let mut n = 2;
        if let Some(id) = f.id {
            sql.push_str(&format!(" AND t.id = ${n}"));
            args.push(Arg::Int(id.get()));
            n += 1;
        }
        if let Some(ident) = &f.ident {
            sql.push_str(&format!(" AND t.ident = ${n}"));
            args.push(Arg::Text(ident));
            n += 1;
        }
        if let Some((from, to)) = f.send_between {
            sql.push_str(&format!(" AND t.send_time >= ${n} AND t.send_time < ${}", n + 1));
            args.push(Arg::Int(from));
            args.push(Arg::Int(to));
            n += 2;
        }
        if let Some(statuses) = &f.statuses {
            let codes: Vec<String> = statuses.iter().map(|s| s.code().to_string()).collect();
            sql.push_str(&format!(" AND t.send_status IN ({})", codes.join(",")));
        }
        sql.push_str(" ORDER BY t.id");
        if let Some((limit, offset)) = f.page {
            sql.push_str(&format!(" LIMIT ${n} OFFSET ${}", n + 1));
            args.push(Arg::Int(limit));
            args.push(Arg::Int(offset));
        }
        let rows = on_pool!(self, p => {
            bind_args!(sqlx::query_as::<_, TaskRow>(sqlx::AssertSqlSafe(sql.clone())), &args).fetch_all(p).await
        })?;
        Ok(rows.into_iter().map(Task::from).collect())
    }

    async fn change_task<E: Send>(
        &self,
        customer: CustomerId,
        id: TaskId,
        now: i64,
        change: impl FnOnce(&Task) -> Result<Task, E> + Send,
    ) -> StoreResult<Result<Task, E>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let current = locked_task(&mut *tx, customer, id).await?;
            let next = match change(&current) {
                Ok(next) => next,
                Err(refused) => return Ok(Err(refused)),
            };
            write_task(&mut *tx, &next, now).await?;
            let reason = format!("task {}", current.ident);
            move_credits(&mut *tx, customer, id, next.reserved - current.reserved, reason, now).await?;
            tx.commit().await?;
            Ok(Ok(next))
        })
    }

    async fn delete_task(&self, customer: CustomerId, id: TaskId, now: i64) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let task = locked_task(&mut *tx, customer, id).await?;
            if task.status == SendStatus::Sending {
                return Err(StoreError::Refused(Refusal::State));
            }
            let in_flight = stop_deliveries(&mut *tx, id, now).await?;
            let keep = task.reserved.min(in_flight);
            sqlx::query(
                "UPDATE tasks SET deleted_at = $1, reserved = $2, service_paused = $3, updated_at = $1 WHERE id = $4",
            )
            .bind(now)
            .bind(keep)
            .bind(false)
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
            let reason = format!("task {} deleted", task.ident);
            move_credits(&mut *tx, customer, id, keep - task.reserved, reason, now).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn intervene(
        &self,
        customer: CustomerId,
        id: TaskId,
        what: Intervention,
        now: i64,
    ) -> StoreResult<Task> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut task = locked_task(&mut *tx, customer, id).await?;
            if !what.allowed(task.status, task.service_paused) {
                return Err(StoreError::Refused(Refusal::State));
            }
            let before = task.reserved;
            task.status = what.target();
            task.service_paused = false;
            if what == Intervention::Cancel {
                let in_flight = stop_deliveries(&mut *tx, id, now).await?;
                task.reserved = before.min(in_flight);
                task.time_end = Some(now);
            }
            sqlx::query(
                "UPDATE tasks SET send_status = $1, service_paused = $2, reserved = $3, time_end = $4, \
                 updated_at = $5 WHERE id = $6",
            )
            .bind(task.status.code())
            .bind(false)
            .bind(task.reserved)
            .bind(task.time_end)
            .bind(now)
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
            if what == Intervention::Resume {
                // The guards count again from here.
                sqlx::query(
                    "UPDATE tasks SET pause_reason = '', guard_outcomes = sent_count + error_count, \
                     guard_hard = hard_count, guard_complaints = complaint_count WHERE id = $1",
                )
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
                task.guard_pause = None;
            }
            let reason = format!("task {} cancelled: unsent part", task.ident);
            move_credits(&mut *tx, customer, id, task.reserved - before, reason, now).await?;
            tx.commit().await?;
            Ok(task)
        })
    }

    async fn guard_figures(&self, id: TaskId) -> StoreResult<Option<GuardFigures>> {
        let row: Option<(i64, i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT sent_count + error_count - guard_outcomes, hard_count - guard_hard, \
             complaint_count - guard_complaints FROM tasks \
             WHERE id = $1 AND send_status = 2 AND deleted_at IS NULL",
        )
        .bind(id.get())
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(outcomes, hard, complaints)| GuardFigures {
            outcomes,
            hard,
            complaints,
        }))
    }

    async fn guard_pause(&self, id: TaskId, pause: &GuardPause) -> StoreResult<bool> {
        let changed = self
            .write(
                "UPDATE tasks SET send_status = -2, service_paused = FALSE, pause_reason = $1, pause_outcomes = $2, \
                 pause_count = $3, pause_limit = $4, paused_at = $5, updated_at = $5 \
                 WHERE id = $6 AND send_status = 2 AND deleted_at IS NULL",
                &[
                    Arg::Text(pause.guard.as_str()),
                    Arg::Int(pause.outcomes),
                    Arg::Int(pause.count),
                    Arg::Text(&pause.limit),
                    Arg::Int(pause.at),
                    Arg::Int(id.get()),
                ],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn waiting_for_cap(&self, id: TaskId) -> StoreResult<i64> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE task_id = $1 AND state = 'deferred' AND smtp_text = $2",
        )
        .bind(id.get())
        .bind(DAILY_CAP)
        .fetch_one(p)
        .await)?;
        Ok(n)
    }
}
