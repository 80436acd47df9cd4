//! `track.php` and `trackexport.php`: the tracking reports of chapter 3,
//! read from the aggregates the hit writer keeps (no raw hits scanned).

use super::Call;
use super::reply::{ApiError, ApiResult, Code, xml_response};
use super::stream::{Batch, STREAM_BATCH, streamed, text_export};
use super::xml::Xml;
use crate::app::App;
use crate::store::{Task, TaskFilter, TrackFilter};
use crate::tracking::ratio;

pub const OPERATIONS: &[&str] = &["overview", "open-detail", "click-detail", "link-stat"];

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "overview" => overview(c).await,
        "open-detail" => open_detail(c).await,
        "click-detail" => click_detail(c).await,
        "link-stat" => link_stat(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

/// The task of chapter 3's `id`/`ident` rule: one is required, `ident`
/// wins (and `id` is then not even read). A task never tracked is
/// `not_found` too.
async fn tracked_task(c: &Call<'_>) -> Result<Task, ApiError> {
    let p = c.params;
    let filter = match p.get("ident")? {
        Some(ident) => TaskFilter {
            ident: Some(ident.to_string()),
            ..Default::default()
        },
        None => TaskFilter {
            id: Some(p.id("id")?.ok_or_else(|| ApiError::missing("id"))?),
            ..Default::default()
        },
    };
    tracked(c, filter).await
}

async fn tracked(c: &Call<'_>, filter: TaskFilter) -> Result<Task, ApiError> {
    let task = c
        .app
        .store
        .tasks(c.account_id, &filter)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new(Code::NotFound))?;
    if task.track_status == 0 {
        return Err(ApiError::with(Code::NotFound, "task is not tracked"));
    }
    Ok(task)
}

/// An optional `link_id` that must be one of the task's links.
async fn link_of(c: &Call<'_>, task: &Task) -> Result<Option<i64>, ApiError> {
    let Some(link) = c.params.id("link_id")? else {
        return Ok(None);
    };
    if !c.app.store.task_has_link(task.id, link).await? {
        return Err(ApiError::new(Code::NotFound));
    }
    Ok(Some(link))
}

fn link_stats(x: &mut Xml, app: &App, links: &[crate::store::LinkStat]) {
    for l in links {
        x.open("link")
            .num("link_id", l.link_id)
            .text("link", &l.url)
            .num("click_unique", l.click_unique)
            .num("click_total", l.click_total)
            .text("click_first", &app.clock.format_opt_datetime(l.click_first))
            .text("click_last", &app.clock.format_opt_datetime(l.click_last))
            .close("link");
    }
}

/// 3.1.
async fn overview(c: Call<'_>) -> ApiResult {
    let task = tracked_task(&c).await?;
    let store = &c.app.store;
    let t = store.task_tracking(task.id).await?;
    let clicks = task.track_status == 2;
    let links = if clicks {
        store.link_stats(task.id, None).await?
    } else {
        Vec::new()
    };
    let clock = &c.app.clock;
    let (click_unique, click_total, click_first, click_last) = if clicks {
        (t.click_unique, t.click_total, t.click_first, t.click_last)
    } else {
        (0, 0, None, None)
    };
    let mut x = Xml::new();
    x.open("track")
        .num("track_id", task.id)
        .num("task_id", task.id)
        .text("task_sn", &task.ident)
        .num("send_count", task.sent_count + task.error_count)
        .num("real_send_count", task.sent_count)
        .num("error_send_count", task.error_count)
        .num("open_unique", t.open_unique)
        .num("open_total", t.open_total)
        .text("open_first", &clock.format_opt_datetime(t.open_first))
        .text("open_last", &clock.format_opt_datetime(t.open_last))
        .num("click_unique", click_unique)
        .num("click_total", click_total)
        .text("click_first", &clock.format_opt_datetime(click_first))
        .text("click_last", &clock.format_opt_datetime(click_last))
        .text("open_ratio", &ratio(t.open_unique, task.sent_count))
        .text("click_ratio", &ratio(click_unique, task.sent_count))
        .open("link_statistic");
    link_stats(&mut x, c.app, &links);
    x.close("link_statistic").close("track");
    Ok(xml_response(x.finish()))
}

/// Walks a task's report rows in id order, a batch at a time.
struct Walk {
    app: App,
    task: i64,
    link: Option<i64>,
    filter: TrackFilter,
    after: i64,
}

fn recipient_fragments(mut w: Walk) -> Batch<Walk> {
    Box::pin(async move {
        let rows = w
            .app
            .store
            .tracked_recipients(w.task, w.after, STREAM_BATCH)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        w.after = last.id;
        let clock = &w.app.clock;
        let mut out = Vec::with_capacity(rows.len() * 600);
        for r in &rows {
            let mut x = Xml::fragment();
            x.open("user")
                .num("email_id", r.id)
                .text("email", &r.address)
                .text("browser", &r.browser)
                .text("os", &r.os)
                .text("device", if r.device.is_empty() { "unknown" } else { &r.device })
                // The place of `ip_first`: no geolocation database here.
                .text("addr", "")
                .text("ip_first", &r.ip_first)
                .text("ip_last", &r.ip_last)
                .num("open_total", r.open_total)
                .num("click_total", r.click_total)
                .text("open_first", &clock.format_opt_datetime(r.open_first))
                .text("open_last", &clock.format_opt_datetime(r.open_last))
                .text("click_first", &clock.format_opt_datetime(r.click_first))
                .text("click_last", &clock.format_opt_datetime(r.click_last))
                .close("user");
            out.extend(x.finish_fragment(1));
        }
        Ok(Some((out, w)))
    })
}

fn click_fragments(mut w: Walk) -> Batch<Walk> {
    Box::pin(async move {
        let rows = w
            .app
            .store
            .click_records(w.task, w.link, w.after, STREAM_BATCH)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        w.after = last.id;
        let clock = &w.app.clock;
        let mut out = Vec::with_capacity(rows.len() * 400);
        for r in &rows {
            let mut x = Xml::fragment();
            x.open("click")
                .num("click_id", r.id)
                .text("email", &r.address)
                .text("link", &r.url)
                .num("click_unique", i64::from(r.click_human > 0))
                .num("click_total", r.click_total)
                .text("click_first", &clock.format_opt_datetime(r.click_first))
                .text("click_last", &clock.format_opt_datetime(r.click_last))
                .close("click");
            out.extend(x.finish_fragment(1));
        }
        Ok(Some((out, w)))
    })
}

fn walk(c: &Call<'_>, task: i64, link: Option<i64>, filter: TrackFilter) -> Walk {
    Walk {
        app: c.app.clone(),
        task,
        link,
        filter,
        after: 0,
    }
}

/// 3.2: every recipient who opened or clicked, by ascending `email_id`.
async fn open_detail(c: Call<'_>) -> ApiResult {
    let task = tracked_task(&c).await?;
    let w = walk(&c, task.id, None, TrackFilter::default());
    Ok(xml_response(streamed(
        Xml::head("data"),
        w,
        recipient_fragments,
        b"</data>\n",
    )))
}

/// 3.3: (recipient, link) click records, of one link with `link_id`.
async fn click_detail(c: Call<'_>) -> ApiResult {
    let task = tracked_task(&c).await?;
    let link = link_of(&c, &task).await?;
    let w = walk(&c, task.id, link, TrackFilter::default());
    Ok(xml_response(streamed(
        Xml::head("data"),
        w,
        click_fragments,
        b"</data>\n",
    )))
}

/// 3.5: the task's links (or one).
async fn link_stat(c: Call<'_>) -> ApiResult {
    let task = tracked_task(&c).await?;
    let link = link_of(&c, &task).await?;
    let links = c.app.store.link_stats(task.id, link).await?;
    let mut x = Xml::new();
    x.open("data");
    link_stats(&mut x, c.app, &links);
    x.close("data");
    Ok(xml_response(x.finish()))
}

fn address_lines(mut w: Walk) -> Batch<Walk> {
    Box::pin(async move {
        let rows = w
            .app
            .store
            .tracked_addresses(w.task, &w.filter, w.after, STREAM_BATCH)
            .await?;
        let Some((last, _)) = rows.last() else {
            return Ok(None);
        };
        w.after = *last;
        let mut out = Vec::with_capacity(rows.len() * 32);
        for (_, address) in &rows {
            out.extend_from_slice(address.as_bytes());
            out.push(b'\n');
        }
        Ok(Some((out, w)))
    })
}

/// 3.4 `trackexport.php`: the tracked recipients' addresses (opened or
/// clicked; with `is_click=1` or `link_id`, clicked; with `email_id`, that one).
pub async fn export(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let track_id = p.require_id("track_id")?;
    let clicked_only = match p.get("is_click")? {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(ApiError::invalid("is_click")),
    };
    let task = tracked(
        &c,
        TaskFilter {
            id: Some(track_id),
            ..Default::default()
        },
    )
    .await?;
    let link_id = link_of(&c, &task).await?;
    let email_id = p.id("email_id")?;
    if let Some(e) = email_id
        && !c.app.store.task_has_recipient(task.id, e).await?
    {
        return Err(ApiError::new(Code::NotFound));
    }
    let filter = TrackFilter {
        clicked_only,
        link_id,
        email_id,
    };
    let w = walk(&c, task.id, None, filter);
    Ok(text_export(
        format!("trackexport-{}.txt", task.id),
        w,
        address_lines,
    ))
}
