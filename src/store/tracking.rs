//! Tracking: the links of each task, and hits written in batches into the
//! aggregates the reports read (per task, per link, per recipient, per
//! recipient and link, per day).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use jiff::civil::Date;

use super::conn::Conn;
use super::webhooks::{NewEvent, Subscribers, queue_events};
use super::{Arg, Store, StoreResult, WritePool, on_pool};
use crate::clock::format_date;
use crate::domain::ids::{CustomerId, DeliveryId, LinkId, ListId, TaskId};
use crate::domain::templates::FooterLanguage;
use crate::domain::tracking::{DeliveryLanguage, DeliveryOwner, HitBatch, HitTarget, TrackingStorage};
use crate::domain::webhooks::EventType;

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

/// What a batch adds to a task's figures, found as its rows are written.
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

/// What a batch adds to a link's figures.
#[derive(Default)]
struct LinkAgg {
    total: i64,
    unique: i64,
    first: Option<i64>,
    last: Option<i64>,
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn latest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

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

    /// Whose delivery it is (the bounce listener's and the tracking links').
    pub async fn delivery_owner(&self, delivery: i64) -> StoreResult<Option<DeliveryOwner>> {
        let row: Option<(CustomerId, TaskId, ListId, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT d.customer_id, d.task_id, t.list_id, d.address FROM deliveries d \
             JOIN tasks t ON t.id = d.task_id WHERE d.id = $1",
        )
        .bind(delivery)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(customer, task, list, address)| DeliveryOwner {
            customer,
            task,
            list,
            address,
        }))
    }
}

impl TrackingStorage for Store {
    async fn click_target(&self, delivery: DeliveryId, link: LinkId) -> StoreResult<Option<String>> {
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

    async fn delivery_owner(&self, delivery: DeliveryId) -> StoreResult<Option<DeliveryOwner>> {
        // The inherent method of the same name, which takes the bare number.
        Store::delivery_owner(self, delivery.get()).await
    }

    async fn delivery_language(&self, delivery: DeliveryId) -> StoreResult<Option<DeliveryLanguage>> {
        type Row = (String, String, Option<String>, Option<String>, Option<String>);
        let row: Option<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT t.footer_language, c.footer_language, tp.subject, tp.content, tp.text_content \
             FROM deliveries d JOIN tasks t ON t.id = d.task_id JOIN customers c ON c.id = t.customer_id \
             LEFT JOIN templates tp ON tp.id = t.tpl_id AND tp.customer_id = t.customer_id WHERE d.id = $1",
        )
        .bind(delivery)
        .fetch_optional(p)
        .await)?;
        // A value the column's check let through that this release does
        // not know is `auto`.
        let stored = |s: &str| FooterLanguage::parse(s).unwrap_or_default();
        Ok(row.map(|(task, customer, subject, content, text)| {
            let template = match (subject, content) {
                (Some(subject), Some(content)) => Some((subject, content, text.unwrap_or_default())),
                _ => None,
            };
            DeliveryLanguage {
                task: stored(&task),
                customer: stored(&customer),
                template,
            }
        }))
    }

    async fn count_unsubscribe(&self, owner: &DeliveryOwner, day: Date, now: i64) -> StoreResult<()> {
        let day = format_date(day);
        let customer = owner.customer.get();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            tx.execute(
                "INSERT INTO track_daily (customer_id, day, task_id, unsubscribes) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (customer_id, day, task_id) DO UPDATE SET unsubscribes = track_daily.unsubscribes + 1",
                &[Arg::Int(customer), Arg::Text(&day), Arg::Int(owner.task.get())],
            )
            .await?;
            let events = |wanted: &dyn Fn(i64, EventType) -> bool| {
                if !wanted(customer, EventType::Unsubscribed) {
                    return Vec::new();
                }
                let data = serde_json::json!({"campaign_id": owner.task.get(), "email": owner.address});
                vec![NewEvent {
                    customer,
                    kind: EventType::Unsubscribed,
                    data: data.to_string(),
                }]
            };
            queue_events(&mut *tx, &[customer], events, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn hit_targets(&self, deliveries: &[DeliveryId]) -> StoreResult<HashMap<DeliveryId, HitTarget>> {
        let mut targets = HashMap::with_capacity(deliveries.len());
        for chunk in deliveries.chunks(LOOKUP_CHUNK) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, task_id, customer_id, address, sent_at FROM deliveries WHERE id IN ({})",
                marks.join(", ")
            );
            let rows: Vec<(DeliveryId, TaskId, CustomerId, String, Option<i64>)> = on_pool!(self, p => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await
            })?;
            for (id, task, customer, address, sent_at) in rows {
                targets.insert(
                    id,
                    HitTarget {
                        task,
                        customer,
                        address,
                        sent_at,
                    },
                );
            }
        }
        Ok(targets)
    }

    async fn write_hits(&self, batch: &HitBatch) -> StoreResult<()> {
        let mut tasks: BTreeMap<TaskId, TaskAgg> = BTreeMap::new();
        let mut links: BTreeMap<(TaskId, LinkId), LinkAgg> = BTreeMap::new();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (delivery, r) in &batch.recipients {
                let (open_human, click_human): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(UPSERT_RECIPIENT.as_str()))
                    .bind(r.task)
                    .bind(*delivery)
                    .bind(&r.address)
                    .bind(&r.browser)
                    .bind(&r.os)
                    .bind(r.device)
                    .bind(&r.ip_first)
                    .bind(&r.ip_last)
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
                let t = tasks.entry(r.task).or_default();
                t.opens += r.opens;
                t.opens_machine += r.opens - r.opens_human;
                // The first human open (click) of this recipient ever: a unique one.
                t.open_unique += i64::from(r.opens_human > 0 && open_human == r.opens_human);
                t.click_unique += i64::from(r.clicks_human > 0 && click_human == r.clicks_human);
                t.open_first = earliest(t.open_first, r.open_first);
                t.open_last = latest(t.open_last, r.open_last);
                t.clicks += r.clicks;
                t.clicks_machine += r.clicks - r.clicks_human;
                t.click_first = earliest(t.click_first, r.click_first);
                t.click_last = latest(t.click_last, r.click_last);
            }
            for ((delivery, link), c) in &batch.clicks {
                let human: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(UPSERT_CLICK.as_str()))
                    .bind(c.task)
                    .bind(*delivery)
                    .bind(*link)
                    .bind(&c.address)
                    .bind(c.total)
                    .bind(c.human)
                    .bind(c.first)
                    .bind(c.last)
                    .fetch_one(&mut *tx)
                    .await?;
                let l = links.entry((c.task, *link)).or_default();
                l.total += c.total;
                l.unique += i64::from(c.human > 0 && human == c.human);
                l.first = earliest(l.first, c.first);
                l.last = latest(l.last, c.last);
            }
            for ((task, link), l) in &links {
                sqlx::query(sqlx::AssertSqlSafe(UPDATE_LINK.as_str()))
                    .bind(l.total)
                    .bind(l.unique)
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
            for ((customer, day, task), d) in &batch.days {
                sqlx::query(UPSERT_DAY)
                    .bind(*customer)
                    .bind(format_date(*day))
                    .bind(*task)
                    .bind(d.opens)
                    .bind(d.opens_machine)
                    .bind(d.clicks)
                    .bind(d.clicks_machine)
                    .execute(&mut *tx)
                    .await?;
            }
            queue_hit_events(&mut *tx, batch).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

/// The batch's opens and clicks announced to the customers' webhooks, in
/// the transaction that counts them: one `opened` per recipient and one
/// `clicked` per recipient and link, `machine` when no person made them. A
/// clicked link's URL is read only for a customer whose webhook hears clicks.
async fn queue_hit_events(conn: &mut impl Conn, batch: &HitBatch) -> Result<(), sqlx::Error> {
    let owners: HashMap<TaskId, i64> = batch.days.keys().map(|(c, _, t)| (*t, c.get())).collect();
    let customers: Vec<i64> = owners.values().copied().collect();
    let subscribers = Subscribers::of(conn, &customers).await?;
    let wants =
        |task: TaskId, kind: EventType| owners.get(&task).is_some_and(|c| subscribers.wants(*c, kind));
    let mut events = Vec::new();
    for r in batch
        .recipients
        .values()
        .filter(|r| r.opens > 0 && wants(r.task, EventType::Opened))
    {
        let data = serde_json::json!({"campaign_id": r.task.get(), "email": r.address,
            "opens": r.opens, "machine": r.opens_human == 0});
        events.push(NewEvent {
            customer: owners[&r.task],
            kind: EventType::Opened,
            data: data.to_string(),
        });
    }
    let mut urls: HashMap<(TaskId, LinkId), String> = HashMap::new();
    for ((_, link), c) in batch
        .clicks
        .iter()
        .filter(|(_, c)| wants(c.task, EventType::Clicked))
    {
        if let std::collections::hash_map::Entry::Vacant(v) = urls.entry((c.task, *link)) {
            let url: Vec<(String,)> = conn
                .fetch_rows(
                    "SELECT url FROM task_links WHERE task_id = $1 AND link_id = $2",
                    &[Arg::Int(c.task.get()), Arg::Int(link.get())],
                )
                .await?;
            v.insert(url.into_iter().next().map(|(u,)| u).unwrap_or_default());
        }
        let data = serde_json::json!({"campaign_id": c.task.get(), "email": c.address,
            "url": urls[&(c.task, *link)], "clicks": c.total, "machine": c.human == 0});
        events.push(NewEvent {
            customer: owners[&c.task],
            kind: EventType::Clicked,
            data: data.to_string(),
        });
    }
    let latest = batch
        .recipients
        .values()
        .filter_map(|r| r.open_last.max(r.click_last))
        .max()
        .unwrap_or(0);
    subscribers.queue(conn, events, latest).await
}
