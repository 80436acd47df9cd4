//! What the web console needs beyond the API's queries: sessions, and the
//! per-day series and breakdowns its charts draw.

use std::collections::BTreeMap;

use super::{Arg, Store, StoreResult, on_pool};
use crate::domain::accounts::Role;

/// A console session, found by the hash of its cookie's token.
#[derive(Clone, Debug)]
pub struct Session {
    pub role: Role,
    pub account_id: i64,
    pub csrf: String,
}

/// One day of a customer's (or a task's) figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayFigures {
    pub sent: i64,
    pub failed: i64,
    /// Failures by class code (1, 2, 3, 8, 9).
    pub classes: [i64; 5],
    pub opens: i64,
    pub opens_machine: i64,
    pub clicks: i64,
    pub clicks_machine: i64,
}

/// Deliveries of a task to one provider (by recipient domain).
#[derive(Clone, Debug, Default)]
pub struct ProviderFigures {
    pub provider: &'static str,
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
}

/// The big providers a task report breaks down by; everything else is "others".
pub const PROVIDERS: &[(&str, &[&str])] = &[
    ("QQ", &["qq.com", "foxmail.com", "vip.qq.com"]),
    ("163/126", &["163.com", "126.com", "yeah.net", "vip.163.com"]),
    ("Sina", &["sina.com", "sina.cn", "vip.sina.com"]),
    ("Gmail", &["gmail.com", "googlemail.com"]),
    ("Outlook", &["outlook.com", "hotmail.com", "live.com", "msn.com"]),
];

pub fn provider_of(domain: &str) -> &'static str {
    PROVIDERS
        .iter()
        .find(|(_, domains)| domains.contains(&domain))
        .map_or("others", |(name, _)| name)
}

/// One customer as an agent's or a manager's console lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: i64,
    pub username: String,
    pub company: String,
    pub agent: Option<String>,
    pub disabled: bool,
    pub service_status: String,
    pub service_type: String,
    pub qty_available: i64,
    pub qty_buytotal: i64,
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
    /// Messages accepted in the period asked for.
    pub sent: i64,
    pub failed: i64,
}

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        s: &Session,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.write(
            "INSERT INTO sessions (token_hash, role, account_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                Arg::Text(token_hash),
                Arg::Text(s.role.as_str()),
                Arg::Int(s.account_id),
                Arg::Text(&s.csrf),
                Arg::Int(now),
                Arg::Int(expires_at),
            ],
        )
        .await?;
        // Expired sessions go as new ones come.
        self.write("DELETE FROM sessions WHERE expires_at < $1", &[Arg::Int(now)])
            .await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let row: Option<(String, i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT role, account_id, csrf FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(p)
        .await)?;
        Ok(row.and_then(|(role, account_id, csrf)| {
            let role = match role.as_str() {
                "customer" => Role::Customer,
                "agent" => Role::Agent,
                "manager" => Role::Manager,
                _ => return None,
            };
            Some(Session {
                role,
                account_id,
                csrf,
            })
        }))
    }

    /// The user name of a console account.
    pub async fn account_username(&self, role: Role, id: i64) -> StoreResult<Option<String>> {
        let sql = match role {
            Role::Customer => "SELECT username FROM customers WHERE id = $1",
            Role::Agent | Role::Manager => "SELECT username FROM operators WHERE id = $1",
        };
        let name = on_pool!(self, p => sqlx::query_scalar(sql).bind(id).fetch_optional(p).await)?;
        Ok(name)
    }

    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.write(
            "DELETE FROM sessions WHERE token_hash = $1",
            &[Arg::Text(token_hash)],
        )
        .await?;
        Ok(())
    }

    /// A customer's figures per local day from `from_day` on (inclusive,
    /// `YYYY-MM-DD`), of one task with `task`; days without any are absent.
    pub async fn day_figures(
        &self,
        customer: i64,
        task: Option<i64>,
        from_day: &str,
    ) -> StoreResult<BTreeMap<String, DayFigures>> {
        type SendRow = (String, i64, i64, i64, i64, i64, i64, i64);
        let sends: Vec<SendRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT day, CAST(SUM(sent) AS BIGINT), CAST(SUM(failed) AS BIGINT), CAST(SUM(not_exist) AS BIGINT), \
             CAST(SUM(over_quota) AS BIGINT), CAST(SUM(user_reject) AS BIGINT), \
             CAST(SUM(invalid_addr) AS BIGINT), CAST(SUM(format_error) AS BIGINT) \
             FROM daily_stats WHERE customer_id = $1 AND day >= $2 AND ($3 IS NULL OR task_id = $3) GROUP BY day",
        )
        .bind(customer)
        .bind(from_day)
        .bind(task)
        .fetch_all(p)
        .await)?;
        let hits: Vec<(String, i64, i64, i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT day, CAST(SUM(opens) AS BIGINT), CAST(SUM(opens_machine) AS BIGINT), \
             CAST(SUM(clicks) AS BIGINT), CAST(SUM(clicks_machine) AS BIGINT) \
             FROM track_daily WHERE customer_id = $1 AND day >= $2 AND ($3 IS NULL OR task_id = $3) GROUP BY day",
        )
        .bind(customer)
        .bind(from_day)
        .bind(task)
        .fetch_all(p)
        .await)?;
        let mut days: BTreeMap<String, DayFigures> = BTreeMap::new();
        for (day, sent, failed, c1, c2, c3, c8, c9) in sends {
            let d = days.entry(day).or_default();
            d.sent = sent;
            d.failed = failed;
            d.classes = [c1, c2, c3, c8, c9];
        }
        for (day, opens, opens_machine, clicks, clicks_machine) in hits {
            let d = days.entry(day).or_default();
            d.opens = opens;
            d.opens_machine = opens_machine;
            d.clicks = clicks;
            d.clicks_machine = clicks_machine;
        }
        Ok(days)
    }

    /// A task's deliveries by provider (QQ, 163/126, …, others).
    pub async fn provider_figures(&self, task: i64) -> StoreResult<Vec<ProviderFigures>> {
        let domain = match self {
            Store::Sqlite(_) => "lower(substr(address, instr(address, '@') + 1))",
            Store::Postgres(_) => "lower(split_part(address, '@', 2))",
        };
        let sql = format!(
            "SELECT {domain} AS d, COUNT(*), CAST(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS BIGINT) \
             FROM deliveries WHERE task_id = $1 GROUP BY d"
        );
        let rows: Vec<(String, i64, i64, i64)> = on_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(task)
            .fetch_all(p)
            .await)?;
        let mut out: Vec<ProviderFigures> = PROVIDERS
            .iter()
            .map(|(name, _)| *name)
            .chain(["others"])
            .map(|provider| ProviderFigures {
                provider,
                ..Default::default()
            })
            .collect();
        for (domain, recipients, sent, failed) in rows {
            let p = provider_of(&domain);
            if let Some(f) = out.iter_mut().find(|f| f.provider == p) {
                f.recipients += recipients;
                f.sent += sent;
                f.failed += failed;
            }
        }
        out.retain(|f| f.recipients > 0);
        Ok(out)
    }

    /// Customers with their services and figures since `from_day`: an
    /// agent's own (`agent` = its id), or all.
    pub async fn customer_rows(&self, agent: Option<i64>, from_day: &str) -> StoreResult<Vec<CustomerRow>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, CustomerRow>(
            "SELECT c.id, c.username, c.company, o.username AS agent, c.disabled, s.status AS service_status, \
             s.service_type, s.qty_available, s.qty_buytotal, s.begin_date, s.end_date, \
             CAST(COALESCE((SELECT SUM(d.sent) FROM daily_stats d WHERE d.customer_id = c.id AND d.day >= $2), 0) AS BIGINT) AS sent, \
             CAST(COALESCE((SELECT SUM(d.failed) FROM daily_stats d WHERE d.customer_id = c.id AND d.day >= $2), 0) AS BIGINT) AS failed \
             FROM customers c JOIN services s ON s.customer_id = c.id LEFT JOIN operators o ON o.id = c.agent_id \
             WHERE ($1 IS NULL OR c.agent_id = $1) ORDER BY c.id",
        )
        .bind(agent)
        .bind(from_day)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}
