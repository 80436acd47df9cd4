//! Webhooks, their outbox of events and the attempts to deliver them.

use sqlx::FromRow;

use super::conn::Conn;
use super::{Arg, Store, StoreResult, WritePool, on_pool};
use crate::domain::ids::{CustomerId, WebhookEventId, WebhookId};
use crate::domain::webhooks::{Attempt, DueEvent, EventType, Webhook, WebhookStorage, parse_stored_events};

#[derive(FromRow)]
struct WebhookRow {
    id: i64,
    url: String,
    events: String,
    created_at: i64,
}

#[derive(FromRow)]
struct AttemptRow {
    event_id: i64,
    event_type: String,
    at: i64,
    status_code: Option<i64>,
    error: String,
}

#[derive(FromRow)]
struct DueRow {
    id: i64,
    webhook_id: i64,
    url: String,
    secret: Vec<u8>,
    event_type: String,
    data: String,
    created_at: i64,
    attempts: i64,
}

/// An event to queue for the customer's webhooks that hear its type.
pub(crate) struct NewEvent {
    pub customer: i64,
    pub kind: EventType,
    /// The event's `data` object as JSON.
    pub data: String,
}

/// The live webhooks of some customers, read inside the transaction that
/// may queue events for them, with the types each hears.
pub(crate) struct Subscribers(Vec<(i64, i64, Vec<EventType>)>);

impl Subscribers {
    /// One indexed look-up per customer.
    pub(crate) async fn of(conn: &mut impl Conn, customers: &[i64]) -> Result<Subscribers, sqlx::Error> {
        let mut hooks = Vec::new();
        let mut seen = customers.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for c in seen {
            let rows: Vec<(i64, String)> = conn
                .fetch_rows(
                    "SELECT id, events FROM webhooks WHERE customer_id = $1 AND deleted_at IS NULL",
                    &[Arg::Int(c)],
                )
                .await?;
            hooks.extend(rows.into_iter().map(|(id, ev)| (c, id, parse_stored_events(&ev))));
        }
        Ok(Subscribers(hooks))
    }

    /// Whether a webhook of `customer` hears `kind`.
    pub(crate) fn wants(&self, customer: i64, kind: EventType) -> bool {
        self.0
            .iter()
            .any(|(c, _, ev)| *c == customer && ev.contains(&kind))
    }

    /// Queues each event once for every webhook that hears it.
    pub(crate) async fn queue(
        &self,
        conn: &mut impl Conn,
        events: Vec<NewEvent>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        for e in events {
            for (_, id, _) in self
                .0
                .iter()
                .filter(|(c, _, ev)| *c == e.customer && ev.contains(&e.kind))
            {
                conn.execute(
                    "INSERT INTO webhook_events (webhook_id, customer_id, type, data, created_at, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                    &[
                        Arg::Int(*id),
                        Arg::Int(e.customer),
                        Arg::Text(e.kind.as_str()),
                        Arg::Text(&e.data),
                        Arg::Int(now),
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Queues `events` inside the caller's transaction, one row per webhook that
/// hears each one's type. One indexed look-up when the customers have no
/// webhook: the outcomes' hot path pays nothing more.
pub(crate) async fn queue_events(
    conn: &mut impl Conn,
    customers: &[i64],
    events: impl FnOnce(&dyn Fn(i64, EventType) -> bool) -> Vec<NewEvent>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let subscribers = Subscribers::of(conn, customers).await?;
    if subscribers.0.is_empty() {
        return Ok(());
    }
    let events = events(&|customer, kind| subscribers.wants(customer, kind));
    subscribers.queue(conn, events, now).await
}

impl WebhookStorage for Store {
    async fn add_webhook(
        &self,
        customer: CustomerId,
        url: &str,
        events: &str,
        seal: &(dyn Fn(WebhookId) -> Vec<u8> + Sync),
        now: i64,
    ) -> StoreResult<WebhookId> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO webhooks (customer_id, url, events, secret, created_at) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id",
            )
            .bind(customer)
            .bind(url)
            .bind(events)
            .bind(Vec::<u8>::new())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let sealed = seal(WebhookId(id));
            sqlx::query("UPDATE webhooks SET secret = $1 WHERE id = $2")
                .bind(sealed)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(WebhookId(id))
        })
    }

    async fn webhooks(&self, customer: CustomerId) -> StoreResult<Vec<Webhook>> {
        let rows: Vec<WebhookRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, url, events, created_at FROM webhooks WHERE customer_id = $1 AND deleted_at IS NULL \
             ORDER BY id",
        )
        .bind(customer)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| Webhook {
                id: WebhookId(r.id),
                url: r.url,
                events: parse_stored_events(&r.events),
                created_at: r.created_at,
            })
            .collect())
    }

    async fn delete_webhook(&self, customer: CustomerId, id: WebhookId, now: i64) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(
                "UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND customer_id = $3 AND deleted_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .bind(customer)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                sqlx::query("UPDATE webhook_events SET state = 'given_up' WHERE webhook_id = $1 AND state = 'pending'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    async fn webhook_attempts(
        &self,
        customer: CustomerId,
        id: WebhookId,
        limit: i64,
    ) -> StoreResult<Option<Vec<Attempt>>> {
        let exists: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT id FROM webhooks WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(customer)
        .fetch_optional(p)
        .await)?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows: Vec<AttemptRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT a.event_id, e.type AS event_type, a.at, a.status_code, a.error FROM webhook_attempts a \
             JOIN webhook_events e ON e.id = a.event_id WHERE a.webhook_id = $1 ORDER BY a.id DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(Some(
            rows.into_iter()
                .map(|r| Attempt {
                    event: WebhookEventId(r.event_id),
                    event_type: r.event_type,
                    at: r.at,
                    status_code: r.status_code,
                    error: r.error,
                })
                .collect(),
        ))
    }

    async fn claim_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        per_webhook: i64,
    ) -> StoreResult<Vec<DueEvent>> {
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE OF e SKIP LOCKED",
        };
        let rows: Vec<DueRow> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Events in flight (leased, not answered yet) per webhook, counted
            // once: a webhook with `per_webhook` of them gets no more, so a
            // slow endpoint holds only its own.
            let in_flight: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT webhook_id, COUNT(*) FROM webhook_events \
                 WHERE state = 'pending' AND lease_until >= $1 GROUP BY webhook_id",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            // Ids the database gave, written as numbers: nothing to escape.
            let full: Vec<String> = in_flight
                .iter()
                .filter(|(_, n)| *n >= per_webhook)
                .map(|(w, _)| w.to_string())
                .collect();
            let skip = if full.is_empty() {
                String::new()
            } else {
                format!(" AND e.webhook_id NOT IN ({})", full.join(","))
            };
            // Due events, oldest first.
            let pick = format!(
                "SELECT e.id, e.webhook_id, w.url, w.secret, e.type AS event_type, e.data, e.created_at, e.attempts \
                 FROM webhook_events e JOIN webhooks w ON w.id = e.webhook_id \
                 WHERE e.state = 'pending' AND e.next_attempt_at <= $1 AND e.lease_until < $1{skip} \
                 ORDER BY e.next_attempt_at, e.id LIMIT $2{lock}"
            );
            let due: Vec<DueRow> = sqlx::query_as(sqlx::AssertSqlSafe(pick))
                .persistent(full.is_empty())
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            // This batch adds to those in flight.
            let mut taken: std::collections::HashMap<i64, i64> = in_flight.into_iter().collect();
            let rows: Vec<DueRow> = due
                .into_iter()
                .filter(|r| {
                    let n = taken.entry(r.webhook_id).or_default();
                    *n += 1;
                    *n <= per_webhook
                })
                .collect();
            if !rows.is_empty() {
                let ids = rows.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(",");
                let lease = format!("UPDATE webhook_events SET lease_until = $1 WHERE id IN ({ids})");
                sqlx::query(sqlx::AssertSqlSafe(lease))
                    .persistent(false)
                    .bind(lease_until)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            rows
        });
        Ok(rows
            .into_iter()
            .map(|r| DueEvent {
                id: WebhookEventId(r.id),
                webhook: WebhookId(r.webhook_id),
                url: r.url,
                sealed_secret: r.secret,
                event_type: r.event_type,
                data: r.data,
                created_at: r.created_at,
                attempts: r.attempts,
            })
            .collect())
    }

    async fn record_attempt(
        &self,
        event: &DueEvent,
        status_code: Option<i64>,
        error: &str,
        delivered: bool,
        next: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        let state = match (delivered, next) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "given_up",
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO webhook_attempts (event_id, webhook_id, at, status_code, error) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(event.id)
            .bind(event.webhook)
            .bind(now)
            .bind(status_code)
            .bind(error)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_events SET state = $1, attempts = attempts + 1, next_attempt_at = $2, lease_until = 0 \
                 WHERE id = $3 AND state = 'pending'",
            )
            .bind(state)
            .bind(next.unwrap_or(now))
            .bind(event.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
