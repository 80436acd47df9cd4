//! `track.php` and `trackexport.php`: the tracking reports of chapter 3,
//! read from the aggregates the hit writer keeps (no raw hits scanned).

use super::Call;
use super::reply::{ApiError, ApiResult, Code, xml_response};
use super::stats::report_error;
use super::xml::Xml;
use crate::app::App;
use crate::domain::ids::{LinkId, TaskId, TrackedRecipientId};
use crate::domain::reports::{
    self, AddressWalk, ClickWalk, LinkStat, RecipientWalk, TaskRef, TrackedAddressFilter, TrackedTask, ratio,
};
use crate::http::stream::{Batch, STREAM_BATCH, streamed, text_export};

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
async fn tracked_task(c: &Call<'_>) -> Result<TrackedTask, ApiError> {
    let p = c.params;
    let task = match p.get("ident")? {
        Some(ident) => TaskRef::Ident(ident.to_string()),
        None => TaskRef::Id(TaskId(p.id("id")?.ok_or_else(|| ApiError::missing("id"))?)),
    };
    tracked(c, &task).await
}

async fn tracked(c: &Call<'_>, task: &TaskRef) -> Result<TrackedTask, ApiError> {
    reports::tracked_task(&c.app.store, c.customer(), task)
        .await
        .map_err(report_error)
}

/// An optional `link_id`.
fn link_param(c: &Call<'_>) -> Result<Option<LinkId>, ApiError> {
    Ok(c.params.id("link_id")?.map(LinkId))
}

fn link_stats(x: &mut Xml, app: &App, links: &[LinkStat]) {
    for l in links {
        x.open("link")
            .num("link_id", l.link)
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
    let tracked = tracked_task(&c).await?;
    let o = reports::tracking_overview(&c.app.store, &tracked)
        .await
        .map_err(report_error)?;
    let (task, t) = (tracked.task(), &o.tracking);
    let clock = &c.app.clock;
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
        .num("click_unique", t.click_unique)
        .num("click_total", t.click_total)
        .text("click_first", &clock.format_opt_datetime(t.click_first))
        .text("click_last", &clock.format_opt_datetime(t.click_last))
        .text("open_ratio", &ratio(t.open_unique, task.sent_count))
        .text("click_ratio", &ratio(t.click_unique, task.sent_count))
        .open("link_statistic");
    link_stats(&mut x, c.app, &o.links);
    x.close("link_statistic").close("track");
    Ok(xml_response(x.finish()))
}

/// A report's rows being streamed, a batch at a time.
struct Walk<W> {
    app: App,
    walk: W,
}

fn recipient_fragments(mut w: Walk<RecipientWalk>) -> Batch<Walk<RecipientWalk>> {
    Box::pin(async move {
        let rows = w.walk.next(&w.app.store, STREAM_BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let clock = &w.app.clock;
        let mut out = Vec::with_capacity(rows.len() * 600);
        for r in &rows {
            let mut x = Xml::fragment_at(1, 512);
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
            out.extend(x.finish_fragment());
        }
        Ok(Some((out, w)))
    })
}

fn click_fragments(mut w: Walk<ClickWalk>) -> Batch<Walk<ClickWalk>> {
    Box::pin(async move {
        let rows = w.walk.next(&w.app.store, STREAM_BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let clock = &w.app.clock;
        let mut out = Vec::with_capacity(rows.len() * 400);
        for r in &rows {
            let mut x = Xml::fragment_at(1, 512);
            x.open("click")
                .num("click_id", r.id)
                .text("email", &r.address)
                .text("link", &r.url)
                .num("click_unique", i64::from(r.click_human > 0))
                .num("click_total", r.click_total)
                .text("click_first", &clock.format_opt_datetime(r.click_first))
                .text("click_last", &clock.format_opt_datetime(r.click_last))
                .close("click");
            out.extend(x.finish_fragment());
        }
        Ok(Some((out, w)))
    })
}

/// 3.2: every recipient who opened or clicked, by ascending `email_id`.
async fn open_detail(c: Call<'_>) -> ApiResult {
    let task = tracked_task(&c).await?;
    let w = Walk {
        app: c.app.clone(),
        walk: RecipientWalk::new(&task),
    };
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
    let link = link_param(&c)?;
    let walk = reports::click_records(&c.app.store, &task, link)
        .await
        .map_err(report_error)?;
    let w = Walk {
        app: c.app.clone(),
        walk,
    };
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
    let link = link_param(&c)?;
    let links = reports::link_stats(&c.app.store, &task, link)
        .await
        .map_err(report_error)?;
    let mut x = Xml::new();
    x.open("data");
    link_stats(&mut x, c.app, &links);
    x.close("data");
    Ok(xml_response(x.finish()))
}

fn address_lines(mut w: Walk<AddressWalk>) -> Batch<Walk<AddressWalk>> {
    Box::pin(async move {
        let rows = w.walk.next(&w.app.store, STREAM_BATCH).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len() * 32);
        for address in &rows {
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
    let task = tracked(&c, &TaskRef::Id(TaskId(track_id))).await?;
    let link = link_param(&c)?;
    if let Some(link) = link {
        reports::task_link(&c.app.store, &task, link)
            .await
            .map_err(report_error)?;
    }
    let filter = TrackedAddressFilter {
        clicked_only,
        link,
        recipient: p.id("email_id")?.map(TrackedRecipientId),
    };
    let walk = reports::tracked_addresses(&c.app.store, &task, filter)
        .await
        .map_err(report_error)?;
    let w = Walk {
        app: c.app.clone(),
        walk,
    };
    Ok(text_export(
        format!("trackexport-{}.txt", task.task().id),
        w,
        address_lines,
    ))
}
