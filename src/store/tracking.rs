//! Tracking: the links of each task, hits written in batches into the
//! aggregates the reports read (per task, per link, per recipient, per
//! recipient and link, per day), and the reports of chapter 3.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::{Arg, Store, StoreResult, WritePool, on_pool};

/// One open or click, as the HTTP edge saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub delivery: i64,
    /// `None` for an open; the link id for a click.
    pub link: Option<i64>,
    pub at: i64,
    /// The local day of `at` (QUNFA_TIMEZONE).
    pub day: String,
    pub ip: String,
    pub browser: String,
    pub os: String,
    pub device: &'static str,
    /// A proxy prefetch, a scanner or a HEAD request.
    pub machine: bool,
}

/// What a signed token's delivery stands for, for the unsubscribe link.
#[derive(Clone, Debug)]
pub struct DeliveryOwner {
    pub customer_id: i64,
    pub task_id: i64,
    pub list_id: i64,
    pub address: String,
}

/// 3.1 figures of a task (and the console's machine counts).
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct TaskTracking {
    pub open_unique: i64,
    pub open_total: i64,
    pub open_machine: i64,
    pub open_first: Option<i64>,
    pub open_last: Option<i64>,
    pub click_unique: i64,
    pub click_total: i64,
    pub click_machine: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// One tracked link of a task (3.1 `link_statistic`, 3.5).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkStat {
    pub link_id: i64,
    pub url: String,
    pub click_unique: i64,
    pub click_total: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// One recipient who opened or clicked (3.2).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TrackedRecipient {
    pub id: i64,
    pub address: String,
    pub browser: String,
    pub os: String,
    pub device: String,
    pub ip_first: String,
    pub ip_last: String,
    pub open_total: i64,
    pub open_first: Option<i64>,
    pub open_last: Option<i64>,
    pub click_total: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// One (recipient, link) click record (3.3).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClickRecord {
    pub id: i64,
    pub address: String,
    pub url: String,
    pub click_total: i64,
    pub click_human: i64,
    pub click_first: Option<i64>,
    pub click_last: Option<i64>,
}

/// 3.4's filters (ANDed).
#[derive(Clone, Debug, Default)]
pub struct TrackFilter {
    pub clicked_only: bool,
    pub link_id: Option<i64>,
    pub email_id: Option<i64>,
}

#[derive(Default)]
struct RecipientAgg {
    opens: i64,
    opens_human: i64,
    open_first: Option<i64>,
    open_last: Option<i64>,
    clicks: i64,
    clicks_human: i64,
    click_first: Option<i64>,
    click_last: Option<i64>,
    /// The earliest hit's client and the latest hit's address.
    first: Option<(i64, String, String, String, &'static str)>,
    last: Option<(i64, String)>,
}

#[derive(Default)]
struct ClickAgg {
    total: i64,
    human: i64,
    first: Option<i64>,
    last: Option<i64>,
}

#[derive(Default)]
struct TaskAgg {
    opens: i64,
    opens_machine: i64,
    open_unique: i64,
    open_first: Option<i64>,
    open_last: Option<i64>,
    clicks: i64,
    clicks_machine: i64,
    click_unique: i64,
    click_first: Option<i64>,
    click_last: Option<i64>,
}

#[derive(Default)]
struct DayAgg {
    opens: i64,
    opens_machine: i64,
    clicks: i64,
    clicks_machine: i64,
}

fn earliest(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn latest(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.max(b)))
}

/// `col = the earlier (or later) of the stored and the new value`, NULL
/// meaning "none yet" on either side; the same SQL on both backends.
fn keep(table: &str, col: &str, later: bool) -> String {
    let cmp = if later { '>' } else { '<' };
    format!(
        "{col} = CASE WHEN {table}.{col} IS NULL OR excluded.{col} {cmp} {table}.{col} \
         THEN COALESCE(excluded.{col}, {table}.{col}) ELSE {table}.{col} END"
    )
}

fn keep_param(col: &str, param: &str, later: bool) -> String {
    let cmp = if later { '>' } else { '<' };
    format!(
        "{col} = CASE WHEN {col} IS NULL OR {param} {cmp} {col} THEN COALESCE({param}, {col}) ELSE {col} END"
    )
}

static UPSERT_RECIPIENT: LazyLock<String> = LazyLock::new(|| {
    let t = "track_recipients";
    format!(
        "INSERT INTO track_recipients (task_id, delivery_id, address, browser, os, device, ip_first, ip_last, \
         open_total, open_human, open_first, open_last, click_total, click_human, click_first, click_last) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (delivery_id) DO UPDATE SET \
         browser = CASE WHEN {t}.browser = '' THEN excluded.browser ELSE {t}.browser END, \
         os = CASE WHEN {t}.os = '' THEN excluded.os ELSE {t}.os END, \
         device = CASE WHEN {t}.device = '' OR {t}.device = 'unknown' THEN excluded.device ELSE {t}.device END, \
         ip_first = CASE WHEN {t}.ip_first = '' THEN excluded.ip_first ELSE {t}.ip_first END, \
         ip_last = CASE WHEN excluded.ip_last = '' THEN {t}.ip_last ELSE excluded.ip_last END, \
         open_total = {t}.open_total + excluded.open_total, open_human = {t}.open_human + excluded.open_human, \
         {}, {}, \
         click_total = {t}.click_total + excluded.click_total, click_human = {t}.click_human + excluded.click_human, \
         {}, {} \
         RETURNING open_human, click_human",
        keep(t, "open_first", false),
        keep(t, "open_last", true),
        keep(t, "click_first", false),
        keep(t, "click_last", true),
    )
});

static UPSERT_CLICK: LazyLock<String> = LazyLock::new(|| {
    let t = "track_clicks";
    format!(
        "INSERT INTO track_clicks (task_id, delivery_id, link_id, address, click_total, click_human, click_first, click_last) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (delivery_id, link_id) DO UPDATE SET \
         click_total = {t}.click_total + excluded.click_total, click_human = {t}.click_human + excluded.click_human, \
         {}, {} RETURNING click_human",
        keep(t, "click_first", false),
        keep(t, "click_last", true),
    )
});

static UPDATE_LINK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE task_links SET click_total = click_total + $1, click_unique = click_unique + $2, {}, {} \
         WHERE task_id = $5 AND link_id = $6",
        keep_param("click_first", "CAST($3 AS BIGINT)", false),
        keep_param("click_last", "CAST($4 AS BIGINT)", true),
    )
});

static UPSERT_TASK: LazyLock<String> = LazyLock::new(|| {
    let t = "task_tracking";
    format!(
        "INSERT INTO task_tracking (task_id, open_unique, open_total, open_machine, open_first, open_last, \
         click_unique, click_total, click_machine, click_first, click_last) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (task_id) DO UPDATE SET \
         open_unique = {t}.open_unique + excluded.open_unique, open_total = {t}.open_total + excluded.open_total, \
         open_machine = {t}.open_machine + excluded.open_machine, {}, {}, \
         click_unique = {t}.click_unique + excluded.click_unique, click_total = {t}.click_total + excluded.click_total, \
         click_machine = {t}.click_machine + excluded.click_machine, {}, {}",
        keep(t, "open_first", false),
        keep(t, "open_last", true),
        keep(t, "click_first", false),
        keep(t, "click_last", true),
    )
});

const UPSERT_DAY: &str = "INSERT INTO track_daily (customer_id, day, task_id, opens, opens_machine, clicks, clicks_machine) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer_id, day, task_id) DO UPDATE SET \
     opens = track_daily.opens + excluded.opens, opens_machine = track_daily.opens_machine + excluded.opens_machine, \
     clicks = track_daily.clicks + excluded.clicks, clicks_machine = track_daily.clicks_machine + excluded.clicks_machine";

/// Deliveries looked up at once.
const LOOKUP_CHUNK: usize = 500;

impl Store {
    /// Keeps a task's tracked links (document order, ids from 1); the first
    /// writer wins, so every worker's messages carry the same ids.
    pub async fn save_task_links(&self, task: i64, links: &[String]) -> StoreResult<()> {
        if links.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (i, url) in links.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO task_links (task_id, link_id, url) VALUES ($1, $2, $3) \
                     ON CONFLICT (task_id, link_id) DO NOTHING",
                )
                .bind(task)
                .bind(i as i64 + 1)
                .bind(url)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The URL a click token's link stands for: only a link stored for the
    /// delivery's own task (no open redirect).
    pub async fn link_of_delivery(&self, delivery: i64, link: i64) -> StoreResult<Option<String>> {
        let url = on_pool!(self, p => sqlx::query_scalar(
            "SELECT l.url FROM deliveries d JOIN task_links l ON l.task_id = d.task_id AND l.link_id = $2 \
             WHERE d.id = $1",
        )
        .bind(delivery)
        .bind(link)
        .fetch_optional(p)
        .await)?;
        Ok(url)
    }

    /// Whose delivery a token names, for the unsubscribe link.
    pub async fn delivery_owner(&self, delivery: i64) -> StoreResult<Option<DeliveryOwner>> {
        let row: Option<(i64, i64, i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT d.customer_id, d.task_id, t.list_id, d.address FROM deliveries d \
             JOIN tasks t ON t.id = d.task_id WHERE d.id = $1",
        )
        .bind(delivery)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(customer_id, task_id, list_id, address)| DeliveryOwner {
            customer_id,
            task_id,
            list_id,
            address,
        }))
    }

    /// Counts an unsubscribe through a task's link on the day's figures.
    pub async fn count_link_unsubscribe(&self, owner: &DeliveryOwner, day: &str) -> StoreResult<()> {
        self.write(
            "INSERT INTO track_daily (customer_id, day, task_id, unsubscribes) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (customer_id, day, task_id) DO UPDATE SET unsubscribes = track_daily.unsubscribes + 1",
            &[Arg::Int(owner.customer_id), Arg::Text(day), Arg::Int(owner.task_id)],
        )
        .await?;
        Ok(())
    }

    /// Writes a batch of hits into every aggregate, in one transaction. A hit
    /// within `scanner_window` seconds of its message's delivery counts as a
    /// machine's. Hits of deliveries that no longer exist (a deleted task)
    /// are dropped. Returns how many hits were recorded.
    pub async fn record_hits(&self, hits: &[Hit], scanner_window: i64) -> StoreResult<usize> {
        // Whose deliveries these are.
        let mut ids: Vec<i64> = hits.iter().map(|h| h.delivery).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut owners: BTreeMap<i64, (i64, i64, String, Option<i64>)> = BTreeMap::new();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, task_id, customer_id, address, sent_at FROM deliveries WHERE id IN ({})",
                marks.join(", ")
            );
            let rows: Vec<(i64, i64, i64, String, Option<i64>)> = on_pool!(self, p => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await
            })?;
            for (id, task, customer, address, sent_at) in rows {
                owners.insert(id, (task, customer, address, sent_at));
            }
        }

        // Aggregate the batch.
        let mut recipients: BTreeMap<i64, RecipientAgg> = BTreeMap::new();
        let mut clicks: BTreeMap<(i64, i64), ClickAgg> = BTreeMap::new();
        let mut days: BTreeMap<(i64, String, i64), DayAgg> = BTreeMap::new();
        let mut recorded = 0;
        for h in hits {
            let Some((task, customer, _, sent_at)) = owners.get(&h.delivery) else {
                continue;
            };
            recorded += 1;
            let scanned = sent_at.is_some_and(|s| h.at - s < scanner_window);
            let human = !(h.machine || scanned);
            let r = recipients.entry(h.delivery).or_default();
            if r.first.as_ref().is_none_or(|f| h.at < f.0) {
                r.first = Some((h.at, h.ip.clone(), h.browser.clone(), h.os.clone(), h.device));
            }
            if r.last.as_ref().is_none_or(|l| h.at >= l.0) {
                r.last = Some((h.at, h.ip.clone()));
            }
            let d = days.entry((*customer, h.day.clone(), *task)).or_default();
            match h.link {
                None => {
                    r.opens += 1;
                    r.opens_human += i64::from(human);
                    r.open_first = earliest(r.open_first, h.at);
                    r.open_last = latest(r.open_last, h.at);
                    d.opens += 1;
                    d.opens_machine += i64::from(!human);
                }
                Some(link) => {
                    r.clicks += 1;
                    r.clicks_human += i64::from(human);
                    r.click_first = earliest(r.click_first, h.at);
                    r.click_last = latest(r.click_last, h.at);
                    let c = clicks.entry((h.delivery, link)).or_default();
                    c.total += 1;
                    c.human += i64::from(human);
                    c.first = earliest(c.first, h.at);
                    c.last = latest(c.last, h.at);
                    d.clicks += 1;
                    d.clicks_machine += i64::from(!human);
                }
            }
        }
        if recorded == 0 {
            return Ok(0);
        }

        let mut tasks: BTreeMap<i64, TaskAgg> = BTreeMap::new();
        let mut links: BTreeMap<(i64, i64), (ClickAgg, i64)> = BTreeMap::new();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (delivery, r) in &recipients {
                let (task, _, address, _) = &owners[delivery];
                let (_, ip_first, browser, os, device) = r.first.clone().unwrap_or_default();
                let ip_last = r.last.clone().map(|l| l.1).unwrap_or_default();
                let (open_human, click_human): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(UPSERT_RECIPIENT.as_str()))
                    .bind(*task)
                    .bind(*delivery)
                    .bind(address)
                    .bind(browser)
                    .bind(os)
                    .bind(device)
                    .bind(ip_first)
                    .bind(ip_last)
                    .bind(r.opens)
                    .bind(r.opens_human)
                    .bind(r.open_first)
                    .bind(r.open_last)
                    .bind(r.clicks)
                    .bind(r.clicks_human)
                    .bind(r.click_first)
                    .bind(r.click_last)
                    .fetch_one(&mut *tx)
                    .await?;
                let t = tasks.entry(*task).or_default();
                t.opens += r.opens;
                t.opens_machine += r.opens - r.opens_human;
                // The first human open (click) of this recipient ever: a unique one.
                t.open_unique += i64::from(r.opens_human > 0 && open_human == r.opens_human);
                t.click_unique += i64::from(r.clicks_human > 0 && click_human == r.clicks_human);
                if let Some(at) = r.open_first {
                    t.open_first = earliest(t.open_first, at);
                }
                if let Some(at) = r.open_last {
                    t.open_last = latest(t.open_last, at);
                }
                t.clicks += r.clicks;
                t.clicks_machine += r.clicks - r.clicks_human;
                if let Some(at) = r.click_first {
                    t.click_first = earliest(t.click_first, at);
                }
                if let Some(at) = r.click_last {
                    t.click_last = latest(t.click_last, at);
                }
            }
            for ((delivery, link), c) in &clicks {
                let (task, _, address, _) = &owners[delivery];
                let human: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(UPSERT_CLICK.as_str()))
                    .bind(*task)
                    .bind(*delivery)
                    .bind(*link)
                    .bind(address)
                    .bind(c.total)
                    .bind(c.human)
                    .bind(c.first)
                    .bind(c.last)
                    .fetch_one(&mut *tx)
                    .await?;
                let (l, unique) = links.entry((*task, *link)).or_default();
                l.total += c.total;
                *unique += i64::from(c.human > 0 && human == c.human);
                if let Some(at) = c.first {
                    l.first = earliest(l.first, at);
                }
                if let Some(at) = c.last {
                    l.last = latest(l.last, at);
                }
            }
            for ((task, link), (l, unique)) in &links {
                sqlx::query(sqlx::AssertSqlSafe(UPDATE_LINK.as_str()))
                    .bind(l.total)
                    .bind(*unique)
                    .bind(l.first)
                    .bind(l.last)
                    .bind(*task)
                    .bind(*link)
                    .execute(&mut *tx)
                    .await?;
            }
            for (task, t) in &tasks {
                sqlx::query(sqlx::AssertSqlSafe(UPSERT_TASK.as_str()))
                    .bind(*task)
                    .bind(t.open_unique)
                    .bind(t.opens)
                    .bind(t.opens_machine)
                    .bind(t.open_first)
                    .bind(t.open_last)
                    .bind(t.click_unique)
                    .bind(t.clicks)
                    .bind(t.clicks_machine)
                    .bind(t.click_first)
                    .bind(t.click_last)
                    .execute(&mut *tx)
                    .await?;
            }
            for ((customer, day, task), d) in &days {
                sqlx::query(UPSERT_DAY)
                    .bind(*customer)
                    .bind(day)
                    .bind(*task)
                    .bind(d.opens)
                    .bind(d.opens_machine)
                    .bind(d.clicks)
                    .bind(d.clicks_machine)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(recorded)
    }

    /// 3.1: a task's tracking figures (zeros before its first hit).
    pub async fn task_tracking(&self, task: i64) -> StoreResult<TaskTracking> {
        let row = on_pool!(self, p => sqlx::query_as::<_, TaskTracking>(
            "SELECT open_unique, open_total, open_machine, open_first, open_last, click_unique, click_total, \
             click_machine, click_first, click_last FROM task_tracking WHERE task_id = $1",
        )
        .bind(task)
        .fetch_optional(p)
        .await)?;
        Ok(row.unwrap_or_default())
    }

    /// 3.1 `link_statistic`, 3.5: a task's links (one, with `link`), by id.
    pub async fn link_stats(&self, task: i64, link: Option<i64>) -> StoreResult<Vec<LinkStat>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, LinkStat>(
            "SELECT link_id, url, click_unique, click_total, click_first, click_last FROM task_links \
             WHERE task_id = $1 AND ($2 IS NULL OR link_id = $2) ORDER BY link_id",
        )
        .bind(task)
        .bind(link)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    pub async fn task_has_link(&self, task: i64, link: i64) -> StoreResult<bool> {
        Ok(!self.link_stats(task, Some(link)).await?.is_empty())
    }

    /// 3.2: the recipients who opened or clicked, by ascending id.
    pub async fn tracked_recipients(
        &self,
        task: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<TrackedRecipient>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, TrackedRecipient>(
            "SELECT id, address, browser, os, device, ip_first, ip_last, open_total, open_first, open_last, \
             click_total, click_first, click_last FROM track_recipients \
             WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(task)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// 3.3: click records of a task (of one link), by ascending id.
    pub async fn click_records(
        &self,
        task: i64,
        link: Option<i64>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClickRecord>> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, ClickRecord>(
            "SELECT c.id, c.address, l.url, c.click_total, c.click_human, c.click_first, c.click_last \
             FROM track_clicks c JOIN task_links l ON l.task_id = c.task_id AND l.link_id = c.link_id \
             WHERE c.task_id = $1 AND ($2 IS NULL OR c.link_id = $2) AND c.id > $3 ORDER BY c.id LIMIT $4",
        )
        .bind(task)
        .bind(link)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Whether `email_id` is a tracked recipient of the task (3.4).
    pub async fn task_has_recipient(&self, task: i64, email_id: i64) -> StoreResult<bool> {
        let n: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT id FROM track_recipients WHERE task_id = $1 AND id = $2",
        )
        .bind(task)
        .bind(email_id)
        .fetch_optional(p)
        .await)?;
        Ok(n.is_some())
    }

    /// 3.4: the addresses of tracked recipients matching `f` (clicks by
    /// scanners don't make a recipient one "with clicks"), by ascending
    /// recipient id, a page at a time (`after` = the last id seen).
    pub async fn tracked_addresses(
        &self,
        task: i64,
        f: &TrackFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, String)>> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT r.id, r.address FROM track_recipients r WHERE r.task_id = $1 AND r.id > $2 \
             AND ($3 IS NULL OR r.id = $3) \
             AND ($4 = 0 OR r.click_human > 0) \
             AND ($5 IS NULL OR EXISTS (SELECT 1 FROM track_clicks c WHERE c.delivery_id = r.delivery_id AND c.link_id = $5 AND c.click_human > 0)) \
             ORDER BY r.id LIMIT $6",
        )
        .bind(task)
        .bind(after)
        .bind(f.email_id)
        .bind(i64::from(f.clicked_only || f.link_id.is_some()))
        .bind(f.link_id)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}
