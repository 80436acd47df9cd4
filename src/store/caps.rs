//! Daily caps of sending domains and mailboxes (`domain_caps`,
//! `mailbox_caps`) and the messages counted against them per local day
//! (`cap_usage`), shared by every worker on the database.

use jiff::civil::Date;

use super::{Store, StoreResult, WritePool, on_pool};
use crate::clock::{format_date, parse_date};
use crate::domain::ids::{DomainId, MailboxId};
use crate::domain::senders::{CapTarget, DailyCap, Warmup};

type DomainCapRow = (
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<f64>,
    Option<String>,
);

fn scope(target: CapTarget) -> (&'static str, i64) {
    match target {
        CapTarget::Domain(id) => ("domain", id.get()),
        CapTarget::Mailbox(id) => ("mailbox", id.get()),
    }
}

fn target(scope: &str, id: i64) -> CapTarget {
    if scope == "domain" {
        CapTarget::Domain(DomainId(id))
    } else {
        CapTarget::Mailbox(MailboxId(id))
    }
}

impl Store {
    pub(super) async fn all_caps(&self) -> StoreResult<Vec<(CapTarget, DailyCap)>> {
        let (domains, mailboxes): (Vec<DomainCapRow>, Vec<(i64, i64)>) = on_pool!(self, p => {
            let d = sqlx::query_as(
                "SELECT domain_id, per_day, warmup_start, warmup_days, warmup_growth, warmup_from FROM domain_caps \
                 ORDER BY domain_id",
            )
            .fetch_all(p)
            .await?;
            let m = sqlx::query_as("SELECT mailbox_id, per_day FROM mailbox_caps ORDER BY mailbox_id")
                .fetch_all(p)
                .await?;
            (d, m)
        });
        let mut caps = Vec::with_capacity(domains.len() + mailboxes.len());
        for (id, per_day, start, days, growth, from) in domains {
            let from: Option<Date> = from.as_deref().and_then(|f| parse_date(f).ok());
            let warmup = match (start, days, growth, from) {
                (Some(start), Some(days), Some(growth), Some(from)) => Some(Warmup {
                    start,
                    days,
                    growth,
                    from,
                }),
                _ => None,
            };
            caps.push((CapTarget::Domain(DomainId(id)), DailyCap { per_day, warmup }));
        }
        for (id, per_day) in mailboxes {
            let cap = DailyCap {
                per_day: Some(per_day),
                warmup: None,
            };
            caps.push((CapTarget::Mailbox(MailboxId(id)), cap));
        }
        Ok(caps)
    }

    pub(super) async fn write_cap(&self, target: CapTarget, cap: &DailyCap) -> StoreResult<()> {
        let w = cap.warmup.as_ref();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            match (target, cap.is_empty()) {
                (CapTarget::Domain(id), true) => {
                    sqlx::query("DELETE FROM domain_caps WHERE domain_id = $1").bind(id.get()).execute(&mut *tx).await?;
                }
                (CapTarget::Domain(id), false) => {
                    sqlx::query(
                        "INSERT INTO domain_caps (domain_id, per_day, warmup_start, warmup_days, warmup_growth, \
                         warmup_from) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (domain_id) DO UPDATE SET \
                         per_day = EXCLUDED.per_day, warmup_start = EXCLUDED.warmup_start, \
                         warmup_days = EXCLUDED.warmup_days, warmup_growth = EXCLUDED.warmup_growth, \
                         warmup_from = EXCLUDED.warmup_from",
                    )
                    .bind(id.get())
                    .bind(cap.per_day)
                    .bind(w.map(|w| w.start))
                    .bind(w.map(|w| w.days))
                    .bind(w.map(|w| w.growth))
                    .bind(w.map(|w| format_date(w.from)))
                    .execute(&mut *tx)
                    .await?;
                }
                (CapTarget::Mailbox(id), _) => match cap.per_day {
                    None => {
                        sqlx::query("DELETE FROM mailbox_caps WHERE mailbox_id = $1")
                            .bind(id.get())
                            .execute(&mut *tx)
                            .await?;
                    }
                    Some(n) => {
                        sqlx::query(
                            "INSERT INTO mailbox_caps (mailbox_id, per_day) VALUES ($1, $2) \
                             ON CONFLICT (mailbox_id) DO UPDATE SET per_day = EXCLUDED.per_day",
                        )
                        .bind(id.get())
                        .bind(n)
                        .execute(&mut *tx)
                        .await?;
                    }
                },
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub(super) async fn usage_of_day(&self, day: &str) -> StoreResult<Vec<(CapTarget, i64)>> {
        let rows: Vec<(String, i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT scope, target_id, used FROM cap_usage WHERE day = $1",
        )
        .bind(day)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(s, id, used)| (target(&s, id), used))
            .collect())
    }

    /// One message counted against each target in one transaction, or none.
    pub(super) async fn count_against_caps(
        &self,
        takes: &[(CapTarget, i64)],
        day: &str,
    ) -> StoreResult<bool> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (t, limit) in takes {
                let (scope, id) = scope(*t);
                let used: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO cap_usage (scope, target_id, day, used) VALUES ($1, $2, $3, 1) \
                     ON CONFLICT (scope, target_id, day) DO UPDATE SET used = cap_usage.used + 1 \
                     WHERE cap_usage.used < $4 RETURNING used",
                )
                .bind(scope)
                .bind(id)
                .bind(day)
                .bind(*limit)
                .fetch_optional(&mut *tx)
                .await?;
                if used.is_none() {
                    // Dropped unfinished: rolled back, nothing counted.
                    return Ok(false);
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    pub(super) async fn uncount_from_caps(&self, targets: &[CapTarget], day: &str) -> StoreResult<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for t in targets {
                let (scope, id) = scope(*t);
                sqlx::query(
                    "UPDATE cap_usage SET used = used - 1 WHERE scope = $1 AND target_id = $2 AND day = $3 AND used > 0",
                )
                .bind(scope)
                .bind(id)
                .bind(day)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
