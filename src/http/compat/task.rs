//! `task.php`: create, edit, delete and list bulk-send tasks (5.1/6.2,
//! 6.1, 6.3, 6.4) and the per-date task list of 2.1.

use super::Call;
use super::params::Params;
use super::reply::{ApiError, ApiResult, Code, Success, xml_response};
use super::xml::Xml;
use crate::clock::TimeError;
use crate::domain::email::EmailAddress;
use crate::domain::ids::{ListId, TaskId, TemplateId};
use crate::domain::senders::DomainName;
use crate::domain::tasks::{
    self, NewTask, SendStatus, SenderRequest, SenderSelection, Task, TaskEdit, TaskError, TaskFilter,
};
use crate::domain::templates::FooterLanguage;

pub const OPERATIONS: &[&str] = &["add-task", "edit-task", "del-task", "task-list", "list-task"];

pub async fn call(c: Call<'_>) -> ApiResult {
    match c.op {
        "add-task" => add_task(c).await,
        "edit-task" => edit_task(c).await,
        "del-task" => del_task(c).await,
        "task-list" => task_list(c).await,
        "list-task" => list_task(c).await,
        _ => Err(ApiError::new(Code::UnknownDo)),
    }
}

fn flag(p: &Params, name: &str, allowed: &[i64]) -> Result<Option<i64>, ApiError> {
    match p.get(name)? {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| allowed.contains(n))
            .map(Some)
            .ok_or_else(|| ApiError::invalid(name)),
    }
}

fn count(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    Ok(p.id(name)?)
}

/// A send time (D-8, H-11): a gap or a malformed value is `invalid_param`.
fn send_time(c: &Call<'_>, name: &str, value: &str) -> Result<i64, ApiError> {
    c.app
        .clock
        .parse_datetime(value)
        .map_err(|e: TimeError| ApiError::with(Code::InvalidParam, format!("{name}: {e}")))
}

/// `track_domain`: a bare host name; a scheme and a trailing `/` are
/// stripped (5.1 [P]); empty means the platform's.
fn track_domain(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(raw) = p.raw("track_domain")? else {
        return Ok(None);
    };
    let host = raw
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if host.is_empty() {
        return Ok(Some(String::new()));
    }
    DomainName::parse(host)
        .map(|d| Some(d.as_str().to_string()))
        .ok_or_else(|| ApiError::invalid("track_domain"))
}

/// `footer_language` (a qunfa extension of 5.1/6.2): `zh`, `en`, `both`
/// or `auto`, the language of the unsubscribe footer.
fn footer_language(p: &Params) -> Result<Option<FooterLanguage>, ApiError> {
    p.get("footer_language")?
        .map(|v| FooterLanguage::parse(v).ok_or_else(|| ApiError::invalid("footer_language")))
        .transpose()
}

fn replyto(p: &Params) -> Result<Option<String>, ApiError> {
    match p.raw("send_replyto")?.map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(String::new())),
        Some(v) => EmailAddress::parse(v)
            .map(|e| Some(e.as_str().to_string()))
            .ok_or_else(|| ApiError::invalid("send_replyto")),
    }
}

/// A task use-case's refusal as the vendor's code.
fn task_error(e: TaskError) -> ApiError {
    match e {
        TaskError::NotFound | TaskError::TemplateNotFound | TaskError::ListNotFound => {
            ApiError::new(Code::NotFound)
        }
        TaskError::ListDisabled => ApiError::with(Code::StateError, "maillist_id: the list is disabled"),
        TaskError::Sender(why) => ApiError::with(Code::SenderError, why.to_string()),
        TaskError::ServiceUnusable => ApiError::new(Code::ServiceDisabled),
        TaskError::NotEnoughCredits { .. } => ApiError::new(Code::QuotaError),
        TaskError::State { .. } => ApiError::new(Code::StateError),
        TaskError::Store(e) => e.into(),
    }
}

async fn add_task(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let status = flag(p, "status", &[1, -1, 2])?
        .or(flag(p, "send_status", &[1, -1, 2])?)
        .unwrap_or(1);
    p.require("tpl_id")?;
    p.require("send_account")?;
    p.require("maillist_id")?;
    let time = p.get_any(&["time", "send_time"])?;
    if status != 2 && time.is_none() {
        return Err(ApiError::missing("time"));
    }
    let tpl_id = p.require_id("tpl_id")?;
    let list_id = p.require_id("maillist_id")?;
    let send_qty = count(p, "send_qty")?.unwrap_or(0);
    let start = count(p, "send_qty_start")?.unwrap_or(1);
    if start < 1 {
        return Err(ApiError::invalid("send_qty_start"));
    }
    let send_time = match (status, time) {
        (2, _) | (_, None) => None,
        (_, Some(t)) => Some(send_time(&c, "time", t)?),
    };
    let subs_link = flag(p, "subs_link", &[0, 1])?.unwrap_or(1) == 1;
    let track_status = flag(p, "track_status", &[0, 1, 2])?.unwrap_or(0);
    let track_domain = track_domain(p)?.unwrap_or_default();
    let replyto = replyto(p)?.unwrap_or_default();
    let sender_name = p.get("send_fullname")?.unwrap_or("").to_string();
    let footer_language = footer_language(p)?.unwrap_or_default();
    let sender = SenderRequest {
        domain: p.get_any(&["send_domain", "Send_domain"])?.map(str::to_string),
        account: p.require("send_account")?.to_string(),
    };
    let task = tasks::create_task(
        &c.app.store,
        &c.app.clock,
        c.customer(),
        NewTask {
            template: TemplateId(tpl_id),
            list: ListId(list_id),
            sender,
            sender_name,
            replyto,
            send_qty,
            start,
            send_time,
            hold: status == -1,
            track_status,
            subs_link,
            track_domain,
            footer_language,
        },
    )
    .await
    .map_err(task_error)?;
    c.app.engine_wakeup.notify_one();
    Ok(Success {
        id: Some(task.id.get()),
        count: None,
        message: "添加群发任务成功！".into(),
        id_in_data: false,
    }
    .into_response())
}

async fn edit_task(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.require_id("id")?;
    const CHANGEABLE: &[&str] = &[
        "tpl_id",
        "send_domain",
        "Send_domain",
        "send_account",
        "send_fullname",
        "maillist_id",
        "send_qty",
        "send_qty_start",
        "send_status",
        "status",
        "send_time",
        "time",
        "subs_link",
        "track_status",
        "track_domain",
        "send_replyto",
        "footer_language",
    ];
    if !CHANGEABLE.iter().any(|n| p.is_present(n)) {
        return Err(ApiError::missing("send_time"));
    }
    let status = flag(p, "send_status", &[1, -1])?.or(flag(p, "status", &[1, -1])?);
    let tpl_id = p.id("tpl_id")?;
    let list_id = p.id("maillist_id")?;
    let send_qty = count(p, "send_qty")?;
    let start = count(p, "send_qty_start")?;
    if start == Some(0) {
        return Err(ApiError::invalid("send_qty_start"));
    }
    let time = match p.get_any(&["send_time", "time"])? {
        Some(t) => Some(send_time(&c, "send_time", t)?),
        None => None,
    };
    let subs_link = flag(p, "subs_link", &[0, 1])?;
    let track_status = flag(p, "track_status", &[0, 1, 2])?;
    let track_domain = track_domain(p)?;
    let replyto = replyto(p)?;
    let sender_name = p.raw("send_fullname")?.map(|s| s.trim().to_string());
    let footer_language = footer_language(p)?;

    let edit = TaskEdit {
        release: status.map(|s| s == 1),
        template: tpl_id.map(TemplateId),
        list: list_id.map(ListId),
        send_domain: p.get_any(&["send_domain", "Send_domain"])?.map(str::to_string),
        send_account: p.get("send_account")?.map(str::to_string),
        sender_name,
        send_qty,
        start,
        send_time: time,
        subs_link: subs_link.map(|v| v == 1),
        track_status,
        track_domain,
        replyto,
        footer_language,
    };
    let updated = tasks::edit_task(&c.app.store, &c.app.clock, c.customer(), TaskId(id), edit)
        .await
        .map_err(task_error)?;
    if updated.status == SendStatus::Waiting {
        c.app.engine_wakeup.notify_one();
    }
    Ok(Success::message("修改群发任务成功").into_response())
}

async fn del_task(c: Call<'_>) -> ApiResult {
    let id = c.params.require_id("id")?;
    tasks::delete_task(&c.app.store, c.customer(), TaskId(id), c.app.clock.now())
        .await
        .map_err(task_error)?;
    Ok(Success::message("删除群发任务成功").into_response())
}

/// The tasks whose send time falls on a local date.
fn statuses(p: &Params, name: &str) -> Result<Option<Vec<SendStatus>>, ApiError> {
    match p.get(name)? {
        None | Some("all") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .and_then(SendStatus::from_code)
            .map(|s| Some(vec![s]))
            .ok_or_else(|| ApiError::invalid(name)),
    }
}

async fn task_list(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.id("id")?;
    let mut filter = TaskFilter {
        id: id.map(TaskId),
        statuses: statuses(p, "send_status")?,
        ..Default::default()
    };
    if let Some(date) = p.get("date")? {
        filter.send_between = Some(super::stats::day_of(&c, "date", date)?.1);
    }
    if p.get("page")?.is_some() || p.get("limit")?.is_some() {
        let (page, limit) = p.paging(30)?;
        let page = page.unwrap_or(1);
        filter.page = Some((limit, (page - 1).saturating_mul(limit)));
    }
    let rows = tasks::tasks(&c.app.store, c.customer(), &filter).await?;
    if id.is_some() && rows.is_empty() {
        return Err(ApiError::new(Code::NotFound));
    }
    let mut x = Xml::new();
    x.open("task_list");
    for t in &rows {
        x.open("task")
            .num("id", t.id.get())
            .text("sn", &t.ident)
            .text("acct_type", t.sender.acct_type());
        match &t.sender {
            SenderSelection::Domain(d) => {
                x.text("acct_domain", d);
            }
            SenderSelection::Address(a) => {
                x.text("acct_address", a);
            }
            SenderSelection::All => {}
        }
        x.text("sender", t.sender.address())
            .text("replyto", &t.replyto)
            .text("sender_name", &t.sender_name);
        common_tail(&c, &mut x, t);
        x.close("task");
    }
    x.close("task_list");
    Ok(xml_response(x.finish()))
}

/// The elements 2.1 and 6.1 share, from `tpl_id` on.
fn common_tail(c: &Call<'_>, x: &mut Xml, t: &Task) {
    let clock = &c.app.clock;
    x.num("tpl_id", t.tpl_id.get())
        .text("tpl_name", &t.tpl_name)
        .num("addr_type", t.addr_type)
        .num("list_id", t.list_id.get())
        .text("list_name", &t.list_name)
        .num("send_qty", t.send_qty)
        .num("send_qty_remak", t.send_qty_remak)
        .text("send_time", &clock.format_datetime(t.send_time))
        .text("time_start", &clock.format_opt_datetime(t.time_start))
        .text("time_end", &clock.format_opt_datetime(t.time_end))
        .num("send_count", t.sent_count)
        .num("error_count", t.error_count)
        .num("send_status", t.status.code())
        .num("track_status", t.track_status);
}

async fn list_task(c: Call<'_>) -> ApiResult {
    let p = c.params;
    let id = p.id("id")?;
    let ident = p.get("ident")?.map(str::to_string);
    let date = p.get("date")?;
    if date.is_none() && id.is_none() && ident.is_none() {
        return Err(ApiError::missing("date"));
    }
    let mut filter = TaskFilter {
        id: id.map(TaskId),
        ident,
        statuses: statuses(p, "state")?,
        ..Default::default()
    };
    if let Some(date) = date {
        filter.send_between = Some(super::stats::day_of(&c, "date", date)?.1);
    }
    let rows = tasks::tasks(&c.app.store, c.customer(), &filter).await?;
    let mut x = Xml::new();
    x.open("task_list");
    for t in &rows {
        x.open("task")
            .num("id", t.id.get())
            .text("sn", &t.ident)
            .text("sender", t.sender.address())
            .text("sender_name", &t.sender_name)
            .text("replyto", &t.replyto);
        common_tail(&c, &mut x, t);
        x.close("task");
    }
    x.close("task_list");
    Ok(xml_response(x.finish()))
}
